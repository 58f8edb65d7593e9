"""The validation stages: one file against the contract (`validate_file`), then every file merged
(`merge_incidents`). Both write, audit, then publish.

Tables go to a staged name, the audit runs on what was staged against independent evidence (the
ledger's record count from a second reader, the published quarantine's own row count, the staged
file read back), and only then are they renamed to where readers look. A failed audit keeps the
previous published version and the rejected one beside it; the result says which happened.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from crime_pipeline.lib.cities.profiles import DEFAULT_CITY, get_profile
from crime_pipeline.lib.lake.atomic import publish, reject, rejected_path, staged_path, write_json
from crime_pipeline.lib.lake.errors import StageError
from crime_pipeline.lib.lake.faults import fault_point
from crime_pipeline.lib.lake.ledger import record_validated, split_by_status
from crime_pipeline.lib.lake.parquet import parquet_batch_writer, parquet_rows, read_table
from crime_pipeline.lib.lake.reads import DeclaredReads
from crime_pipeline.lib.validate.parse import local_time
from crime_pipeline.lib.validate.quality import accounting_problems, quality_report
from crime_pipeline.lib.validate.supersede import KEY_COLUMNS, supersede
from crime_pipeline.lib.validate.validate import ValidationTotals, validate_incidents

VALIDATION_BATCH_ROWS = 250_000  # rows validated at once: about 1 GB of pandas at the export's width ...
VALIDATION_BATCH_BYTES = 64 << 20  # ... and at most this much CSV text, so a wider file has smaller batches
_log = logging.getLogger(__name__)


def ingestion_time(entry: dict) -> pd.Timestamp:
    """The ledger's first ingestion time of a file, in Buffalo local time: validation's 'now'."""
    return local_time(entry["ingested_at"])


@dataclass
class FileValidated:
    """One file's validation: its counts, whether the audit passed and the tables were published."""

    file: str
    city: str  # the profile the file was validated with (the one its header matched at ingestion)
    label_column: str  # that profile's raw column holding the label
    as_of: pd.Timestamp  # the file's ingestion time: the 'now' its clock-based rules judged against
    raw_columns: list[str]
    totals: ValidationTotals
    valid_sample: pd.DataFrame  # no rows: the columns and their types, for the metadata
    quarantine_sample: pd.DataFrame
    valid_table: Path
    quarantine_table: Path
    records_counted: int | None  # the independent evidence: the ledger's count from a second reader
    staged_valid: int
    staged_quarantined: int
    published: bool

    @property
    def served_valid(self) -> Path:
        """The valid table this run produced: the published one, or the rejected one kept to inspect."""
        return self.valid_table if self.published else rejected_path(self.valid_table)


def validate_file(reads: DeclaredReads, key: str, log: logging.Logger = _log) -> FileValidated:
    """Validate one ingested file against the pandera IncidentSchema; quarantine what fails.

    Publishes the valid and quarantine tables and the summary only when their staged rows add up to
    the file's record count at ingestion (then the ledger marks the file validated); else rejects them.
    """
    layout = reads.layout
    raw_path = layout.raw_table(key)
    raw_columns = reads.parquet_schema(raw_path).names
    entry = reads.json(layout.ledger)["files"][key]
    as_of = ingestion_time(entry)
    # the city the file's header matched at ingestion
    profile = get_profile(entry.get("city", DEFAULT_CITY), lake_root=layout.root)
    fault_point("validate:before_write")
    outputs = (layout.validated_table(key), layout.quarantine_table(key), layout.validation_summary(key))
    totals = ValidationTotals()
    # Batch by batch (bounded memory); row groups follow the raw table's, so lines stay in order.
    with (
        parquet_batch_writer(staged_path(outputs[0])) as valid_sink,
        parquet_batch_writer(staged_path(outputs[1])) as quarantine_sink,
    ):
        for batch in reads.parquet_batches(raw_path, batch_rows=batch_rows(entry)):
            result = validate_incidents(batch.to_pandas(), as_of=as_of, profile=profile)
            valid_sink.write(result.valid)
            quarantine_sink.write(result.quarantine)
            totals.add(result)
            valid_sample, quarantine_sample = result.valid.iloc[:0], result.quarantine.iloc[:0]
    summary = {
        "file": entry["file"],
        "rows_read": totals.rows_read,
        "valid": totals.valid,
        "quarantined": totals.quarantined,
        "quarantined_by_rule": totals.by_rule,
        "flags": totals.flags,
    }
    write_json(staged_path(outputs[2]), summary)
    staged_valid = parquet_rows(staged_path(outputs[0]))
    staged_quarantine = parquet_rows(staged_path(outputs[1]))
    counted = entry.get("records_counted")
    balanced = staged_valid + staged_quarantine == counted
    if balanced:
        for path in outputs:
            publish(path)
        record_validated(layout, key, {"valid": staged_valid, "quarantined": staged_quarantine})
    else:
        for path in outputs:
            reject(path)
        log.error(
            f"{entry['file']}: {counted} records in the file but {staged_valid} valid + "
            f"{staged_quarantine} quarantined; not published, the previous version stays"
        )
    log.info(
        f"{entry['file']}: {totals.rows_read} read, {totals.valid} valid, "
        f"{totals.quarantined} quarantined {totals.by_rule}"
    )
    return FileValidated(
        file=entry["file"],
        city=profile.key,
        label_column=profile.label_column,
        as_of=as_of,
        raw_columns=raw_columns,
        totals=totals,
        valid_sample=valid_sample,
        quarantine_sample=quarantine_sample,
        valid_table=outputs[0],
        quarantine_table=outputs[1],
        records_counted=counted,
        staged_valid=staged_valid,
        staged_quarantined=staged_quarantine,
        published=balanced,
    )


def batch_rows(entry: dict) -> int:
    """Rows of a file validated at once: VALIDATION_BATCH_ROWS, fewer where they would hold more than
    VALIDATION_BATCH_BYTES of the file's text (its ledger size per record), so memory is bounded by
    the text, not the row count, however wide the rows (limits.MAX_COLUMNS, MAX_RECORD_BYTES)."""
    per_row = max(int(entry.get("bytes") or 0) / max(int(entry.get("records_counted") or 0), 1), 1.0)
    return max(1, min(VALIDATION_BATCH_ROWS, int(VALIDATION_BATCH_BYTES / per_row)))


@dataclass
class IncidentsMerged:
    """The merge of every validated file: its accounting, and whether its audits passed."""

    table: Path
    schema: pa.Schema  # the merged table's columns (every file's, then ingest_seq and partition_key)
    rows: int  # rows written to the staged table
    files: int  # validated files merged
    pending: dict[str, dict]  # ledger entries read but never validated: left out, by partition key
    report: dict  # data_quality.json
    problems: list[str]  # files whose rows do not reconcile with their record count at ingestion
    duplicates: int  # case numbers appearing more than once in the staged table
    published: bool

    @property
    def served(self) -> Path:
        return self.table if self.published else rejected_path(self.table)


def merge_incidents(reads: DeclaredReads, log: logging.Logger = _log) -> IncidentsMerged:
    """Every validated file merged into one table, keeping the newest record of each case: a (city,
    case number) pair, as each city numbers its cases on its own (supersede.py).

    Newest is the latest updated_at / Created At; ties go to the later-ingested file. Also writes
    `reports/data_quality.json`. Published only when, for every file, records counted at ingestion =
    rows kept + rows in its published quarantine + rows superseded, and no case appears twice in the
    staged table read back from disk. StageError when no file is validated yet.
    """
    layout = reads.layout
    ledger = reads.json(layout.ledger, {"files": {}})
    done, pending = split_by_status(ledger["files"])
    if not done:
        raise StageError(f"no validated files yet: drop a CSV export into {layout.incoming}")
    # Newest record per case from a narrow projection; the wide rows are then streamed file by file.
    files, keys, summaries = list(done), [], {}
    cities = sorted({e.get("city", DEFAULT_CITY) for e in done.values()})
    for i, (key, entry) in enumerate(done.items()):
        narrow = reads.parquet(layout.validated_table(key), columns=list(KEY_COLUMNS))
        city = cities.index(entry.get("city", DEFAULT_CITY))  # one city per file, as the ledger recorded it
        narrow["city"] = pd.Categorical.from_codes(np.full(len(narrow), city, dtype=np.int32), categories=cities)
        narrow["ingest_seq"] = entry["seq"]
        narrow["partition_key"] = pd.Categorical.from_codes(np.full(len(narrow), i, dtype=np.int32), categories=files)
        narrow["position"] = np.arange(len(narrow), dtype=np.int64)
        keys.append(narrow)
        summaries[key] = reads.json(layout.validation_summary(key))
    merged = pd.concat(keys, ignore_index=True)
    del keys
    kept, superseded = supersede(merged)
    superseded_per_file = _per_file(superseded)
    report = quality_report(summaries, superseded_per_file, _per_file(kept))
    report["pending_files"] = [
        {"partition_key": k, "file": e["file"], "status": e.get("status")} for k, e in pending.items()
    ]
    report["generator_versions"] = {k: e.get("generator_version") for k, e in ledger["files"].items()}
    report["file_cities"] = {k: e.get("city", DEFAULT_CITY) for k, e in ledger["files"].items()}
    target, quality_path = layout.table("incidents"), layout.report_file("data_quality.json")
    schema = _union_schema([reads.parquet_schema(layout.validated_table(k)) for k in files])
    kept_rows = _stream_kept(reads, done, kept, schema, staged_path(target))
    del merged, kept
    write_json(staged_path(quality_path), report)
    fault_point("incidents:staged")

    # Evidence from outside the merge: the ledger's independent counts, the published quarantine
    # tables' own row counts, and the staged table read back from disk.
    case = [c for c in ("city", "case_number") if c in schema.names]  # a case is a (city, case number)
    staged = read_table(staged_path(target), columns=[*case, "partition_key"])  # narrow columns
    kept_per_file = staged.column("partition_key").to_pandas().value_counts().to_dict()
    quarantined = {k: reads.parquet_rows(layout.quarantine_table(k)) for k in done}
    problems = accounting_problems(done, kept_per_file, quarantined, superseded_per_file)
    duplicates = len(staged) - staged.group_by(case).aggregate([]).num_rows
    passed = not problems and duplicates == 0
    for path in (target, quality_path):
        (publish if passed else reject)(path)
    if not passed:
        log.error(f"incidents not published (previous version kept): {problems}; {duplicates} duplicate cases")
    log.info(f"incidents: {report['totals']}")
    for item in report["pending_files"]:
        log.warning(
            f"{item['file']} ({item['partition_key']}) was read but never validated; left out until a run validates it"
        )
    return IncidentsMerged(
        table=target,
        schema=schema,
        rows=kept_rows,
        files=len(summaries),
        pending=pending,
        report=report,
        problems=problems,
        duplicates=duplicates,
        published=passed,
    )


def _per_file(rows: pd.DataFrame) -> dict[str, int]:
    counts = rows["partition_key"].value_counts()
    return {str(k): int(v) for k, v in counts.items() if v}


def _union_schema(schemas: list[pa.Schema]) -> pa.Schema:
    """Every file's columns (first appearance decides order and type), then the merge's own two."""
    fields: dict[str, pa.Field] = {}
    for schema in schemas:
        for f in schema:
            fields.setdefault(f.name, f)
    fields.pop("ingest_seq", None), fields.pop("partition_key", None)
    extra = [pa.field("ingest_seq", pa.int64()), pa.field("partition_key", pa.string())]
    return pa.schema([*fields.values(), *extra], metadata=schemas[0].metadata)


def _stream_kept(reads: DeclaredReads, done: dict, kept: pd.DataFrame, schema: pa.Schema, target: Path) -> int:
    """Write the kept rows of each validated file, file by file in ledger order and in file order
    within a file, taking rows by position (so a row kept twice is written twice and caught)."""
    by_file = {str(k): np.sort(g["position"].to_numpy()) for k, g in kept.groupby("partition_key", observed=True)}
    with parquet_batch_writer(target) as sink:
        for key, entry in done.items():
            wanted, offset = by_file.get(key, np.zeros(0, dtype=np.int64)), 0
            for batch in reads.parquet_batches(reads.layout.validated_table(key), batch_rows=VALIDATION_BATCH_ROWS):
                lo, hi = np.searchsorted(wanted, [offset, offset + batch.num_rows])
                offset += batch.num_rows
                if hi == lo:
                    continue
                rows = batch.take(pa.array(wanted[lo:hi] - (offset - batch.num_rows)))
                columns = {
                    f.name: rows.column(f.name).cast(f.type)
                    if f.name in rows.column_names
                    else pa.nulls(rows.num_rows, f.type)
                    for f in schema
                }
                columns["ingest_seq"] = pa.repeat(pa.scalar(int(entry["seq"]), pa.int64()), rows.num_rows)
                columns["partition_key"] = pa.repeat(pa.scalar(key, pa.string()), rows.num_rows)
                sink.write(pa.table(columns, schema=schema))
        if sink.writer is None:
            sink.write(schema.empty_table())
        return sink.rows
