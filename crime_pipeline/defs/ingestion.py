"""Ingestion: each CSV dropped into raw/incoming becomes one partition, keyed by its content hash."""

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa

from crime_pipeline.defs.lake_io import declared_reads, reads_metadata
from crime_pipeline.defs.metadata import table_metadata
from crime_pipeline.deploy_tags import PER_FILE
from crime_pipeline.lib.lake.parquet import parquet_batch_writer
from crime_pipeline.lib.lake.faults import fault_point
from crime_pipeline.lib.lake.layout import LakeLayout, partition_key_for
from crime_pipeline.lib.lake.ledger import incoming_refusal, ingested, record_ingested
from crime_pipeline.lib.ingest.record_count import counting_records
from crime_pipeline.lib.ingest.raw_csv import DEFAULT_BLOCK_BYTES, RawCsv, sha256_file, stream_raw_csv
from crime_pipeline.lib.lake.storage import exists, listdir, local_copy
from crime_pipeline.resources import LakeResource

incoming_files = dg.DynamicPartitionsDefinition(name="incoming_files")
RAW_BLOCK_BYTES = DEFAULT_BLOCK_BYTES  # CSV text parsed per batch; the raw table gets one row group each
SOURCE_FILE_TAG = "crime_pipeline/source_file"  # set by the sensor and the CLI: where to look first


def locate_incoming(layout: LakeLayout, key: str, hint: str | None = None) -> tuple[Path, str]:
    """Find the incoming file whose content hash starts with `key`; return (path, sha256).

    Hashed in blocks: a file of any size is never held in memory."""
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
    raise dg.Failure(
        description=f"no file in {layout.incoming} has content hash {key}; "
        "it was moved, changed or deleted after it was registered",
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


@dg.asset(
    deps=["open_data_pull"],  # one source of incoming files; exports dropped in by hand are the other
    partitions_def=incoming_files,
    group_name="ingestion",
    kinds={"csv", "pandas", "parquet"},
    code_version="2",
    op_tags=PER_FILE,
)
def raw_incidents(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    """One incoming CSV export, read losslessly: canonical column names, every value as text.

    The export's display names, the older API's snake_case names and the newer API's names all land
    in one schema. Each row keeps its source file, content hash and physical line number; records
    with the wrong number of fields are kept with their raw text for the quarantine. A file that
    cannot be read at all fails with a message naming it and the problem, and writes nothing.
    The ledger records the file with a record count taken by a second, independent reader (the
    evidence the validation's row accounting is checked against) and, for files the built-in
    generator wrote, the generator version.
    """
    layout = lake.layout
    key = context.partition_key
    reads = declared_reads(context, lake, external=True)
    path, digest = locate_incoming(layout, key, context.run.tags.get(SOURCE_FILE_TAG))
    reads.exists(path)  # recorded: the external input this partition is read from
    fault_point("ingest:read")
    target = layout.raw_table(key)
    # pyarrow streams from disk (an object-store file is downloaded first); the independent count
    # of its records runs beside the parse, in a child process
    with local_copy(path) as local, counting_records(local) as records_counted:
        size = local.stat().st_size
        context.log.info(f"reading {path.name} ({size / 1e6:.1f} MB)")
        try:
            read = stream_raw_csv(local, lambda raw: write_raw_table(raw, target, path.name, digest),
                                  name=path.name, block_bytes=RAW_BLOCK_BYTES)
        except ValueError as exc:
            raise dg.Failure(description=str(exc)) from exc
        counted = records_counted()
    fault_point("ingest:after_raw")
    generator = reads.json(layout.generated_manifest, {"files": {}})["files"].get(key, {})
    entry = record_ingested(layout, key, {
        "file": path.name, "city": read.city, "sha256": digest, "bytes": size, "rows_read": read.rows_read,
        "records_counted": counted,
        "generator_version": generator.get("generator_version") if generator.get("sha256") == digest else None,
    })
    fault_point("ingest:after_ledger")
    context.log.info(f"{path.name}: {read.city}, {read.rows_read} rows read, {read.malformed} malformed records")
    return dg.MaterializeResult(
        metadata={
            **table_metadata(read.sample, target),
            "dagster/row_count": dg.MetadataValue.int(read.rows_read),
            "source_file": path.name,
            "city": read.city,  # the city profile the header matched (or the file-name prefix named)
            "sha256": digest,
            "malformed_records": read.malformed,
            "ingestion_order": entry["seq"],
            "original_headers": ", ".join(read.original_headers),
            "records_counted": entry["records_counted"],
            **reads_metadata(reads),
        }
    )
