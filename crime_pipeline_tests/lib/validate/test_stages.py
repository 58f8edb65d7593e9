"""The validation stages called directly on a tiny lake (no Dagster): every row accounted for,
published only when the accounting holds against independent evidence."""

from __future__ import annotations

import json

import pytest

from crime_pipeline.lib.lake.documents import update_json
from crime_pipeline.lib.lake.errors import StageError
from crime_pipeline.lib.lake.ledger import ingested
from crime_pipeline.lib.lake.parquet import read_parquet, write_parquet
from crime_pipeline.lib.validate.stages import merge_incidents, validate_file
from crime_pipeline_tests.lib.validate.tiny_lake import FILE_A, FILE_B, csv_bytes, ingest_in_process, reads_for


def test_validate_file_publishes_when_staged_rows_match_the_independent_count(lake):
    key = ingest_in_process(lake, "a.csv", FILE_A)
    done = validate_file(reads_for(lake, "validate_file"), key)
    assert done.published and done.served_valid == lake.validated_table(key)
    assert (done.records_counted, done.staged_valid, done.staged_quarantined) == (5, 3, 2)
    assert (done.totals.rows_read, done.totals.valid, done.totals.quarantined) == (5, 3, 2)
    assert done.totals.by_rule == {"incident_datetime_unparseable": 1, "row_malformed": 1}
    assert read_parquet(lake.validated_table(key))["case_number"].tolist() == ["A-1", "A-2", "A-3"]
    quarantine = read_parquet(lake.quarantine_table(key))
    assert dict(zip(quarantine["source_line"], quarantine["rules"])) == {
        5: "incident_datetime_unparseable",
        6: "row_malformed",
    }
    summary = json.loads(lake.validation_summary(key).read_text())
    assert (summary["rows_read"], summary["valid"], summary["quarantined"]) == (5, 3, 2)
    entry = ingested(lake)[key]
    assert entry["status"] == "validated" and entry["validation"] == {"valid": 3, "quarantined": 2}
    assert done.city == "buffalo" and done.raw_columns[:3] == ["source_file", "source_sha256", "city"]


def test_validate_file_rejects_when_the_independent_count_disagrees_and_keeps_what_was_published(lake):
    key = ingest_in_process(lake, "a.csv", FILE_A)
    assert validate_file(reads_for(lake, "validate_file"), key).published
    published = lake.validated_table(key).read_bytes()

    def one_more_record(ledger):  # the second reader saw a record the first one lost
        ledger["files"][key]["records_counted"] += 1
        return ledger

    update_json(lake.ledger, one_more_record, {"files": {}})
    done = validate_file(reads_for(lake, "validate_file"), key)
    assert not done.published and done.records_counted == 6
    assert done.served_valid == lake.validated_table(key).with_name(f"{key}.rejected.parquet")
    assert done.served_valid.exists() and lake.quarantine_table(key).with_name(f"{key}.rejected.parquet").exists()
    assert lake.validated_table(key).read_bytes() == published  # the previous version is still served


def test_merge_accounts_for_every_row_read_as_kept_quarantined_or_superseded(lake):
    keys = [ingest_in_process(lake, name, data) for name, data in (("a.csv", FILE_A), ("b.csv", FILE_B))]
    for key in keys:
        assert validate_file(reads_for(lake, "validate_file"), key).published
    pending = ingest_in_process(lake, "c.csv", csv_bytes("C-1,03/01/2019 09:00:00 AM,Theft,42.9,-78.85,"))

    merged = merge_incidents(reads_for(lake, "incidents"))
    assert merged.published and not merged.problems and merged.duplicates == 0
    assert merged.report["totals"] == {"rows_read": 7, "valid": 4, "quarantined": 2, "superseded": 1}
    per_file = {
        f["file"]: (f["rows_read"], f["valid"], f["quarantined"], f["superseded"]) for f in merged.report["files"]
    }
    assert per_file == {"a.csv": (5, 2, 2, 1), "b.csv": (2, 2, 0, 0)}
    assert merged.files == 2 and list(merged.pending) == [pending]  # read, never validated: left out
    assert [f["file"] for f in merged.report["pending_files"]] == ["c.csv"]
    table = read_parquet(lake.table("incidents"))
    assert merged.rows == len(table) == 4
    # File order, then line order within a file; A-1's newer record is file B's.
    assert table["case_number"].tolist() == ["A-2", "A-3", "A-1", "B-1"]
    assert table["partition_key"].tolist() == [keys[0], keys[0], keys[1], keys[1]]
    assert json.loads(lake.report_file("data_quality.json").read_text())["totals"] == merged.report["totals"]


def test_case_numbers_are_per_city_so_the_same_number_in_two_cities_supersedes_nothing(lake):
    """Buffalo's and Chicago's case numbers are independent series: A-1 of each is its own incident."""
    chicago = (
        b"Case Number,Date,Block,Primary Type,Latitude,Longitude\n"
        b"A-1,01/04/2019 10:00:00 PM,0XX W X ST,THEFT,41.90,-87.65\n"
        b"A-2,01/05/2019 10:00:00 PM,0XX W Y ST,BATTERY,41.91,-87.66\n"
    )
    keys = [ingest_in_process(lake, name, data) for name, data in (("a.csv", FILE_A), ("c.csv", chicago))]
    for key in keys:
        assert validate_file(reads_for(lake, "validate_file"), key).published
    merged = merge_incidents(reads_for(lake, "incidents"))
    assert merged.published and not merged.problems and merged.duplicates == 0
    assert merged.report["totals"] == {"rows_read": 7, "valid": 5, "quarantined": 2, "superseded": 0}
    table = read_parquet(lake.table("incidents"))
    assert list(zip(table["city"], table["case_number"])) == [
        ("buffalo", "A-1"),
        ("buffalo", "A-2"),
        ("buffalo", "A-3"),
        ("chicago", "A-1"),
        ("chicago", "A-2"),
    ]


def test_a_validation_batch_holds_at_most_its_byte_budget_of_the_files_text():
    from crime_pipeline.lib.validate import stages

    export = {"bytes": 250 * 1_000_000, "records_counted": 1_000_000}  # the export's ~250 bytes a row
    wide = {"bytes": 20_000 * 3_000, "records_counted": 3_000}  # 1,000 columns of 20 bytes
    assert stages.batch_rows(export) == stages.VALIDATION_BATCH_ROWS
    assert stages.batch_rows(wide) == stages.VALIDATION_BATCH_BYTES // 20_000
    assert stages.batch_rows({"bytes": 10 * stages.VALIDATION_BATCH_BYTES, "records_counted": 1}) == 1
    assert stages.batch_rows({"bytes": 0, "records_counted": 0}) == stages.VALIDATION_BATCH_ROWS


def test_merge_is_not_published_when_a_quarantine_table_disagrees_with_the_count(lake):
    key = ingest_in_process(lake, "a.csv", FILE_A)
    validate_file(reads_for(lake, "validate_file"), key)
    assert merge_incidents(reads_for(lake, "incidents")).published
    published = lake.table("incidents").read_bytes()
    quarantine = read_parquet(lake.quarantine_table(key))
    write_parquet(lake.quarantine_table(key), quarantine.iloc[1:])  # the evidence: one row fewer

    merged = merge_incidents(reads_for(lake, "incidents"))
    assert not merged.published and merged.served == lake.table("incidents").with_name("incidents.rejected.parquet")
    assert merged.problems == [f"a.csv ({key}): 5 records in the file, 3 kept + 1 quarantined + 0 superseded = 4"]
    assert lake.table("incidents").read_bytes() == published


def test_merge_with_no_validated_file_names_the_folder_to_drop_one_into(lake):
    ingest_in_process(lake, "a.csv", FILE_A)  # read, not validated
    with pytest.raises(StageError) as caught:
        merge_incidents(reads_for(lake, "incidents"))
    assert str(caught.value) == f"no validated files yet: drop a CSV export into {lake.incoming}"


def test_merge_that_keeps_a_row_twice_is_not_published(lake, monkeypatch):
    import pandas as pd

    from crime_pipeline.lib.validate import stages

    validate_file(reads_for(lake, "validate_file"), ingest_in_process(lake, "b.csv", FILE_B))
    original = stages.supersede

    def keeps_one_twice(merged):
        kept, superseded = original(merged)
        return pd.concat([kept, kept.iloc[:1]]), superseded

    monkeypatch.setattr(stages, "supersede", keeps_one_twice)
    merged = merge_incidents(reads_for(lake, "incidents"))
    assert not merged.published and merged.duplicates == 1 and merged.rows == 3
    assert not lake.table("incidents").exists() and merged.served.exists()  # nothing was ever published
