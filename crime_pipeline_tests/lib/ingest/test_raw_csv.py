"""Ingestion and validation through the real assets: fixture rows, dirt, bad files, re-runs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from crime_pipeline.lib.ingest.raw_csv import sha256_file
from crime_pipeline.lib.lake.layout import partition_key_for
from crime_pipeline.lib.lake.ledger import ingested
from crime_pipeline.lib.lake.parquet import read_parquet
from crime_pipeline_tests.conftest import API_SAMPLE, lake_snapshot


def quality(lake) -> dict:
    return json.loads(lake.report_file("data_quality.json").read_text())


def test_real_fixture_ingests_with_every_row_accounted_for(pipeline, lake):
    pipeline.drop("api_sample.csv", API_SAMPLE)
    assert pipeline.run() == 0, pipeline.output
    key = partition_key_for(sha256_file(API_SAMPLE))
    raw = read_parquet(lake.raw_table(key))
    source = pd.read_csv(API_SAMPLE, dtype=str, keep_default_na=False)
    assert len(raw) == len(source) == 200
    # Lossless: every value of every column arrives, under its canonical name.
    assert raw["case_number"].tolist() == source["case_number"].tolist()
    assert raw["address"].tolist() == source["address_1"].tolist()
    assert raw["zip_code"].fillna("").tolist() == source["zip"].tolist()
    assert raw["unnamed_0"].tolist() == source["Unnamed: 0"].tolist()
    assert raw["source_line"].tolist() == list(range(2, 202))

    report = quality(lake)
    totals = report["totals"]
    assert totals == {"rows_read": 200, "valid": 194, "quarantined": 6, "superseded": 0}
    assert report["quarantined_by_rule"] == {"coordinates_outside_city": 3, "incident_datetime_before_2009": 3}
    assert report["reconciles"]
    quarantine = read_parquet(lake.quarantine_table(key))
    assert set(quarantine["source_line"]) == {34, 42, 47, 57, 119, 156}
    assert quarantine["source_file"].eq("api_sample.csv").all()
    incidents = read_parquet(lake.table("incidents"))
    assert len(incidents) == 194 and incidents["label"].isin(source["parent_incident_type"]).all()


@pytest.mark.parametrize("layout", ["export", "old_api", "new_api"])
def test_every_known_header_layout_lands_in_one_schema(pipeline, lake, layout):
    source = pd.read_csv(API_SAMPLE, dtype=str, keep_default_na=False).drop(columns="Unnamed: 0")
    if layout == "export":
        source = source.rename(
            columns={
                "case_number": "CASE NUMBER",
                "incident_datetime": "Incident Datetime",
                "parent_incident_type": "Parent Incident Type",
                "latitude": " Latitude",
                "longitude": "Longitude",
                "address_1": "Address",
                "zip": "zip_code",
            }
        )
    elif layout == "new_api":
        source = source.rename(columns={"zip": "zip_code"})
    pipeline.drop(f"{layout}.csv", source.to_csv(index=False).encode())
    assert pipeline.run() == 0, pipeline.output
    incidents = read_parquet(lake.table("incidents"))
    assert len(incidents) == 194
    assert {"case_number", "incident_datetime", "label", "latitude", "longitude", "address", "zip_code"} <= set(
        incidents
    )


def test_each_kind_of_dirt_lands_where_it_belongs(pipeline, lake):
    data = pipeline.generate("gen.csv", rows=6000, seed=5)
    assert pipeline.run() == 0, pipeline.output
    key = next(iter(ingested(lake)))
    quarantine = read_parquet(lake.quarantine_table(key)).set_index("source_line")
    dirt = pd.Series(data.dirt, index=np.arange(2, len(data.dirt) + 2))  # no multi-line values: line = row + 2
    expected = dirt[~dirt.isin(["clean", "reissued_original", "reissued_newer"])]
    assert sorted(quarantine.index) == sorted(expected.index)
    assert (quarantine["rules"] == expected.reindex(quarantine.index)).all()

    report = quality(lake)
    totals = report["totals"]
    assert totals["rows_read"] == 6000
    assert totals["quarantined"] == len(expected)
    assert totals["superseded"] == (dirt == "reissued_original").sum()
    assert totals["valid"] + totals["quarantined"] + totals["superseded"] == 6000
    # Soft dirt stays valid but is counted.
    assert report["flags"]["hour_of_day_mismatch"] > 0 and report["flags"]["time_defaulted_noon"] > 0
    incidents = read_parquet(lake.table("incidents"))
    assert incidents["case_number"].is_unique
    assert incidents["label"].isin(data.true_label).all()
    assert incidents["neighborhood"].ne("UNKNOWN").all()  # UNKNOWN fills became missing values
    # The newer record of each re-issued case is the one kept.
    newer = data.frame.loc[data.dirt == "reissued_newer", ["Case Number", "Created At"]]
    kept = incidents.set_index("case_number").loc[newer["Case Number"], "created_at"]
    assert (kept.to_numpy() == pd.to_datetime(newer["Created At"], format="%m/%d/%Y %I:%M:%S %p").to_numpy()).all()


def test_malformed_records_are_quarantined_with_their_line(pipeline, lake):
    text = API_SAMPLE.read_text().splitlines()
    text.insert(5, "1,2,3")  # a short record at physical line 6
    text[9] = text[9] + ",extra,fields"  # a real record made too long, at line 10
    pipeline.drop("broken_rows.csv", ("\n".join(text) + "\n").encode())
    assert pipeline.run() == 0, pipeline.output
    report = quality(lake)
    assert report["totals"]["rows_read"] == 201  # 200 real records + the inserted short one
    assert report["totals"]["valid"] + report["totals"]["quarantined"] == 201
    assert report["quarantined_by_rule"]["row_malformed"] == 2
    key = next(iter(ingested(lake)))
    quarantine = read_parquet(lake.quarantine_table(key))
    malformed = quarantine[quarantine["rules"] == "row_malformed"]
    assert malformed["source_line"].tolist() == [6, 10]
    assert malformed["raw_record"].iloc[0] == "1,2,3"
    assert report["reconciles"]


@pytest.mark.parametrize(
    "name,content,problem",
    [
        ("empty.csv", b"", "empty"),
        ("image.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a CSV"),
        ("other.csv", b"name,amount\nx,1\n", "missing required column"),
        ("latin1.csv", API_SAMPLE.read_bytes().replace(b"BUFFALO", "BÜFFALO".encode("latin-1"), 1), "undecodable"),
    ],
)
def test_unreadable_file_fails_clearly_and_changes_nothing(pipeline, lake, name, content, problem):
    pipeline.drop("good.csv", API_SAMPLE)
    assert pipeline.run() == 0
    before = lake_snapshot(lake)
    pipeline.drop(name, content)
    assert pipeline.run() == 1
    failure = "\n".join(line for line in pipeline.output if line.startswith("FAILED"))
    assert name in failure and problem in failure
    assert lake_snapshot(lake) == before


def test_same_file_twice_or_renamed_ingests_nothing_new(pipeline, lake, instance):
    pipeline.drop("a.csv", API_SAMPLE)
    assert pipeline.run() == 0
    runs = len(instance.get_runs())
    ledger = lake.ledger.read_bytes()
    assert pipeline.run() == 0
    pipeline.drop("copy of a.csv", API_SAMPLE)
    assert pipeline.run() == 0
    assert len(instance.get_runs()) == runs
    assert lake.ledger.read_bytes() == ledger
    assert any("already ingested" in line for line in pipeline.output)


def test_newer_file_supersedes_older_records_of_the_same_case(pipeline, lake):
    pipeline.drop("first.csv", API_SAMPLE)
    assert pipeline.run() == 0
    source = pd.read_csv(API_SAMPLE, dtype=str, keep_default_na=False)
    update = source.iloc[:30].copy()  # the same cases, re-exported later with a new type
    update["updated_at"] = "06/01/2020 09:00:00 AM"
    update["parent_incident_type"] = "Robbery"
    pipeline.drop("second.csv", update.to_csv(index=False).encode())
    assert pipeline.run() == 0, pipeline.output
    report = quality(lake)
    first, second = report["files"]
    quarantined_in_update = second["quarantined"]
    overlap_valid = 30 - quarantined_in_update
    assert second["valid"] == overlap_valid
    assert first["superseded"] == overlap_valid
    assert report["reconciles"] and report["totals"]["rows_read"] == 230
    incidents = read_parquet(lake.table("incidents")).set_index("case_number")
    kept = incidents.loc[incidents.index.intersection(update["case_number"]), "label"]
    assert len(kept) == overlap_valid and (kept == "Robbery").all()


def test_a_semicolon_separated_export_reads_the_same(pipeline, lake):
    source = pd.read_csv(API_SAMPLE, dtype=str, keep_default_na=False)
    pipeline.drop("semicolons.csv", source.to_csv(index=False, sep=";").encode())
    assert pipeline.run() == 0, pipeline.output
    assert quality(lake)["totals"] == {"rows_read": 200, "valid": 194, "quarantined": 6, "superseded": 0}


HEADER = "Case Number,Incident Datetime,Parent Incident Type,Latitude,Longitude"


def test_a_file_with_unparseable_values_is_validated_with_those_rows_quarantined(pipeline, lake):
    # Each of these used to raise inside validation (OutOfBoundsDatetime) or store a wrong value;
    # the file was then in the ledger but never validated. Now each is one quarantined row.
    rows = [
        "1,04/27/19 06:31,Theft,42.9,-78.85,",
        "2,12/31/9999 11:59:59 PM,Theft,42.9,-78.85,",
        "3,02/30/2019 10:00:00 AM,Theft,42.9,-78.85,",
        "4,01/04/2019 10:00:00 AM,Theft,42.9,-78.85,99999",
        "5,01/04/2019 10:00:00 AM,Theft,42.9,-78.85,6.5",
        "6,01/04/2019 10:00:00 AM,Theft,42.9,-78.85,10",
    ]
    pipeline.drop("values.csv", (HEADER + ",Hour of Day\n" + "\n".join(rows) + "\n").encode())
    assert pipeline.run() == 0, pipeline.output
    report = quality(lake)
    assert report["totals"] == {"rows_read": 6, "valid": 1, "quarantined": 5, "superseded": 0}
    assert report["quarantined_by_rule"] == {
        "hour_of_day_invalid": 2,
        "incident_datetime_in_future": 1,
        "incident_datetime_unparseable": 2,
    }
    incidents = read_parquet(lake.table("incidents"))
    assert incidents["case_number"].tolist() == ["6"] and incidents["hour_of_day_reported"].tolist() == [10]


def test_input_columns_named_like_ours_keep_their_values_under_input_names(pipeline, lake):
    header = HEADER + ",source_file,Source Line,raw_record,rules,label,hour_of_day_mismatch,x_33,x,x"
    row = "1,01/04/2019 10:00:00 AM,Theft,42.9,-78.85,theirs.csv,77,rec,r1,Robbery,maybe,a,b,c"
    pipeline.drop("ours.csv", f"{header}\n{row}\n".encode())
    assert pipeline.run() == 0, pipeline.output
    raw = read_parquet(lake.raw_table(next(iter(ingested(lake)))))
    assert raw.loc[0, "source_file"] == "ours.csv" and raw.loc[0, "source_line"] == 2
    incidents = read_parquet(lake.table("incidents"))
    got = incidents.iloc[0]
    assert (got["label"], got["input_label"], got["input_source_file"], got["input_source_line"]) == (
        "Theft",
        "Robbery",
        "theirs.csv",
        "77",
    )
    assert (got["input_raw_record"], got["input_rules"], got["input_hour_of_day_mismatch"]) == ("rec", "r1", "maybe")
    assert (got["x_33"], got["x"], got["x_2"]) == ("a", "b", "c")
    assert quality(lake)["totals"] == {"rows_read": 1, "valid": 1, "quarantined": 0, "superseded": 0}


def test_canonical_names_are_unique_and_never_reserved_whatever_the_headers():
    import itertools

    from crime_pipeline.lib.cities.columns import RESERVED_COLUMNS, canonical_names

    assert canonical_names(["x_33", "x", "x"]) == ["x_33", "x", "x_2"]
    assert canonical_names(["x", "x", "x_2"]) == ["x", "x_3", "x_2"]
    assert canonical_names(["zip_code", "zip"]) == ["zip_code", "zip"]
    assert canonical_names(["Label", "label", "input_label", ""]) == [
        "input_label",
        "input_label_2",
        "input_label_3",
        "unnamed_3",
    ]
    pool = ["x", "x_2", "X", "zip", "zip_code", "", "unnamed_1", "label", "input_label", "Source Line", "rules"]
    for headers in itertools.product(pool, repeat=3):
        names = canonical_names(list(headers))
        assert len(set(names)) == len(names) == 3, headers
        assert not set(names) & set(RESERVED_COLUMNS), headers


def test_validation_adds_only_reserved_columns():
    from crime_pipeline.lib.cities.columns import RESERVED_COLUMNS
    from crime_pipeline.lib.ingest.raw_csv import read_raw_csv
    from crime_pipeline.lib.validate.validate import validate_incidents

    read = read_raw_csv(API_SAMPLE)
    valid = validate_incidents(read.rows, as_of=pd.Timestamp("2020-01-01")).valid
    added = set(valid.columns) - set(read.rows.columns)
    assert added == {
        "label",
        "hour_of_day_reported",
        "hour_of_day_mismatch",
        "time_defaulted_noon",
        "date_is_first_of_month",
    }
    assert added <= set(RESERVED_COLUMNS)


def test_a_cr_only_file_reads_every_record_on_its_line():
    from crime_pipeline.lib.ingest.raw_csv import read_raw_csv

    lines = [
        HEADER,
        "1,01/04/2019 10:00:00 AM,Theft,42.9,-78.85",
        '2,01/04/2019 10:00:00 AM,"Theft",42.9,-78.85',
        "",
        "3,01/04/2019 10:00:00 AM,Theft,42.9",
    ]
    read = read_raw_csv("mac.csv", "\r".join(lines).encode())
    assert read.rows["source_line"].tolist() == [2, 3, 5]
    assert read.rows["case_number"].tolist()[:2] == ["1", "2"] and read.malformed == 1


def test_the_missing_columns_error_echoes_only_a_real_header(tmp_path):
    from crime_pipeline.lib.ingest.raw_csv import UnreadableFileError, read_raw_csv

    secret = b"root:x:0:0:root,,,:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n"
    with pytest.raises(UnreadableFileError) as err:
        read_raw_csv("passwd.csv", secret)
    message = str(err.value)
    assert message.startswith(
        "passwd.csv: not an incident export: missing required column(s) case_number, "
        "incident_datetime, parent_incident_type, latitude+longitude or location"
    )
    assert "4 field(s)" in message and "not shown" in message and "root" not in message and "bin" not in message
    with pytest.raises(UnreadableFileError) as err:
        read_raw_csv("other.csv", ("name,amount," + ",".join(f"c{i}" for i in range(20)) + "\nx,1\n").encode())
    assert "22 field(s)" in str(err.value) and "header was: 'name', 'amount', 'c0'" in str(err.value)
    assert "'c9' ..." in str(err.value) and "c10" not in str(err.value)


def test_any_failure_inside_the_reader_names_the_file(monkeypatch):
    import pyarrow.csv as pacsv

    from crime_pipeline.lib.ingest.raw_csv import UnreadableFileError, read_raw_csv

    def explode(*args, **kwargs):
        raise RuntimeError("something nobody expected")

    monkeypatch.setattr(pacsv, "open_csv", explode)
    with pytest.raises(UnreadableFileError, match=r"^weird\.csv: not a readable CSV file \(RuntimeError: something"):
        read_raw_csv("weird.csv", f"{HEADER}\n1,2,3,4,5\n".encode())


def test_hard_links_in_incoming_are_refused_like_symlinks(lake, tmp_path):
    import os

    from crime_pipeline.lib.lake.ledger import incoming_refusal, scan_incoming

    outside = tmp_path / "secret.txt"
    outside.write_text("root:x:0:0\n")
    os.link(outside, lake.incoming / "linked.csv")
    (lake.incoming / "plain.csv").write_bytes(API_SAMPLE.read_bytes())
    assert incoming_refusal(lake.incoming / "linked.csv") == (
        "has more than one hard link (it is also some other file); copy it in instead"
    )
    assert incoming_refusal(lake.incoming / "plain.csv") is None
    new, notes = scan_incoming(lake, lambda p: partition_key_for(sha256_file(p)))
    assert [f.path.name for f in new] == ["plain.csv"]
    assert notes == [
        (
            "refused",
            "not ingesting 'linked.csv': it has more than one hard link (it is also "
            "some other file); copy it in instead; left untouched",
        )
    ]
