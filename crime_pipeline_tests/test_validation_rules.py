"""Validation rules on hand-made rows: every rule named, every format real exports use."""

from __future__ import annotations

import pandas as pd

from crime_pipeline.lib.validation import parse_datetimes, validate_incidents


def raw(**overrides) -> pd.DataFrame:
    row = {"case_number": "19-0001", "incident_datetime": "01/04/2019 12:00:00 PM", "parent_incident_type": "Theft",
           "latitude": "42.9", "longitude": "-78.85", "source_line": 2}
    row.update(overrides)
    return pd.DataFrame([row])


def test_datetime_formats_of_the_portal_and_the_api():
    parsed = parse_datetimes(pd.Series([
        "03/06/2015 07:35:15 PM",  # portal export
        "2019-01-04T12:00:00.000",  # API floating timestamp: local time
        "2019-01-04T17:00:00.000Z",  # with an offset: converted to Buffalo time (EST, UTC-5)
        "2019-07-04T12:00:00-04:00",
        "2019-02-30 10:00",  # no such day
        None,
    ], dtype="string"))
    assert parsed.iloc[0] == pd.Timestamp("2015-03-06 19:35:15")
    assert parsed.iloc[1] == pd.Timestamp("2019-01-04 12:00")
    assert parsed.iloc[2] == pd.Timestamp("2019-01-04 12:00")
    assert parsed.iloc[3] == pd.Timestamp("2019-07-04 12:00")
    assert parsed.iloc[4:].isna().all()


def test_coordinates_from_either_location_form():
    frame = pd.concat([
        raw(latitude="", longitude="", location="POINT (-78.85 42.9)"),
        raw(latitude="", longitude="", location="(42.9, -78.85)", source_line=3),
    ], ignore_index=True)
    result = validate_incidents(frame)
    assert len(result.valid) == 2
    assert result.valid["latitude"].tolist() == [42.9, 42.9] and result.valid["longitude"].tolist() == [-78.85, -78.85]


def test_each_rule_is_named_and_a_row_gets_all_of_its_rules():
    frame = pd.concat([
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
    ], ignore_index=True)
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
    from crime_pipeline.lib.reading import read_raw_csv

    header = "Case Number,Incident Datetime,Parent Incident Type,Latitude,Longitude\n"
    (tmp_path / "header.csv").write_text(header)
    result = validate_incidents(read_raw_csv(tmp_path / "header.csv").rows)
    assert (result.rows_read, len(result.valid), len(result.quarantine)) == (0, 0, 0)
    (tmp_path / "broken.csv").write_text(header + "1,2\n3\n")
    result = validate_incidents(read_raw_csv(tmp_path / "broken.csv").rows)
    assert (result.rows_read, len(result.valid)) == (2, 0)
    assert result.quarantine["rules"].tolist() == ["row_malformed", "row_malformed"]
    assert result.quarantine["source_line"].tolist() == [2, 3]
