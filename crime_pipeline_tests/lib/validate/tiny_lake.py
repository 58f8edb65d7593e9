"""A tiny lake for calling stage functions directly: no Dagster, no process.

`ingest_in_process` leaves what `ingest_file` leaves (the raw table, and the ledger entry with a
record count by the csv module) without its child-process counter, so a fast-tier test can start
from an ingested file; `reads_for` is the declared reader each asset step gets.
"""

from __future__ import annotations

from crime_pipeline.lib.ingest.raw_csv import sha256_file, stream_raw_csv
from crime_pipeline.lib.ingest.record_count import count_csv_records
from crime_pipeline.lib.ingest.stages import write_raw_table
from crime_pipeline.lib.lake.layout import LakeLayout, partition_key_for
from crime_pipeline.lib.lake.ledger import record_ingested
from crime_pipeline.lib.lake.reads import DeclaredReads

# Each step's own assets and the assets it depends on: what declared_reads allows it in a run.
STEP_READS = {
    "raw_incidents": {"raw_incidents", "open_data_pull", "external"},
    "validate_file": {"validated_incidents", "incident_quarantine", "raw_incidents"},
    "incidents": {"incidents", "validated_incidents", "incident_quarantine"},
    "incident_features": {"incident_features", "incidents"},
    "dataset_splits": {"dataset_splits", "incident_features"},
}
HEADER = "case_number,incident_datetime,parent_incident_type,latitude,longitude,updated_at"


def reads_for(layout: LakeLayout, step: str) -> DeclaredReads:
    return DeclaredReads(layout, step, STEP_READS[step])


def csv_bytes(*records: str) -> bytes:
    return ("\n".join([HEADER, *records]) + "\n").encode()


def ingest_in_process(layout: LakeLayout, name: str, data: bytes) -> str:
    """Drop `data` into raw/incoming as `name` and ingest it in this process; return its partition key."""
    path = layout.incoming / name
    path.write_bytes(data)
    digest = sha256_file(path)
    key = partition_key_for(digest)
    read = stream_raw_csv(path, lambda raw: write_raw_table(raw, layout.raw_table(key), name, digest))
    record_ingested(
        layout,
        key,
        {
            "file": name,
            "city": read.city,
            "sha256": digest,
            "bytes": len(data),
            "rows_read": read.rows_read,
            "records_counted": count_csv_records(path),
            "generator_version": None,
        },
    )
    return key


# Five records: three valid, one with an impossible date, one with too few fields.
FILE_A = csv_bytes(
    "A-1,01/04/2019 10:00:00 AM,Theft,42.90,-78.85,01/05/2019 10:00:00 AM",
    "A-2,01/05/2019 11:00:00 AM,Assault,42.91,-78.86,",
    "A-3,01/06/2019 12:30:00 PM,Robbery,42.92,-78.84,",
    "A-4,not a date,Theft,42.90,-78.85,",
    "A-5,01/07/2019 01:00:00 PM,Theft",
)
# A later export: case A-1 updated (it supersedes file A's record), and one new case.
FILE_B = csv_bytes(
    "A-1,01/04/2019 10:00:00 AM,Theft,42.90,-78.85,02/01/2019 10:00:00 AM",
    "B-1,02/02/2019 09:00:00 AM,Assault,42.93,-78.87,",
)
