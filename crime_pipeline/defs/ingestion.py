"""Ingestion: each CSV dropped into raw/incoming becomes one partition, keyed by its content hash."""

import hashlib
from pathlib import Path

import dagster as dg

from crime_pipeline.defs.lake_io import declared_reads
from crime_pipeline.defs.metadata import table_metadata
from crime_pipeline.deploy_tags import PER_FILE
from crime_pipeline.lib.atomic import write_parquet
from crime_pipeline.lib.faults import fault_point
from crime_pipeline.lib.lake import (
    LakeLayout,
    incoming_refusal,
    ingested,
    partition_key_for,
    record_ingested,
)
from crime_pipeline.lib.quality import count_csv_records
from crime_pipeline.lib.reading import read_raw_csv
from crime_pipeline.lib.storage import exists, listdir, read_bytes
from crime_pipeline.resources import LakeResource

incoming_files = dg.DynamicPartitionsDefinition(name="incoming_files")
SOURCE_FILE_TAG = "crime_pipeline/source_file"  # set by the sensor and the CLI: where to look first


def locate_incoming(layout: LakeLayout, key: str, hint: str | None = None) -> tuple[Path, bytes, str]:
    """Find the incoming file whose content hash starts with `key`; return (path, bytes, sha256)."""
    known = ingested(layout).get(key)
    names = [n for n in (hint, known and known["file"]) if n]
    candidates = [layout.incoming / Path(n).name for n in names]  # a name, never a path out of the folder
    candidates += listdir(layout.incoming)
    for path in candidates:
        if not exists(path) or incoming_refusal(path) is not None:
            continue
        data = read_bytes(path)
        digest = hashlib.sha256(data).hexdigest()
        if partition_key_for(digest) == key:
            return path, data, digest
    raise dg.Failure(
        description=f"no file in {layout.incoming} has content hash {key}; "
        "it was moved, changed or deleted after it was registered",
    )


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
    path, data, digest = locate_incoming(layout, key, context.run.tags.get(SOURCE_FILE_TAG))
    reads.exists(path)  # recorded: the external input this partition is read from
    context.log.info(f"reading {path.name} ({len(data) / 1e6:.1f} MB)")
    fault_point("ingest:read")
    try:
        read = read_raw_csv(path, data)
    except ValueError as exc:
        raise dg.Failure(description=str(exc)) from exc
    rows = read.rows
    rows.insert(0, "source_file", path.name)
    rows.insert(1, "source_sha256", digest)
    target = write_parquet(layout.raw_table(key), rows)
    fault_point("ingest:after_raw")
    generator = reads.json(layout.generated_manifest, {"files": {}})["files"].get(key, {})
    entry = record_ingested(layout, key, {
        "file": path.name, "city": read.city, "sha256": digest, "bytes": len(data), "rows_read": read.rows_read,
        "records_counted": count_csv_records(data),
        "generator_version": generator.get("generator_version") if generator.get("sha256") == digest else None,
    })
    fault_point("ingest:after_ledger")
    context.log.info(f"{path.name}: {read.city}, {read.rows_read} rows read, {read.malformed} malformed records")
    return dg.MaterializeResult(
        metadata={
            **table_metadata(rows, target),
            "source_file": path.name,
            "city": read.city,  # the city profile the header matched (or the file-name prefix named)
            "sha256": digest,
            "malformed_records": read.malformed,
            "ingestion_order": entry["seq"],
            "original_headers": ", ".join(read.original_headers),
            "records_counted": entry["records_counted"],
            **reads.metadata(),
        }
    )
