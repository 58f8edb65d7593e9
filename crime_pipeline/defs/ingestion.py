"""Ingestion: each CSV dropped into raw/incoming becomes one partition, keyed by its content hash.

The work is lib/ingest/stages.py's `ingest_file`; the asset turns its result into Dagster metadata.
"""

import dagster as dg

from crime_pipeline.defs.lake_io import declared_reads, reads_metadata, stage_failures
from crime_pipeline.defs.metadata import table_metadata
from crime_pipeline.deploy_tags import PER_FILE
from crime_pipeline.lib.ingest.stages import ingest_file
from crime_pipeline.resources import LakeResource
from crime_pipeline.runs import SOURCE_FILE_TAG  # set by the sensor and the CLI: where to look first

incoming_files = dg.DynamicPartitionsDefinition(name="incoming_files")


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
    cannot be read at all, or is over a limit (lib/ingest/limits.py: a 64 KiB header, 1,000 columns,
    16 MiB a record), fails with a message naming it and the problem or the limit, and writes nothing.
    The ledger records the file with a record count taken by a second, independent reader (the
    evidence the validation's row accounting is checked against) and, for files the built-in
    generator wrote, the generator version. A partition key is the first 16 hex digits of the file's
    SHA-256; the file it stands for is the `source_file` of the partition's materialization.
    """
    reads = declared_reads(context, lake, external=True)
    with stage_failures():
        done = ingest_file(reads, context.partition_key, context.run.tags.get(SOURCE_FILE_TAG), log=context.log)
    read = done.read
    return dg.MaterializeResult(
        metadata={
            **table_metadata(read.sample, done.table),
            "dagster/row_count": dg.MetadataValue.int(read.rows_read),
            "source_file": done.file,
            "city": read.city,  # the city profile the header matched (or the file-name prefix named)
            "sha256": done.sha256,
            "malformed_records": read.malformed,
            "ingestion_order": done.entry["seq"],
            "original_headers": ", ".join(read.original_headers),
            "records_counted": done.entry["records_counted"],
            **reads_metadata(reads),
        }
    )
