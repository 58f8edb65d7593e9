"""The ingestion stage called directly on a tiny lake (no Dagster)."""

from __future__ import annotations

import pytest

from crime_pipeline.lib.ingest.stages import ingest_file, locate_incoming
from crime_pipeline.lib.lake.errors import StageError
from crime_pipeline.lib.lake.ledger import ingested
from crime_pipeline.lib.lake.parquet import read_parquet
from crime_pipeline_tests.lib.validate.tiny_lake import FILE_A, ingest_in_process, reads_for


def test_a_hash_no_incoming_file_has_any_more_names_the_folder_and_the_key(lake):
    (lake.incoming / "other.csv").write_bytes(FILE_A)
    with pytest.raises(StageError) as caught:
        locate_incoming(lake, "0123456789abcdef", hint="gone.csv")
    assert str(caught.value) == (
        f"no file in {lake.incoming} has content hash 0123456789abcdef; "
        "it was moved, changed or deleted after it was registered"
    )


@pytest.mark.e2e  # the independent record count runs in a child process
def test_ingest_file_writes_what_the_tiny_lake_helper_writes_and_counts_with_a_second_reader(lake, tmp_path):
    from crime_pipeline.lib.lake.layout import LakeLayout

    reference = LakeLayout(tmp_path / "reference").ensure()
    key = ingest_in_process(reference, "a.csv", FILE_A)
    (lake.incoming / "a.csv").write_bytes(FILE_A)
    done = ingest_file(reads_for(lake, "raw_incidents"), key, source_hint="a.csv")
    assert (done.file, done.table, done.read.rows_read, done.read.malformed) == ("a.csv", lake.raw_table(key), 5, 1)
    assert done.entry["records_counted"] == 5 and done.entry["seq"] == 1 and done.entry["status"] == "read"
    assert read_parquet(lake.raw_table(key)).equals(read_parquet(reference.raw_table(key)))
    mine, theirs = ingested(lake)[key], ingested(reference)[key]
    for entry in (mine, theirs):
        entry.pop("ingested_at")
    assert mine == theirs


@pytest.mark.e2e  # the independent record count runs in a child process
def test_an_unreadable_file_fails_naming_it_and_writes_nothing(lake):
    from crime_pipeline.lib.ingest.raw_csv import sha256_file
    from crime_pipeline.lib.lake.layout import partition_key_for

    path = lake.incoming / "utf16.csv"
    path.write_bytes("case_number\n1\n".encode("utf-16"))
    key = partition_key_for(sha256_file(path))
    with pytest.raises(StageError, match=r"^utf16\.csv: UTF-16 encoded; the file must be UTF-8 encoded$"):
        ingest_file(reads_for(lake, "raw_incidents"), key)
    assert not lake.raw_table(key).exists() and ingested(lake) == {}
