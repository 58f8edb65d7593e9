"""The ingestion stage: one incoming CSV export becomes one raw table, keyed by its content hash.

`ingest_file` finds the file by its hash, streams it losslessly into `lake/raw_incidents/<key>.parquet`
(every value as text, canonical headers), and records it in the ledger with a record count taken by
a second, independent reader: the evidence validation's row accounting is checked against.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from crime_pipeline.lib.cities.profiles import profiles
from crime_pipeline.lib.ingest.raw_csv import DEFAULT_BLOCK_BYTES, RawCsv, sha256_file, stream_raw_csv
from crime_pipeline.lib.ingest.record_count import counting_records
from crime_pipeline.lib.lake.errors import StageError
from crime_pipeline.lib.lake.faults import fault_point
from crime_pipeline.lib.lake.layout import LakeLayout, partition_key_for
from crime_pipeline.lib.lake.ledger import incoming_refusal, ingested, record_ingested
from crime_pipeline.lib.lake.parquet import parquet_batch_writer
from crime_pipeline.lib.lake.reads import DeclaredReads
from crime_pipeline.lib.lake.storage import exists, listdir, local_copy

RAW_BLOCK_BYTES = DEFAULT_BLOCK_BYTES  # CSV text parsed per batch; the raw table gets one row group each
_log = logging.getLogger(__name__)


def locate_incoming(layout: LakeLayout, key: str, hint: str | None = None) -> tuple[Path, str]:
    """Find the incoming file whose content hash starts with `key`; return (path, sha256).

    `hint` is a file name to look at first. Hashed in blocks: a file of any size is never held in
    memory. StageError when no file there has that hash any more."""
    known = ingested(layout).get(key)
    names = [n for n in (hint, known and known["file"]) if n]
    candidates = [layout.incoming / Path(n).name for n in names]  # a name, never a path out of the folder
    candidates += listdir(layout.incoming)
    for path in candidates:
        if not exists(path) or incoming_refusal(path) is not None:
            continue
        digest = sha256_file(path)
        if partition_key_for(digest) == key:
            return path, digest
    raise StageError(
        f"no file in {layout.incoming} has content hash {key}; it was moved, changed or deleted after it was registered"
    )


@dataclass
class RawWritten:
    rows_read: int
    malformed: int
    original_headers: list[str]
    city: str  # the city profile the header matched (or the file-name prefix named)
    sample: pd.DataFrame  # no rows: the columns and their types, for the metadata


def write_raw_table(raw: RawCsv, target: Path, name: str, digest: str) -> RawWritten:
    """Stream a CSV's record batches into the raw Parquet table, with its source file and hash first."""
    with parquet_batch_writer(target) as sink:
        for batch in raw.batches():
            batch = batch.add_column(0, "source_file", pa.repeat(pa.scalar(name, pa.string()), batch.num_rows))
            batch = batch.add_column(1, "source_sha256", pa.repeat(pa.scalar(digest, pa.string()), batch.num_rows))
            sink.write(batch)
            sample = batch.slice(0, 0)
    return RawWritten(raw.rows_read, raw.malformed, raw.original_headers, raw.layout.city, sample.to_pandas())


@dataclass
class FileIngested:
    """One file read into the lake: what it held, and its ledger entry."""

    file: str  # the file's name in raw/incoming
    sha256: str
    table: Path  # the raw table written
    read: RawWritten
    entry: dict  # the ledger entry recorded (seq, records_counted, ...)


def ingest_file(
    reads: DeclaredReads, key: str, source_hint: str | None = None, log: logging.Logger = _log
) -> FileIngested:
    """Read the incoming file whose content hash starts with `key` into its raw table, and record it.

    The file is found by its hash (`source_hint`, a file name, is looked at first), read with the
    city profiles of this lake, and counted by a second reader in a child process beside the parse.
    A file that cannot be read at all raises StageError naming it and the problem, and writes nothing.
    """
    layout = reads.layout
    path, digest = locate_incoming(layout, key, source_hint)
    reads.exists(path)  # recorded: the external input this partition is read from
    fault_point("ingest:read")
    target = layout.raw_table(key)
    # pyarrow streams from disk (an object-store file is downloaded first); the independent count
    # of its records runs beside the parse, in a child process
    with local_copy(path) as local, counting_records(local) as records_counted:
        size = local.stat().st_size
        log.info(f"reading {path.name} ({size / 1e6:.1f} MB)")
        try:
            read = stream_raw_csv(
                local,
                lambda raw: write_raw_table(raw, target, path.name, digest),
                name=path.name,
                block_bytes=RAW_BLOCK_BYTES,
                cities=profiles(layout.root),
            )
        except ValueError as exc:  # UnreadableFileError, or a city profile that does not load (ProfileError)
            raise StageError(str(exc)) from exc
        try:
            counted = records_counted()
        except RuntimeError as exc:  # the csv module could not read what pyarrow did: the file is suspect
            raise StageError(str(exc)) from exc
    fault_point("ingest:after_raw")
    generator = reads.json(layout.generated_manifest, {"files": {}})["files"].get(key, {})
    entry = record_ingested(
        layout,
        key,
        {
            "file": path.name,
            "city": read.city,
            "sha256": digest,
            "bytes": size,
            "rows_read": read.rows_read,
            "records_counted": counted,
            "generator_version": generator.get("generator_version") if generator.get("sha256") == digest else None,
        },
    )
    fault_point("ingest:after_ledger")
    log.info(f"{path.name}: {read.city}, {read.rows_read} rows read, {read.malformed} malformed records")
    return FileIngested(file=path.name, sha256=digest, table=target, read=read, entry=entry)
