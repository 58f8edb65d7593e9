"""Incoming files as users drop them: replaced under the same name, with exact accounting."""

from __future__ import annotations

import json

import dagster as dg

from crime_pipeline.lib.lake.ledger import ingested
from crime_pipeline_tests.conftest import API_SAMPLE


def test_a_file_replaced_under_the_same_name_is_a_new_partition_and_the_old_one_is_superseded(pipeline, lake):
    """Documented in README (Drop in a new export): new bytes under an old name are a new file; the old
    one stays ingested and its records lose to the new file's (ties go to the later file)."""
    pipeline.drop("monthly.csv", API_SAMPLE)
    assert pipeline.run() == 0, pipeline.output
    pipeline.drop("monthly.csv", API_SAMPLE.read_bytes().replace(b"\n", b"\r\n"))  # re-exported: same records
    assert pipeline.run() == 0, pipeline.output
    old, new = ingested(lake).values()
    assert old["file"] == new["file"] == "monthly.csv" and old["sha256"] != new["sha256"]
    assert old["status"] == new["status"] == "validated"
    quality = json.loads(lake.report_file("data_quality.json").read_text())
    before, after = quality["files"]
    assert quality["reconciles"]
    pick = ("rows_read", "valid", "quarantined", "superseded")
    assert [{k: f[k] for k in pick} for f in quality["files"]] == [
        {"rows_read": 200, "valid": 0, "quarantined": 6, "superseded": 194},  # every valid record re-issued
        {"rows_read": 200, "valid": 194, "quarantined": 6, "superseded": 0},
    ]
    assert [f["partition_key"] for f in (before, after)] == list(ingested(lake))
    for key in ingested(lake):  # where a user picks a partition, the file behind its hash key
        records = pipeline.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("raw_incidents"), asset_partitions=[key]), limit=1
        ).records
        assert records[0].asset_materialization.metadata["source_file"].value == "monthly.csv"
