"""Bounded memory: streaming in many small batches gives exactly what reading whole gives.

Ingestion parses a CSV block by block, validation and the merge go batch by batch; a batch
boundary inside a quoted multi-line value, next to a malformed record or a blank line, must lose
nothing and move no line number.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from crime_pipeline.lib import synthetic
from crime_pipeline.lib.ingest import stages as ingest_stages
from crime_pipeline.lib.ingest.line_scan import record_start_lines
from crime_pipeline.lib.ingest.raw_csv import RawCsv, read_raw_csv, sha256_file
from crime_pipeline.lib.ingest.record_count import count_csv_records, counting_records
from crime_pipeline.lib.lake.ledger import ingested, record_generated
from crime_pipeline.lib.lake.parquet import read_parquet, write_parquet
from crime_pipeline.lib.models.training import stratified_sample
from crime_pipeline.lib.validate import stages as validation_stages
from crime_pipeline.lib.validate.supersede import supersede
from crime_pipeline.lib.validate.validate import validate_incidents
from crime_pipeline_tests.conftest import Pipeline

AS_OF = pd.Timestamp("2026-01-01")


def tricky_export(rows: int, seed: int = 3) -> bytes:
    """A generated export with, every 97 records, a quoted address spanning three lines, a record
    with too few fields, a blank line and a CRLF line end: boundaries of small blocks fall inside them."""
    frame = synthetic.generate_incidents(rows, seed).frame
    text = frame.to_csv(index=False, lineterminator="\n").split("\n")
    out = [text[0]]
    address = frame.columns.get_loc("Address")
    for i, line in enumerate(text[1:-1], start=1):
        if i % 97 == 0:
            fields = line.split(",")
            fields[address] = '"12 Main St\nApt 3, rear\n""B"" door"'
            line = ",".join(fields)
        if i % 97 == 40:
            out.append("24-0000001,01/02/2020 10:00:00 AM,Theft")  # malformed: 3 fields
        if i % 97 == 60:
            out.append("\r" if (i // 97) % 2 == 0 else "")  # a blank line (CRLF or LF) is no record
        out.append(line + ("\r" if i % 97 == 70 else ""))
    return ("\n".join(out) + "\n").encode()


def planted(rows: int, remainder: int) -> int:
    return sum(1 for i in range(1, rows + 1) if i % 97 == remainder)


def test_the_line_scan_is_the_same_for_any_block_boundary():
    data = tricky_export(120)
    whole, quotes, longest, longest_line = record_start_lines(io.BytesIO(data))
    for block in (1, 2, 7, 333, 4096):  # 1 byte: a boundary inside every quote, CRLF and field
        lines, q, most, most_line = record_start_lines(io.BytesIO(data), block=block)
        np.testing.assert_array_equal(lines, whole)
        assert (q, most, most_line) == (quotes, longest, longest_line)
    assert len(whole) == count_csv_records(data) + 1  # the csv module agrees: header + every record


@pytest.mark.e2e
def test_the_count_beside_the_parse_is_the_csv_modules_and_a_failed_one_names_the_file(tmp_path):
    path = tmp_path / "tricky.csv"
    path.write_bytes(tricky_export(300))  # quoted newlines, blank lines, CRLF, malformed records
    with counting_records(path) as counted:
        assert counted() == count_csv_records(path) == 300 + planted(300, 40)
    (tmp_path / "latin1.csv").write_bytes(b"Case Number\n\xe9t\xe9\n")  # the child cannot decode it
    with pytest.raises(RuntimeError, match=r"record count of latin1\.csv failed \(exit 1\): UnicodeDecodeError"):
        with counting_records(tmp_path / "latin1.csv") as counted:
            counted()


def test_small_blocks_read_exactly_what_one_block_reads(tmp_path):
    path = tmp_path / "tricky.csv"
    path.write_bytes(tricky_export(800))
    one = read_raw_csv(path).rows
    malformed = planted(800, 40)
    assert one["raw_record"].notna().sum() == malformed and one["address"].str.contains("\n").sum() == planted(800, 0)
    assert len(one) == count_csv_records(path)
    for block in (4096, 9999):  # about 10-20 records a block: many boundaries in odd places
        raw = RawCsv(path, block_bytes=block)
        tables = list(raw.batches())
        assert len(tables) > 20
        many = pd.concat([t.to_pandas() for t in tables], ignore_index=True)
        many["raw_record"] = many["raw_record"].astype("string")
        pd.testing.assert_frame_equal(many, one, check_exact=True)
        assert (raw.rows_read, raw.malformed) == (len(one), malformed)


def test_ingest_validate_merge_in_many_batches_equal_the_whole_file_at_once(lake, defs, instance, monkeypatch):
    data = tricky_export(rows=1000, seed=11)
    pipe = Pipeline(defs, instance, lake, downstream=["incidents"])
    path = pipe.drop("tricky.csv", data)
    record_generated(lake, sha256_file(path), {"file": path.name, "rows": 1000, "seed": 11})
    monkeypatch.setattr(ingest_stages, "RAW_BLOCK_BYTES", 8192)  # ~40 blocks
    monkeypatch.setattr(validation_stages, "VALIDATION_BATCH_ROWS", 150)  # ~7 validation and merge batches
    assert pipe.run() == 0, pipe.output
    [key] = ingested(lake)

    # The reference: the whole file read, validated and merged at once, through the same Parquet round trip.
    read = read_raw_csv(path)
    rows = read.rows.copy()
    rows.insert(0, "source_file", path.name)
    rows.insert(1, "source_sha256", sha256_file(path))
    whole = validate_incidents(rows, as_of=validation_stages.ingestion_time(ingested(lake)[key]))
    for name, frame in (("valid", whole.valid), ("quarantine", whole.quarantine)):
        write_parquet(lake.root / f"{name}.parquet", frame)
    raw = read_parquet(lake.raw_table(key))
    assert len(raw) == read.rows_read == count_csv_records(path)
    assert raw["source_line"].tolist() == read.rows["source_line"].tolist()
    streamed_valid, streamed_quarantine = (
        read_parquet(lake.validated_table(key)),
        read_parquet(lake.quarantine_table(key)),
    )
    pd.testing.assert_frame_equal(streamed_valid, read_parquet(lake.root / "valid.parquet"), check_exact=True)
    pd.testing.assert_frame_equal(streamed_quarantine, read_parquet(lake.root / "quarantine.parquet"), check_exact=True)
    assert (streamed_quarantine["rules"] == "row_malformed").sum() == planted(1000, 40)

    report = json.loads(lake.report_file("data_quality.json").read_text())
    kept, superseded = supersede(whole.valid.assign(ingest_seq=0))
    assert report["totals"] == {
        "rows_read": read.rows_read,
        "valid": len(kept),
        "quarantined": len(whole.quarantine),
        "superseded": len(superseded),
    }
    assert report["quarantined_by_rule"] == whole.by_rule and report["flags"] == whole.flags
    incidents = read_parquet(lake.table("incidents"))
    assert sorted(incidents["source_line"]) == sorted(kept["source_line"])
    assert incidents["source_line"].is_monotonic_increasing  # file order, one file


def test_stratified_sample_keeps_each_type_share():
    labels = np.repeat(np.arange(4), [7000, 2000, 900, 100])
    picked = stratified_sample(labels, 1000, seed=1)
    assert np.all(np.diff(picked) > 0) and abs(len(picked) - 1000) <= 4
    np.testing.assert_array_equal(np.bincount(labels[picked]), [700, 200, 90, 10])
    np.testing.assert_array_equal(stratified_sample(labels, 0), np.arange(len(labels)))
    with pytest.raises(AssertionError):  # a different seed draws different rows
        np.testing.assert_array_equal(stratified_sample(labels, 1000, seed=2), picked)


def test_generation_in_chunks_and_monthly_files(tmp_path):
    one_shot = synthetic.write_export_csv(synthetic.generate_incidents(2000, 7), tmp_path / "a.csv")
    synthetic.write_export_files([tmp_path / "b.csv"], 2000, 7)
    assert (tmp_path / "b.csv").read_bytes() == one_shot.read_bytes()  # small outputs stay byte-identical
    paths = [tmp_path / f"m{m:02d}.csv" for m in range(1, 13)]
    counts = synthetic.write_export_files(paths, 1200, 7, chunk_rows=500)  # 3 chunks, 12 monthly files
    assert sum(counts) == 1200 and [count_csv_records(p) for p in paths] == counts
    for month, path in enumerate(paths, start=1):
        frame = pd.read_csv(path, dtype=str)
        assert (frame["Created At"].str[:2].astype(int) == month).all()
    cases = pd.concat([pd.read_csv(p, dtype=str) for p in paths])["Case Number"].dropna()
    assert cases.duplicated().sum() == 3 * 4  # each 400-row chunk re-issues 1% of its cases; none collide
