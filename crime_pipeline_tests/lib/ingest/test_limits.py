"""Bounded work on any input: a file over a documented limit is refused with one sentence naming the
file and the limit (never cut silently), and a file within them reads whole, however long a field.

The wide and long files are built here, just over each limit (lib/ingest/limits.py).
"""

from __future__ import annotations

import csv
import io
import re

import pytest

from crime_pipeline.lib.ingest import limits
from crime_pipeline.lib.ingest.raw_csv import UnreadableFileError, read_raw_csv, sha256_file
from crime_pipeline.lib.ingest.record_count import count_csv_records
from crime_pipeline.lib.ingest.stages import ingest_file
from crime_pipeline.lib.lake.errors import StageError
from crime_pipeline.lib.lake.layout import partition_key_for
from crime_pipeline.lib.lake.ledger import ingested
from crime_pipeline_tests.lib.validate.tiny_lake import FILE_A, reads_for

HEADER = ["Case Number", "Incident Datetime", "Parent Incident Type", "Latitude", "Longitude", "Incident Description"]


def export(rows: int = 50, description=lambda i: "short", header: list[str] = HEADER, extra: int = 0) -> bytes:
    """An export of `rows` valid records whose description is `description(i)`, with `extra` filler columns."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*header, *(f"c{i}" for i in range(extra))])
    for i in range(rows):
        writer.writerow(
            [f"19-{i}", "01/04/2019 10:00:00 AM", "Theft", "42.9", "-78.85", description(i), *("v" * extra)]
        )
    return out.getvalue().encode()


LONG_FIELD = "x" * 200_000  # over the csv module's default field limit (131,072)


def test_a_200kb_field_is_counted_by_the_independent_reader_and_read_whole():
    data = export(description=lambda i: LONG_FIELD if i == 7 else "short")
    assert count_csv_records(data) == 50  # was: _csv.Error: field larger than field limit (131072)
    read = read_raw_csv("field_200kb.csv", data)
    assert read.rows_read == 50 and read.rows["incident_description"].iloc[7] == LONG_FIELD


@pytest.mark.e2e  # the independent record count runs in a child process
def test_a_200kb_field_file_ingests_with_its_independent_count(lake):
    path = lake.incoming / "field_200kb.csv"
    path.write_bytes(export(description=lambda i: LONG_FIELD if i == 7 else "short"))
    done = ingest_file(reads_for(lake, "raw_incidents"), partition_key_for(sha256_file(path)))
    assert done.read.rows_read == done.entry["records_counted"] == 50


def _refused(name: str, data: bytes) -> str:
    with pytest.raises(UnreadableFileError) as caught:
        read_raw_csv(name, data)
    message = str(caught.value)
    assert message.startswith(f"{name}: ") and message.count(". ") == 0, message  # one sentence
    return message


def test_one_column_over_the_limit_is_refused_naming_the_limit():
    allowed = export(rows=3, extra=limits.MAX_COLUMNS - len(HEADER))
    assert read_raw_csv("widest.csv", allowed).rows_read == 3
    message = _refused("wide.csv", export(rows=3, extra=limits.MAX_COLUMNS - len(HEADER) + 1))
    assert f"{limits.MAX_COLUMNS + 1:,} columns" in message and f"at most {limits.MAX_COLUMNS:,}" in message


def test_a_header_over_the_byte_limit_is_refused_not_cut():
    """The header used to be cut silently at the first 1 MiB (its remaining columns lost)."""
    name = "n" * (limits.MAX_HEADER_BYTES - len(",".join(HEADER)))  # one byte over, once the comma is added
    message = _refused("long_header.csv", export(rows=3, header=[*HEADER, name]))
    assert f"longer than the limit of {limits.MAX_HEADER_BYTES:,} bytes" in message
    header_only = ",".join([*HEADER, name]).encode()  # no line end: the whole file is the header
    assert f"{limits.MAX_HEADER_BYTES:,} bytes" in _refused("header_only.csv", header_only)


def test_a_record_over_the_byte_limit_is_refused_naming_its_line(monkeypatch):
    monkeypatch.setattr(limits, "MAX_RECORD_BYTES", 1_000)  # the same check at 16 MiB, on a small file
    data = export(rows=5, description=lambda i: "y" * 2_000 if i == 3 else "short")
    message = _refused("long_record.csv", data)
    assert re.search(r"the record on line 5 is \d[\d,]* bytes long, over the limit of 1,000 bytes", message), message


@pytest.mark.e2e  # the independent record count runs in a child process
def test_a_file_over_a_limit_writes_nothing_and_holds_back_no_other_file(lake):
    wide = lake.incoming / "wide.csv"
    wide.write_bytes(export(rows=3, extra=limits.MAX_COLUMNS))
    with pytest.raises(StageError, match=rf"^wide\.csv: .*at most {limits.MAX_COLUMNS:,}"):
        ingest_file(reads_for(lake, "raw_incidents"), partition_key_for(sha256_file(wide)))
    assert ingested(lake) == {}  # never `read`: no ledger entry, so not stuck as half-done
    good = lake.incoming / "a.csv"
    good.write_bytes(FILE_A)
    assert ingest_file(reads_for(lake, "raw_incidents"), partition_key_for(sha256_file(good))).read.rows_read == 5
