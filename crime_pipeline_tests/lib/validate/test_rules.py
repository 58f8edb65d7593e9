"""Validation rules on hand-made rows: every rule named, every format real exports use."""

from __future__ import annotations

import pandas as pd

from crime_pipeline.lib.validate.parse import parse_datetimes
from crime_pipeline.lib.validate.validate import validate_incidents


def raw(**overrides) -> pd.DataFrame:
    row = {
        "case_number": "19-0001",
        "incident_datetime": "01/04/2019 12:00:00 PM",
        "parent_incident_type": "Theft",
        "latitude": "42.9",
        "longitude": "-78.85",
        "source_line": 2,
    }
    row.update(overrides)
    return pd.DataFrame([row])


def test_datetime_formats_of_the_portal_and_the_api():
    parsed = parse_datetimes(
        pd.Series(
            [
                "03/06/2015 07:35:15 PM",  # portal export
                "2019-01-04T12:00:00.000",  # API floating timestamp: local time
                "2019-01-04T17:00:00.000Z",  # with an offset: converted to Buffalo time (EST, UTC-5)
                "2019-07-04T12:00:00-04:00",
                "2019-02-30 10:00",  # no such day
                None,
            ],
            dtype="string",
        )
    )
    assert parsed.iloc[0] == pd.Timestamp("2015-03-06 19:35:15")
    assert parsed.iloc[1] == pd.Timestamp("2019-01-04 12:00")
    assert parsed.iloc[2] == pd.Timestamp("2019-01-04 12:00")
    assert parsed.iloc[3] == pd.Timestamp("2019-07-04 12:00")
    assert parsed.iloc[4:].isna().all()


def test_coordinates_from_either_location_form():
    frame = pd.concat(
        [
            raw(latitude="", longitude="", location="POINT (-78.85 42.9)"),
            raw(latitude="", longitude="", location="(42.9, -78.85)", source_line=3),
        ],
        ignore_index=True,
    )
    result = validate_incidents(frame)
    assert len(result.valid) == 2
    assert result.valid["latitude"].tolist() == [42.9, 42.9] and result.valid["longitude"].tolist() == [-78.85, -78.85]


def test_each_rule_is_named_and_a_row_gets_all_of_its_rules():
    frame = pd.concat(
        [
            raw(case_number=""),
            raw(incident_datetime="", source_line=3),
            raw(incident_datetime="yesterday", source_line=4),
            raw(incident_datetime="01/01/2005 12:00:00 PM", source_line=5),
            raw(incident_datetime="01/01/2099 12:00:00 PM", source_line=6),
            raw(parent_incident_type="", source_line=7),
            raw(parent_incident_type="SODOMY", source_line=8),
            raw(latitude="", longitude="", source_line=9),
            raw(latitude="north", source_line=10),
            raw(latitude="40.71", longitude="-74.0", source_line=11),
            raw(case_number="", incident_datetime="never", latitude="0", longitude="0", source_line=12),
            raw(parent_incident_type=" breaking and  entering ", source_line=13),
        ],
        ignore_index=True,
    )
    result = validate_incidents(frame)
    rules = dict(zip(result.quarantine["source_line"], result.quarantine["rules"]))
    assert rules == {
        2: "case_number_missing",
        3: "incident_datetime_missing",
        4: "incident_datetime_unparseable",
        5: "incident_datetime_before_2009",
        6: "incident_datetime_in_future",
        7: "label_missing",
        8: "label_not_canonical",
        9: "coordinates_missing",
        10: "coordinates_unparseable",
        11: "coordinates_outside_city",
        12: "case_number_missing;coordinates_outside_city;incident_datetime_unparseable",
    }
    assert result.valid["label"].tolist() == ["Breaking & Entering"]
    assert result.rows_read == len(result.valid) + len(result.quarantine) == 12


def test_header_only_and_all_malformed_files_still_account_for_every_row(tmp_path):
    from crime_pipeline.lib.ingest.raw_csv import read_raw_csv

    header = "Case Number,Incident Datetime,Parent Incident Type,Latitude,Longitude\n"
    (tmp_path / "header.csv").write_text(header)
    result = validate_incidents(read_raw_csv(tmp_path / "header.csv").rows)
    assert (result.rows_read, len(result.valid), len(result.quarantine)) == (0, 0, 0)
    (tmp_path / "broken.csv").write_text(header + "1,2\n3\n")
    result = validate_incidents(read_raw_csv(tmp_path / "broken.csv").rows)
    assert (result.rows_read, len(result.valid)) == (2, 0)
    assert result.quarantine["rules"].tolist() == ["row_malformed", "row_malformed"]
    assert result.quarantine["source_line"].tolist() == [2, 3]


AS_OF = pd.Timestamp("2020-01-01 00:00")


def rules_by_line(frame: pd.DataFrame, as_of: pd.Timestamp = AS_OF) -> dict[int, str]:
    result = validate_incidents(frame.reset_index(drop=True), as_of=as_of)
    assert result.rows_read == len(result.valid) + len(result.quarantine) == len(frame)
    return dict(zip(result.quarantine["source_line"], result.quarantine["rules"]))


def rows(*overrides: dict) -> pd.DataFrame:
    return pd.concat([raw(**o, source_line=line) for line, o in enumerate(overrides, start=2)], ignore_index=True)


def test_two_digit_years_and_year_9999_quarantine_their_row_instead_of_raising():
    # A 2-digit year is refused, not guessed: the portal writes 4 digits, and a pivot year (19 ->
    # 2019 or 1919?) would silently put some incidents in the wrong century.
    frame = rows(
        {"incident_datetime": "04/27/19 06:31"},
        {"incident_datetime": "12/31/9999 11:59:59 PM"},
        {"incident_datetime": "9999-12-31T23:59:59.000"},
        {"incident_datetime": "0019-04-27T06:31:00"},
        {"incident_datetime": "01/01/1850 12:00:00 PM"},
        {},
    )
    assert rules_by_line(frame) == {
        2: "incident_datetime_unparseable",
        3: "incident_datetime_in_future",
        4: "incident_datetime_in_future",
        5: "incident_datetime_before_2009",
        6: "incident_datetime_before_2009",
    }


def test_created_and_updated_at_that_do_not_parse_or_are_out_of_range_quarantine_their_row():
    frame = rows(
        {"created_at": "12/31/9999 11:59:59 PM"},
        {"updated_at": "12/31/9999 11:59:59 PM"},
        {"created_at": "yesterday"},
        {"updated_at": "02/30/2019 10:00:00 AM"},
        {"created_at": "01/01/1801 10:00:00 AM", "updated_at": "04/27/19 06:31"},
        {"created_at": "01/05/2019 10:00:00 AM", "updated_at": "   "},  # blank: missing, allowed
        {"created_at": "2019-12-31T23:00:00-05:00", "updated_at": "2020-01-01T12:00:00"},  # within as_of + 1 day
    )
    assert rules_by_line(frame) == {
        2: "created_at_out_of_range",
        3: "updated_at_out_of_range",
        4: "created_at_unparseable",
        5: "updated_at_unparseable",
        6: "created_at_out_of_range;updated_at_unparseable",
    }
    valid = validate_incidents(frame, as_of=AS_OF).valid
    assert valid["created_at"].tolist() == [pd.Timestamp("2019-01-05 10:00"), pd.Timestamp("2019-12-31 23:00")]
    assert valid["updated_at"].isna().tolist() == [True, False]
    assert str(valid["created_at"].dtype) == "datetime64[ns]"


def test_impossible_dates_are_unparseable_in_every_format_never_rolled_over():
    values = [
        "02/30/2019",
        "04/31/2019 10:00:00",
        "02/29/2019 12:00:00 PM",
        "13/01/2019 10:00",
        "01/01/2019 23:59:60",
        "01/01/2019 10:59:60",
        "01/01/2019 24:00",
        "00/10/2019",
        "2019-02-30T10:00:00",
        "2019-04-31",
        "2019-02-29T12:00:00Z",
        "2019",
        "2019-01",
        "2019-01-04T10:00:00.1234567",
    ]
    parsed = parse_datetimes(pd.Series(values, dtype="string"))
    assert parsed.isna().all(), parsed[parsed.notna()]
    leap = parse_datetimes(pd.Series(["02/29/2020", "2020-02-29T10:00:00", "1/2/2019 7:05:09 PM"], dtype="string"))
    assert leap.tolist() == [
        pd.Timestamp("2020-02-29"),
        pd.Timestamp("2020-02-29 10:00"),
        pd.Timestamp("2019-01-02 19:05:09"),
    ]
    frame = rows(*({"incident_datetime": v} for v in values))
    assert set(rules_by_line(frame).values()) == {"incident_datetime_unparseable"}
    assert len(rules_by_line(frame)) == len(values)


def test_hour_of_day_must_be_a_whole_hour_never_wrapped_or_truncated():
    bad = ["99999", "6.5", "-1", "24", "seven", "1e1", "0x10", "inf"]
    good = ["7", "07", "0", "23", "12.0", " 12 ", ""]
    frame = rows(*({"hour_of_day": v} for v in bad + good))
    rules = rules_by_line(frame)
    assert rules == {line: "hour_of_day_invalid" for line in range(2, 2 + len(bad))}
    valid = validate_incidents(frame, as_of=AS_OF).valid
    assert valid["hour_of_day_reported"].tolist() == [7, 7, 0, 23, 12, 12, pd.NA]
    assert valid["hour_of_day_mismatch"].tolist() == [True, True, True, True, False, False, False]


def test_validation_is_a_function_of_the_rows_and_as_of_not_of_the_clock(monkeypatch):
    import crime_pipeline.lib.validate.validate as validation  # where validate_incidents looks up local_now

    frame = rows(
        {"incident_datetime": "06/01/2150 10:00:00 AM", "created_at": "06/01/2150 11:00:00 AM"},
        {"incident_datetime": "06/01/2019 10:00:00 AM"},
        {"incident_datetime": "06/01/2019 10:00:00 AM", "updated_at": "06/01/2150 11:00:00 AM"},
    )
    # Far from today's date in both directions: only `as_of` can make these outcomes.
    assert rules_by_line(frame, as_of=pd.Timestamp("2200-01-01")) == {}
    assert rules_by_line(frame, as_of=pd.Timestamp("2015-01-01")) == {
        2: "created_at_out_of_range;incident_datetime_in_future",
        3: "incident_datetime_in_future",
        4: "incident_datetime_in_future;updated_at_out_of_range",
    }
    as_of = pd.Timestamp("2019-06-02 09:00")
    results = []
    for clock in ("2010-01-01", "2300-01-01"):
        monkeypatch.setattr(validation, "local_now", lambda clock=clock: pd.Timestamp(clock))
        results.append(validate_incidents(frame, as_of=as_of))
    pd.testing.assert_frame_equal(results[0].valid, results[1].valid)
    pd.testing.assert_frame_equal(results[0].quarantine, results[1].quarantine)
    # Without as_of (the predict path) it is now in Buffalo; the ledger's UTC time converts the same way.
    monkeypatch.setattr(validation, "local_now", lambda: pd.Timestamp("2150-05-01 09:00"))
    quarantine = validate_incidents(frame).quarantine
    assert dict(zip(quarantine["source_line"], quarantine["rules"])) == {
        2: "created_at_out_of_range;incident_datetime_in_future",
        4: "updated_at_out_of_range",
    }
    assert validation.local_time("2019-06-02T13:00:00+00:00") == as_of


def test_a_location_that_is_no_point_is_unparseable_not_missing():
    frame = rows(
        {"latitude": "", "longitude": "", "location": "POINT (garbage)"},
        {"latitude": "", "longitude": "", "location": "(42.9; -78.85)"},
        {"latitude": "", "longitude": "", "location": "UNKNOWN"},
        {"latitude": "nan", "longitude": "inf"},
        {"latitude": "1e400", "longitude": "-78.85"},
        {"latitude": "42.88x", "longitude": "-78.85"},  # a number with junk after it is no number
        {"latitude": "42.88", "longitude": "+-78.85"},
    )
    assert rules_by_line(frame) == {
        2: "coordinates_unparseable",
        3: "coordinates_unparseable",
        4: "coordinates_missing",
        5: "coordinates_missing;coordinates_outside_city",  # "nan" means no value; inf is a number, far away
        6: "coordinates_outside_city",
        7: "coordinates_unparseable",
        8: "coordinates_unparseable",
    }


def test_input_columns_named_like_ours_are_refused_by_validation_not_overwritten():
    import pytest

    with pytest.raises(ValueError, match="label"):
        validate_incidents(raw(label="mine"), as_of=AS_OF)
