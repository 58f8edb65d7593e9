"""A corpus of bad input, built here, run through what the assets call: read_raw_csv + validate_incidents.

Each case asserts its whole outcome: either UnreadableFileError naming the file and the problem
(and the line, where there is one), or the exact rules of every quarantined row by source line,
with rows read = valid + quarantined checked against the number of records the case wrote and
against Python's csv module, never against the frame under test.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import pytest

from crime_pipeline.lib.ingest.raw_csv import UnreadableFileError, read_raw_csv
from crime_pipeline.lib.validate.schema import RULES
from crime_pipeline.lib.validate.validate import ValidationResult, validate_incidents

AS_OF = pd.Timestamp("2020-06-01 12:00")  # the file's ingestion time: "the future" is after this
HEADER = ["Case Number", "Incident Datetime", "Parent Incident Type", "Latitude", "Longitude"]
GOOD = {
    "Case Number": "19-0001",
    "Incident Datetime": "01/04/2019 10:00:00 AM",
    "Parent Incident Type": "Theft",
    "Latitude": "42.9",
    "Longitude": "-78.85",
}


@dataclass
class Case:
    name: str
    data: bytes
    records: int = 0  # data records written (what rows_read must be); unused for errors
    rules: dict[int, str] = field(default_factory=dict)  # source line -> rules, for every quarantined row
    error: str | None = None  # regex the UnreadableFileError message must match after "<name>: "
    delimiter: str = ","
    check: Callable[[ValidationResult], None] | None = None  # what the valid rows must hold


def build(
    *records: dict | str,
    header: list[str] | None = None,
    extra: dict | None = None,
    delimiter: str = ",",
    newline: str = "\n",
) -> tuple[bytes, int]:
    """A CSV: `header` (default HEADER plus `extra`'s keys), then one line per record.

    A dict record is GOOD (and `extra`) updated with it, written by the csv module; a str is
    written verbatim ("" is a blank line, which is no record). Returns the bytes and the record count.
    """
    columns = header or [*HEADER, *(extra or {})]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=newline)
    writer.writerow(columns)
    count = 0
    for record in records:
        if isinstance(record, str):
            out.write(record + newline)
            count += record != ""
        else:
            row = {**GOOD, **(extra or {}), **record}
            writer.writerow([row.get(c, "") for c in columns])
            count += 1
    return out.getvalue().encode("utf-8"), count


def case(name: str, *records: dict | str, rules: dict[int, str] | None = None, **options) -> Case:
    check = options.pop("check", None)
    data, count = build(*records, **options)
    return Case(name, data, count, rules or {}, delimiter=options.get("delimiter", ","), check=check)


def error(name: str, data: bytes, problem: str) -> Case:
    return Case(name, data, error=problem)


def valid_values(
    column: str | None = None, expected: list | None = None, **columns: list
) -> Callable[[ValidationResult], None]:
    """A check that the valid rows hold exactly these values, column by column, in file order."""
    if column is not None:
        columns[column] = expected

    def check(result: ValidationResult) -> None:
        for name, values in columns.items():
            assert result.valid[name].tolist() == values, name

    return check


def valid_missing(**columns: list[bool]) -> Callable[[ValidationResult], None]:
    """A check of which valid values are missing (e.g. UNKNOWN geography), column by column."""

    def check(result: ValidationResult) -> None:
        for name, missing in columns.items():
            assert result.valid[name].isna().tolist() == missing, name

    return check


def _latin1_file() -> bytes:
    data, _ = build({}, {"Case Number": "19-0002"}, {"Case Number": "19-0003"})
    return data.replace(b"19-0003", "19-\xd8003".encode("latin-1"))


GOOD_LINE = ",".join(GOOD.values())


def _nul_after_first_64k() -> bytes:
    """A NUL byte past the first 64 KiB, which csv_layout.py sniffs: the line scan finds it anywhere."""
    data, _ = build(*({"Case Number": f"19-{i}"} for i in range(1500)), {"Parent Incident Type": "Th\x00eft"}, {})
    assert data.index(b"\x00") > 65536
    return data


def _unclosed_quote(closing_line: str) -> bytes:
    """A quote opened on line 3 and never closed by its own record: a stray quote on line 5 closes
    it, so the file has an even number of quotes, and lines 3..5 read as one record by every reader."""
    return build({}, '19-2,"01/04/2019 10:00:00 AM,Theft,42.9,-78.85', {"Case Number": "19-3"}, closing_line, {})[0]


NO_REQUIRED = (
    "missing required column\\(s\\) case_number, incident_datetime, parent_incident_type, "
    "latitude\\+longitude or location"
)
LONG_TEXT = "x" * 100_000
UNICODE = "Ünïcødé 🚓 שלום ̀combining\u200b"
FORMULAS = ["=cmd|' /C calc'!A0", "+SUM(A1:A9)", "@SUM(1)", "-2+3"]

CASES: list[Case] = [
    # Files that cannot be read at all.
    error("empty.csv", b"", "the file is empty"),
    error("blank.csv", b"  \n\r\n\t\n", "the file is empty"),
    error("bom_only.csv", b"\xef\xbb\xbf", "the file is empty"),
    error("png.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary content \\(NUL bytes\\)"),
    error("utf16.csv", ",".join(HEADER).encode("utf-16"), "UTF-16 encoded"),
    error("latin1.csv", _latin1_file(), "undecodable bytes at byte offset \\d+ \\(line 4\\); the file must be UTF-8"),
    error(
        "other.csv",
        b"name,amount\nx,1\n",
        NO_REQUIRED + "; its first line has 2 field\\(s\\) separated by ','; header was: 'name', 'amount'$",
    ),
    error(
        "no_coords.csv",
        b"Case Number,Incident Datetime,Parent Incident Type,Longitude\n1,2,3,4\n",
        "missing required column\\(s\\) latitude\\+longitude or location; ",
    ),
    error(
        "passwd.csv",
        b"root:x:0:0:root:/root:/bin/bash\n",
        NO_REQUIRED + "; its first line has 1 field\\(s\\) separated by ',' "
        "and does not look like a CSV header, so it is not shown$",
    ),
    error(
        "nul_after_64k.csv",
        _nul_after_first_64k(),
        "binary content \\(a NUL byte\\) at byte offset \\d+ \\(line 1502\\)",
    ),
    error(
        "unbalanced.csv",
        build({}, '19-2,"01/04/2019 10:00:00 AM,Theft,42.9,-78.85', {})[0],
        "a quoted value opened in the record on line 3 is never closed, "
        "so the rest of the file would read as one value",
    ),
    # Layouts and line endings that must read.
    case("header_only.csv"),
    Case("header_no_newline.csv", ",".join(HEADER).encode()),
    case("clean.csv", {}, {"Case Number": "19-0002"}, {"Case Number": "19-0003"}),
    Case("bom.csv", b"\xef\xbb\xbf" + build({})[0], 1, check=valid_values("case_number", ["19-0001"])),
    case("crlf.csv", {}, {"Case Number": ""}, newline="\r\n", rules={3: "case_number_missing"}),
    case(
        "cr_only.csv",
        {},
        {"Case Number": ""},
        "",
        {"Latitude": ""},
        newline="\r",
        rules={3: "case_number_missing", 5: "coordinates_missing"},
    ),
    case(
        "cr_only_lf_in_value.csv",
        f'{GOOD_LINE},"one\ntwo"',
        {"Case Number": ""},
        newline="\r",
        extra={"Incident Description": ""},
        rules={3: "case_number_missing"},  # lines end with CR here, not LF
        check=valid_values("incident_description", ["one\ntwo"]),
    ),
    Case(
        "mixed_endings.csv",
        f"{','.join(HEADER)}\r\n{GOOD_LINE}\n,{GOOD_LINE.split(',', 1)[1]}\r\n".encode(),
        2,
        {3: "case_number_missing"},
    ),
    case("semicolons.csv", {}, {"Latitude": "north"}, delimiter=";", rules={3: "coordinates_unparseable"}),
    case("tabs.csv", {}, {"Parent Incident Type": ""}, delimiter="\t", rules={3: "label_missing"}),
    case("pipes.csv", {}, {"Incident Datetime": ""}, delimiter="|", rules={3: "incident_datetime_missing"}),
    case(
        "odd_header_spelling.csv",
        GOOD_LINE,
        header=["  CASE   NUMBER ", "incident-datetime", "Parent_Incident_Type ", "LAT", "lng"],
        check=valid_values(case_number=["19-0001"], label=["Theft"], longitude=[-78.85]),
    ),
    case(
        "trailing_delimiter.csv",
        "19-1,01/04/2019 10:00:00 AM,Theft,42.9,-78.85,",
        "19-2,01/04/2019 10:00:00 AM,Theft,42.9,-78.85,",
        header=[*HEADER, ""],
        check=valid_values("unnamed_5", ["", ""]),
    ),
    # A quote left open until a stray one: the lines between are one record, quarantined, not lost.
    Case(
        "even_quotes_malformed.csv",
        _unclosed_quote('19-4,01/04/2019 10:00:00 AM,Theft,42.9,12" TV'),
        3,
        {3: "row_malformed"},
    ),
    Case(
        "even_quotes_swallowed.csv",
        _unclosed_quote('x",Theft,42.9,-78.85').replace(b'"01/04/2019 10:00:00 AM,Theft,42.9,-78.85', b'"01/04/2019'),
        3,
        {3: "incident_datetime_unparseable"},
    ),
    # Records of the wrong shape.
    case("short_row.csv", {}, "19-2,01/04/2019", {}, rules={3: "row_malformed"}),
    case("long_row.csv", {}, "19-2,01/04/2019 10:00:00 AM,Theft,42.9,-78.85,extra", rules={3: "row_malformed"}),
    case("whitespace_row.csv", {}, "   ", {}, rules={3: "row_malformed"}),
    case("blank_lines.csv", {}, "", "", {"Case Number": " "}, rules={5: "case_number_missing"}),
    case(
        "multiline_value.csv",
        {"Incident Description": "line one\nline two\nline three"},
        {"Case Number": ""},
        extra={"Incident Description": "plain"},
        rules={5: "case_number_missing"},
        check=valid_values("incident_description", ["line one\nline two\nline three"]),
    ),
    case(
        "inch_mark.csv",
        '19-1,01/04/2019 10:00:00 AM,Theft,42.9,-78.85,12" TV',
        extra={"Incident Description": ""},
        check=valid_values("incident_description", ['12" TV']),
    ),  # a lone quote inside a value is no quoting
    case(
        "quotes_and_delimiters.csv",
        {"Incident Description": 'said "stop", then ran; | fast'},
        extra={"Incident Description": ""},
        check=valid_values("incident_description", ['said "stop", then ran; | fast']),
    ),
    # One case per quarantine rule, and the values that used to raise or be changed silently.
    case(
        "case_number.csv",
        {"Case Number": ""},
        {"Case Number": " \t "},
        {},
        rules={2: "case_number_missing", 3: "case_number_missing"},
    ),
    case(
        "datetime_text.csv",
        {"Incident Datetime": "yesterday"},
        {"Incident Datetime": "13/45/2019 25:61:00 PM"},
        rules={2: "incident_datetime_unparseable", 3: "incident_datetime_unparseable"},
    ),
    case(
        "two_digit_year.csv",
        {"Incident Datetime": "04/27/19 06:31"},
        {"Incident Datetime": "4/27/19"},
        rules={2: "incident_datetime_unparseable", 3: "incident_datetime_unparseable"},
    ),
    case(
        "impossible_dates.csv",
        {"Incident Datetime": "02/30/2019"},
        {"Incident Datetime": "04/31/2019 10:00:00"},
        {"Incident Datetime": "02/29/2019 12:00:00 PM"},
        {"Incident Datetime": "02/29/2020 12:00:00 PM"},
        rules={
            2: "incident_datetime_unparseable",
            3: "incident_datetime_unparseable",
            4: "incident_datetime_unparseable",
        },
        check=valid_values("incident_datetime", [pd.Timestamp("2020-02-29 12:00")]),
    ),
    case(
        "year_9999.csv",
        {"Incident Datetime": "12/31/9999 11:59:59 PM"},
        {"Incident Datetime": "9999-12-31T23:59:59"},
        {"Incident Datetime": "06/03/2020 12:00:00 PM"},
        {"Incident Datetime": "06/02/2020 11:00:00 AM"},
        rules={2: "incident_datetime_in_future", 3: "incident_datetime_in_future", 4: "incident_datetime_in_future"},
    ),
    case(
        "before_2009.csv",
        {"Incident Datetime": "12/31/2008 11:59:59 PM"},
        {"Incident Datetime": "0019-04-27T06:31:00"},
        {"Incident Datetime": "01/01/2009 00:00:00"},
        rules={2: "incident_datetime_before_2009", 3: "incident_datetime_before_2009"},
    ),
    case(
        "api_iso_datetimes.csv",
        {"Incident Datetime": "2019-01-04T12:00:00.000"},
        {"Incident Datetime": "2019-01-04T17:00:00.000Z"},
        {"Incident Datetime": "2019-07-04T12:00:00-04:00"},
        {"Incident Datetime": "2019-07-04 12:00:00+0000"},
        {"Incident Datetime": "2019-02-30T10:00:00"},
        rules={6: "incident_datetime_unparseable"},
        check=valid_values(
            "incident_datetime",
            [
                pd.Timestamp("2019-01-04 12:00"),
                pd.Timestamp("2019-01-04 12:00"),
                pd.Timestamp("2019-07-04 12:00"),
                pd.Timestamp("2019-07-04 08:00"),
            ],
        ),
    ),
    case(
        "labels.csv",
        {"Parent Incident Type": ""},
        {"Parent Incident Type": "SODOMY"},
        {"Parent Incident Type": "Th\u0435ft"},
        {"Parent Incident Type": " assault"},
        {"Parent Incident Type": "THEFT OF  VEHICLE"},
        {"Parent Incident Type": "Breaking and Entering"},
        rules={2: "label_missing", 3: "label_not_canonical", 4: "label_not_canonical"},
        check=valid_values("label", ["Assault", "Theft of Vehicle", "Breaking & Entering"]),
    ),
    case(
        "coordinates.csv",
        {"Latitude": "", "Longitude": ""},
        {"Latitude": "north"},
        {"Latitude": "0", "Longitude": "0"},
        {"Latitude": "42.9"},
        {"Longitude": " "},
        rules={
            2: "coordinates_missing",
            3: "coordinates_unparseable",
            4: "coordinates_outside_city",
            6: "coordinates_missing",
        },
    ),
    case(
        "nan_inf_coordinates.csv",
        {"Latitude": "NaN"},
        {"Latitude": "inf"},
        {"Longitude": "-Infinity"},
        {"Latitude": "nan", "Longitude": "nan"},
        rules={
            2: "coordinates_missing",
            3: "coordinates_outside_city",
            4: "coordinates_outside_city",
            5: "coordinates_missing",
        },
    ),
    case(
        "huge_tiny_numbers.csv",
        {"Latitude": "1e308"},
        {"Latitude": "1e-308"},
        {"Longitude": "-999999999999999999999999"},
        {"Latitude": "42.90000000000000000000001"},
        rules={2: "coordinates_outside_city", 3: "coordinates_outside_city", 4: "coordinates_outside_city"},
    ),
    case(
        "location_points.csv",
        {"Location": "POINT (-78.85 42.9)"},
        {"Location": "(42.91, -78.86)"},
        {"Location": "POINT (garbage)"},
        {"Location": "UNKNOWN"},
        header=["Case Number", "Incident Datetime", "Parent Incident Type", "Location"],
        rules={4: "coordinates_unparseable", 5: "coordinates_missing"},
        check=valid_values("latitude", [42.9, 42.91]),
    ),
    case(
        "unknown_geography.csv",
        {"neighborhood": "UNKNOWN", "zip_code": "14201"},
        {"neighborhood": "Elmwood", "zip_code": "Unknown"},
        extra={"neighborhood": "", "zip_code": ""},
        check=valid_missing(neighborhood=[True, False], zip_code=[False, True]),
    ),
    case(
        "hour_of_day.csv",
        {"Hour of Day": "99999"},
        {"Hour of Day": "6.5"},
        {"Hour of Day": "-1"},
        {"Hour of Day": "24"},
        {"Hour of Day": "10"},
        {"Hour of Day": ""},
        extra={"Hour of Day": ""},
        rules={2: "hour_of_day_invalid", 3: "hour_of_day_invalid", 4: "hour_of_day_invalid", 5: "hour_of_day_invalid"},
        check=valid_values("hour_of_day_reported", [10, pd.NA]),
    ),
    case(
        "created_updated.csv",
        {"Created At": "soon"},
        {"Created At": "12/31/9999 11:59:59 PM"},
        {"updated_at": "02/30/2019 10:00:00 AM"},
        {"updated_at": "01/01/1800 10:00:00 AM"},
        {"Created At": "01/05/2019 10:00:00 AM", "updated_at": ""},
        extra={"Created At": "", "updated_at": ""},
        rules={
            2: "created_at_unparseable",
            3: "created_at_out_of_range",
            4: "updated_at_unparseable",
            5: "updated_at_out_of_range",
        },
    ),
    case(
        "every_field_empty.csv",
        ",,,,",
        rules={2: "case_number_missing;coordinates_missing;incident_datetime_missing;label_missing"},
    ),
    case(
        "several_rules_one_row.csv",
        {"Case Number": "", "Incident Datetime": "never", "Latitude": "0", "Longitude": "0", "Hour of Day": "6.5"},
        extra={"Hour of Day": "1"},
        rules={2: "case_number_missing;coordinates_outside_city;hour_of_day_invalid;incident_datetime_unparseable"},
    ),
    # Names that collide with ours or with each other.
    case(
        "reserved_names.csv",
        {},
        extra={
            "source_file": "theirs.csv",
            "Source Line": "77",
            "raw_record": "r",
            "rules": "none",
            "label": "Robbery",
            "time_defaulted_noon": "no",
        },
        check=valid_values(
            label=["Theft"],
            input_label=["Robbery"],
            input_source_file=["theirs.csv"],
            input_source_line=["77"],
            input_rules=["none"],
            input_raw_record=["r"],
            input_time_defaulted_noon=["no"],
            source_line=[2],
            time_defaulted_noon=[False],
        ),
    ),
    case(
        "duplicate_names.csv",
        {},
        header=[*HEADER, "x_33", "x", "x", "Latitude"],
        check=valid_values(x_33=[""], x=[""], x_2=[""], latitude=[42.9], latitude_2=["42.9"]),
    ),
    # Values that must arrive exactly as written.
    case("unicode.csv", {"Case Number": UNICODE}, check=valid_values("case_number", [UNICODE])),
    case("formula_looking.csv", *({"Case Number": f} for f in FORMULAS), check=valid_values("case_number", FORMULAS)),
    case(
        "long_value.csv",
        {"Incident Description": LONG_TEXT},
        extra={"Incident Description": ""},
        check=valid_values("incident_description", [LONG_TEXT]),
    ),
]


def csv_module_records(data: bytes, delimiter: str) -> int:
    """Records after the header, as Python's csv module counts them (blank lines are no record)."""
    text = data.decode("utf-8-sig")
    return sum(1 for record in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if record) - 1


@pytest.mark.parametrize("bad", CASES, ids=[c.name for c in CASES])
def test_bad_input(bad: Case):
    if bad.error:
        with pytest.raises(UnreadableFileError) as err:
            read_raw_csv(bad.name, bad.data)
        message = str(err.value)
        assert message.startswith(f"{bad.name}: ") and re.search(bad.error, message), message
        return
    read = read_raw_csv(bad.name, bad.data)
    result = validate_incidents(read.rows, as_of=AS_OF)
    assert result.rows_read == bad.records == csv_module_records(bad.data, bad.delimiter)
    assert len(result.valid) + len(result.quarantine) == bad.records
    assert dict(zip(result.quarantine["source_line"].tolist(), result.quarantine["rules"])) == bad.rules
    assert sum(result.by_rule.values()) == sum(len(r.split(";")) for r in bad.rules.values())
    if bad.check:
        bad.check(result)


def test_the_corpus_is_big_enough_and_covers_every_rule():
    assert len(CASES) >= 40
    covered = {rule for c in CASES for rules in c.rules.values() for rule in rules.split(";")}
    assert covered == set(RULES)
