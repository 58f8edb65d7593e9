"""Hypothesis properties of reading + validation, on CSV files written here by the csv module.

1. Whatever validates (and whatever is quarantined) survives the round trip to Parquet unchanged.
2. Corrupting one cell of the contract in one valid row quarantines that row with a rule of that
   cell, never raises, keeps the bad text as written, and leaves every other row's values as they were.
"""

from __future__ import annotations

import calendar
import csv
import io
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crime_pipeline.lib.cities.columns import CLASSES
from crime_pipeline.lib.cities.profiles import default_profile
from crime_pipeline.lib.ingest.raw_csv import read_raw_csv
from crime_pipeline.lib.lake.parquet import read_parquet, write_parquet
from crime_pipeline.lib.validate.validate import ValidationResult, validate_incidents

_BOX = default_profile().box
LAT_MIN, LAT_MAX, LON_MIN, LON_MAX = _BOX.lat_min, _BOX.lat_max, _BOX.lon_min, _BOX.lon_max
AS_OF = pd.Timestamp("2020-06-01 12:00")
COLUMNS = [
    "Case Number",
    "Incident Datetime",
    "Parent Incident Type",
    "Latitude",
    "Longitude",
    "Hour of Day",
    "Created At",
    "updated_at",
    "Incident Description",
]
# derandomize: CI draws the same examples every run, so a failure there is reproducible, not flaky.
SETTINGS = settings(
    max_examples=30, deadline=None, database=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)

# Any text a CSV cell can hold; NUL is left out because a NUL makes the whole file "binary" (by design).
ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)
WHITESPACE = st.text(st.sampled_from(" \t\n\r\u00a0\u2003"), max_size=4)
NO_DIGITS = st.text(
    st.characters(blacklist_categories=("Cs", "Nd"), blacklist_characters="\x00"), min_size=1, max_size=12
)
PORTAL_FORMATS = ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y", "%Y-%m-%dT%H:%M:%S.000")


def when(lo: str, hi: str) -> st.SearchStrategy[str]:
    """A datetime between two dates in one of the accepted layouts."""
    moments = st.datetimes(datetime.fromisoformat(lo), datetime.fromisoformat(hi))
    return st.builds(lambda m, fmt: m.strftime(fmt), moments, st.sampled_from(PORTAL_FORMATS))


def label_spelling(name: str) -> st.SearchStrategy[str]:
    return st.sampled_from([name, name.upper(), f"  {name.lower()} ", name.replace("&", "and")])


def coordinate(lo: float, hi: float) -> st.SearchStrategy[str]:
    return st.floats(lo, hi).map(repr)


VALID_ROW = st.fixed_dictionaries(
    {
        "Case Number": st.text("0123456789-ABCZ", min_size=1, max_size=10),
        "Incident Datetime": when("2009-01-02", "2020-05-30"),
        "Parent Incident Type": st.sampled_from(CLASSES).flatmap(label_spelling),
        "Latitude": coordinate(LAT_MIN, LAT_MAX),
        "Longitude": coordinate(LON_MIN, LON_MAX),
        "Hour of Day": st.one_of(st.just(""), st.integers(0, 23).map(str)),
        "Created At": st.one_of(st.just(""), when("1990-01-01", "2020-05-30")),
        "updated_at": st.one_of(st.just(""), when("2000-01-01", "2020-05-30")),
        "Incident Description": ANY_TEXT,
    }
)


@st.composite
def impossible_date(draw) -> str:
    """A day the month does not have (which strptime would roll over), or a month that does not exist."""
    year = draw(st.integers(2009, 2019))
    month = draw(st.sampled_from([2, 4, 6, 9, 11]))
    day = draw(st.integers(calendar.monthrange(year, month)[1] + 1, 31))
    return draw(
        st.sampled_from(
            [
                f"{month:02d}/{day:02d}/{year} 10:00:00 AM",
                f"{month}/{day}/{year}",
                f"{year}-{month:02d}-{day:02d}T10:00:00",
                f"{draw(st.integers(13, 99))}/01/{year}",
            ]
        )
    )


def out_of_range(lo: str, hi: str) -> st.SearchStrategy[str]:
    """A real date and time before `lo` or after `hi`, in the portal's layout."""
    early = st.datetimes(datetime(1, 1, 1), datetime.fromisoformat(lo) - timedelta(days=1))
    late = st.datetimes(datetime.fromisoformat(hi) + timedelta(days=2), datetime(9999, 12, 31, 23, 59, 59))
    return st.one_of(early, late).map(lambda m: f"{m.month:02d}/{m.day:02d}/{m.year:04d} {m:%I:%M:%S %p}")


TWO_DIGIT_YEAR = st.datetimes(datetime(2009, 1, 1), datetime(2020, 1, 1)).map(lambda m: m.strftime("%m/%d/%y %H:%M"))
BAD_DATETIME = st.one_of(NO_DIGITS, impossible_date(), TWO_DIGIT_YEAR)
BAD_NUMBER = st.one_of(NO_DIGITS, st.floats(allow_nan=True, allow_infinity=True).map(repr))
# Column -> (bad values, the rules one of them may earn). Out-of-box numbers are drawn from all floats;
# those that happen to land inside the box are skipped by `corruption`.
BAD: dict[str, tuple[st.SearchStrategy[str], set[str]]] = {
    "Case Number": (WHITESPACE, {"case_number_missing"}),
    "Incident Datetime": (
        st.one_of(WHITESPACE, BAD_DATETIME, out_of_range("2009-01-01", "2020-06-01")),
        {
            "incident_datetime_missing",
            "incident_datetime_unparseable",
            "incident_datetime_before_2009",
            "incident_datetime_in_future",
        },
    ),
    "Parent Incident Type": (
        st.one_of(WHITESPACE, st.text("0123456789!?#/ .", min_size=1), st.just("Th\u0435ft")),
        {"label_missing", "label_not_canonical"},
    ),
    "Latitude": (
        st.one_of(WHITESPACE, BAD_NUMBER),
        {"coordinates_missing", "coordinates_unparseable", "coordinates_outside_city"},
    ),
    "Longitude": (
        st.one_of(WHITESPACE, BAD_NUMBER),
        {"coordinates_missing", "coordinates_unparseable", "coordinates_outside_city"},
    ),
    "Hour of Day": (
        st.one_of(
            NO_DIGITS,
            st.integers(max_value=-1).map(str),
            st.integers(min_value=24).map(str),
            st.floats(0, 23).filter(lambda x: x != int(x)).map(repr),
        ),
        {"hour_of_day_invalid"},
    ),
    "Created At": (
        st.one_of(BAD_DATETIME, out_of_range("1900-01-01", "2020-06-01")),
        {"created_at_unparseable", "created_at_out_of_range"},
    ),
    "updated_at": (
        st.one_of(BAD_DATETIME, out_of_range("1900-01-01", "2020-06-01")),
        {"updated_at_unparseable", "updated_at_out_of_range"},
    ),
}


def csv_file(rows: list[dict]) -> bytes:
    """What an export with these rows looks like (CRLF, so a lone CR in a value is quoted too)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows([row[c] for c in COLUMNS] for row in rows)
    return out.getvalue().encode("utf-8")


def validate(rows: list[dict]) -> ValidationResult:
    return validate_incidents(read_raw_csv("prop.csv", csv_file(rows)).rows, as_of=AS_OF)


def in_box(column: str, value: str) -> bool:
    """Whether a drawn "bad" coordinate is in fact a fine one (then it corrupts nothing)."""
    try:
        number = float(value.strip())
    except ValueError:
        return False
    lo, hi = (LAT_MIN, LAT_MAX) if column == "Latitude" else (LON_MIN, LON_MAX)
    return lo <= number <= hi


@st.composite
def corruption(draw) -> tuple[list[dict], int, str, str, set[str]]:
    rows = draw(st.lists(VALID_ROW, min_size=1, max_size=4))
    row = draw(st.integers(0, len(rows) - 1))
    column = draw(st.sampled_from(sorted(BAD)))
    values, rules = BAD[column]
    value = draw(values.filter(lambda v: not (column in ("Latitude", "Longitude") and in_box(column, v))))
    return rows, row, column, value, rules


@SETTINGS
@given(rows=st.lists(st.one_of(VALID_ROW, corruption().map(lambda c: {**c[0][c[1]], c[2]: c[3]})), max_size=6))
def test_whatever_validates_survives_the_round_trip_to_parquet_unchanged(rows):
    result = validate(rows)
    assert len(result.valid) + len(result.quarantine) == result.rows_read == len(rows)
    with tempfile.TemporaryDirectory() as folder:
        for name, frame in (("valid", result.valid), ("quarantine", result.quarantine)):
            path = write_parquet(Path(folder) / f"{name}.parquet", frame)
            pd.testing.assert_frame_equal(read_parquet(path), frame, check_exact=True)


ONE_ROW = [
    {
        "Case Number": "19-1",
        "Incident Datetime": "01/04/2019 10:00:00 AM",
        "Parent Incident Type": "Theft",
        "Latitude": "42.9",
        "Longitude": "-78.85",
        "Hour of Day": "10",
        "Created At": "",
        "updated_at": "",
        "Incident Description": "",
    }
] * 2


def known(column: str, value: str) -> tuple:
    """One of the defects found by hand, always tried besides what Hypothesis draws."""
    return (ONE_ROW, 0, column, value, BAD[column][1])


# Found by Hypothesis: the corrupted row follows one whose quoted description holds a line break.
AFTER_A_LINE_BREAK = [
    {
        "Case Number": "0",
        "Incident Datetime": "01/02/2009 12:00:00 AM",
        "Parent Incident Type": "Theft",
        "Latitude": "42.875",
        "Longitude": "-78.875",
        "Hour of Day": "",
        "Created At": "",
        "updated_at": "",
        "Incident Description": description,
    }
    for description in ("\n", "")
]


@SETTINGS
@given(corruption())
@example(known("Incident Datetime", "02/30/2019"))
@example(known("Incident Datetime", "04/27/19 06:31"))
@example(known("Incident Datetime", "12/31/9999 11:59:59 PM"))
@example(known("Created At", "12/31/9999 11:59:59 PM"))
@example(known("Hour of Day", "99999"))
@example(known("Hour of Day", "6.5"))
@example(([AFTER_A_LINE_BREAK[0], AFTER_A_LINE_BREAK[1]], 1, "Case Number", "", {"case_number_missing"}))
def test_one_corrupted_cell_quarantines_its_row_and_changes_nothing_else(case):
    rows, row, column, value, allowed = case
    clean = validate(rows)
    assert clean.quarantine.empty, clean.quarantine[["source_line", "rules"]]
    corrupted = validate([*rows[:row], {**rows[row], column: value}, *rows[row + 1 :]])

    quarantine = corrupted.quarantine
    # Its physical line, as the clean run read it (a line break inside an earlier quoted value moves it).
    assert len(quarantine) == 1 and quarantine.loc[0, "source_line"] == clean.valid.loc[row, "source_line"]
    assert set(quarantine.loc[0, "rules"].split(";")) <= allowed, quarantine.loc[0, "rules"]
    canonical = {
        "Case Number": "case_number",
        "Incident Datetime": "incident_datetime",
        "Parent Incident Type": "parent_incident_type",
        "Hour of Day": "hour_of_day",
        "Created At": "created_at",
    }.get(column, column.lower())
    assert quarantine.loc[0, canonical] == value  # the bad text is kept exactly as written

    others = clean.valid.drop(index=row).reset_index(drop=True)
    shift = value.count("\n")  # a line break inside the quoted value moves later rows down a line
    others.loc[row:, "source_line"] += shift
    pd.testing.assert_frame_equal(corrupted.valid, others, check_exact=True)
