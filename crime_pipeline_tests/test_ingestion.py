"""Ingestion and validation through the real assets: fixture rows, dirt, bad files, re-runs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from crime_pipeline.lib.atomic import read_parquet
from crime_pipeline.lib.lake import ingested, partition_key_for
from crime_pipeline.lib.reading import sha256_file
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
        source = source.rename(columns={"case_number": "CASE NUMBER", "incident_datetime": "Incident Datetime",
                                        "parent_incident_type": "Parent Incident Type", "latitude": " Latitude",
                                        "longitude": "Longitude", "address_1": "Address", "zip": "zip_code"})
    elif layout == "new_api":
        source = source.rename(columns={"zip": "zip_code"})
    pipeline.drop(f"{layout}.csv", source.to_csv(index=False).encode())
    assert pipeline.run() == 0, pipeline.output
    incidents = read_parquet(lake.table("incidents"))
    assert len(incidents) == 194
    assert {"case_number", "incident_datetime", "label", "latitude", "longitude", "address", "zip_code"} <= set(incidents)


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
