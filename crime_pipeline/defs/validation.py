"""Validation: the pandera contract per file, the quarantine, and the merged incidents table.

Both stages write, audit, then publish: tables go to a staged name, the blocking checks run on
what was staged against independent evidence (the ledger's record count from a second reader, the
published quarantine's own row count, the staged file read back), and only then are they renamed
to where readers look. A failed check keeps the previous published version and the failure shows.
"""

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crime_pipeline.defs.automation_conditions import MERGE_WHEN_ANY_FILE_CHANGES, REFRESH_WHEN_UPSTREAM_CHANGES
from crime_pipeline.defs.ingestion import incoming_files, raw_incidents
from crime_pipeline.defs.lake_io import declared_reads, reads_metadata
from crime_pipeline.defs.open_data import freshness_after_pull
from crime_pipeline.defs.metadata import column_lineage, content_version, same_name_lineage, table_metadata
from crime_pipeline.deploy_tags import PER_FILE, TABLE
from crime_pipeline.lib.lake.parquet import parquet_batch_writer, parquet_rows, read_table
from crime_pipeline.lib.lake.atomic import publish, reject, rejected_path, staged_path, write_json
from crime_pipeline.lib.cities.profiles import DEFAULT_CITY, get_profile
from crime_pipeline.lib.lake.faults import fault_point
from crime_pipeline.lib.lake.ledger import record_validated, split_by_status
from crime_pipeline.lib.validate.quality import accounting_problems, quality_report
from crime_pipeline.lib.validate.validation import KEY_COLUMNS, RULES, ValidationTotals, local_time, supersede, validate_incidents
from crime_pipeline.resources import LakeResource


VALIDATION_BATCH_ROWS = 250_000  # rows validated at once: about 1 GB of pandas at the export's width


def ingestion_time(entry: dict) -> pd.Timestamp:
    """The ledger's first ingestion time of a file, in Buffalo local time: validation's 'now'."""
    return local_time(entry["ingested_at"])


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "validated_incidents",
            deps=[raw_incidents],
            group_name="validation",
            kinds={"pandas", "parquet"},
            code_version="3",
            automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
            description="Rows of one file that pass the pandera IncidentSchema, typed: datetimes, "
            "coordinates, the canonical label, and flags for soft problems (hour mismatch, noon default).",
        ),
        dg.AssetSpec(
            "incident_quarantine",
            deps=[raw_incidents],
            group_name="validation",
            kinds={"pandas", "parquet"},
            code_version="3",
            automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
            description="Rows of one file that failed validation, as read, with their source line "
            "and every rule they failed. Nothing is dropped: it all lands here.",
        ),
    ],
    partitions_def=incoming_files,
    op_tags=PER_FILE,
    check_specs=[
        dg.AssetCheckSpec(
            "rows_accounted_for",
            asset="validated_incidents",
            blocking=True,
            description="Rows in the staged valid + quarantine tables = records in the file, as counted "
            "at ingestion by a second, independent CSV reader. Only then are the tables published.",
        )
    ],
)
def validate_file(context: dg.AssetExecutionContext, lake: LakeResource):
    """Validate one ingested file against the pandera IncidentSchema; quarantine what fails."""
    layout = lake.layout
    key = context.partition_key
    reads = declared_reads(context, lake)
    raw_path = layout.raw_table(key)
    raw_columns = reads.parquet_schema(raw_path).names
    entry = reads.json(layout.ledger)["files"][key]
    as_of = ingestion_time(entry)
    profile = get_profile(entry.get("city", DEFAULT_CITY))  # the city the file's header matched at ingestion
    fault_point("validate:before_write")
    outputs = (layout.validated_table(key), layout.quarantine_table(key), layout.validation_summary(key))
    totals = ValidationTotals()
    # Batch by batch (bounded memory); row groups follow the raw table's, so lines stay in order.
    with parquet_batch_writer(staged_path(outputs[0])) as valid_sink, \
            parquet_batch_writer(staged_path(outputs[1])) as quarantine_sink:
        for batch in reads.parquet_batches(raw_path, batch_rows=VALIDATION_BATCH_ROWS):
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
        context.log.error(f"{entry['file']}: {counted} records in the file but {staged_valid} valid + "
                          f"{staged_quarantine} quarantined; not published, the previous version stays")
    context.log.info(
        f"{entry['file']}: {totals.rows_read} read, {totals.valid} valid, "
        f"{totals.quarantined} quarantined {totals.by_rule}"
    )
    lineage = same_name_lineage(valid_sample, "raw_incidents", raw_columns) | {
        "label": [("raw_incidents", profile.label_column)],
        "latitude": [("raw_incidents", "latitude"), ("raw_incidents", "location")],
        "longitude": [("raw_incidents", "longitude"), ("raw_incidents", "location")],
        "hour_of_day_reported": [("raw_incidents", "hour_of_day")],
        "hour_of_day": [("raw_incidents", "incident_datetime")],
    }
    served = outputs[0] if balanced else rejected_path(outputs[0])
    yield dg.MaterializeResult(
        asset_key="validated_incidents",
        data_version=content_version(served),
        metadata={**table_metadata(valid_sample, outputs[0]), "dagster/row_count": dg.MetadataValue.int(totals.valid),
                  "rows_read": totals.rows_read, "published": balanced,
                  "validated_as_of": str(ingestion_time(entry)), "city": profile.key,
                  "dagster/column_lineage": column_lineage(lineage),
                  **{f"flag/{k}": v for k, v in totals.flags.items()}, **reads_metadata(reads)},
    )
    yield dg.MaterializeResult(
        asset_key="incident_quarantine",
        metadata={
            **table_metadata(quarantine_sample, outputs[1]),
            "dagster/row_count": dg.MetadataValue.int(totals.quarantined),
            "published": balanced,
            **{f"rule/{k}": v for k, v in totals.by_rule.items()},
            "rules": dg.MetadataValue.md("\n".join(f"- `{k}`: {v}" for k, v in RULES.items())),
        },
    )
    yield dg.AssetCheckResult(
        asset_key="validated_incidents",
        check_name="rows_accounted_for",
        passed=balanced,
        metadata={"records_in_file": counted, "staged_valid": staged_valid,
                  "staged_quarantined": staged_quarantine, "published": balanced},
    )


@dg.asset(
    deps=["validated_incidents", "incident_quarantine"],
    group_name="validation",
    kinds={"pandas", "parquet"},
    code_version="3",
    automation_condition=MERGE_WHEN_ANY_FILE_CHANGES,
    freshness_policy=freshness_after_pull(),
    op_tags=TABLE,
    check_specs=[
        dg.AssetCheckSpec("accounting_reconciles", asset="incidents", blocking=True,
                          description="For every file: records counted at ingestion = rows kept in the staged "
                          "merged table + rows in its published quarantine + rows superseded."),
        dg.AssetCheckSpec("one_record_per_case", asset="incidents", blocking=True,
                          description="No case number appears twice in the staged merged table, read back from disk."),
        dg.AssetCheckSpec("every_file_validated", asset="incidents",
                          description="Every file read into the lake has published validation (WARN: the "
                          "files named are left out until a run validates them)."),
    ],
)
def incidents(context: dg.AssetExecutionContext, lake: LakeResource):
    """Every validated file merged into one table, keeping the newest record of each case number.

    Newest is the latest updated_at / Created At; ties go to the later-ingested file. Also writes
    `reports/data_quality.json`: per file, rows read, valid, quarantined (by rule) and superseded,
    and the files read but not yet validated.
    """
    layout = lake.layout
    reads = declared_reads(context, lake)
    ledger = reads.json(layout.ledger, {"files": {}})
    done, pending = split_by_status(ledger["files"])
    if not done:
        raise dg.Failure(description=f"no validated files yet: drop a CSV export into {layout.incoming}")
    # Newest record per case from a narrow projection; the wide rows are then streamed file by file.
    files, keys, summaries = list(done), [], {}
    for i, (key, entry) in enumerate(done.items()):
        narrow = reads.parquet(layout.validated_table(key), columns=list(KEY_COLUMNS))
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
    report["pending_files"] = [{"partition_key": k, "file": e["file"], "status": e.get("status")} for k, e in pending.items()]
    report["generator_versions"] = {k: e.get("generator_version") for k, e in ledger["files"].items()}
    report["file_cities"] = {k: e.get("city", DEFAULT_CITY) for k, e in ledger["files"].items()}
    target, quality_path = layout.table("incidents"), layout.report_file("data_quality.json")
    schema = _union_schema([reads.parquet_schema(layout.validated_table(k)) for k in files])
    kept_rows = _stream_kept(reads, layout, done, kept, schema, staged_path(target))
    del merged, kept
    write_json(staged_path(quality_path), report)
    fault_point("incidents:staged")

    # Evidence from outside the merge: the ledger's independent counts, the published quarantine
    # tables' own row counts, and the staged table read back from disk.
    staged = read_table(staged_path(target), columns=["case_number", "partition_key"])  # 2 narrow columns
    kept_per_file = staged.column("partition_key").to_pandas().value_counts().to_dict()
    quarantined = {k: reads.parquet_rows(layout.quarantine_table(k)) for k in done}
    problems = accounting_problems(done, kept_per_file, quarantined, superseded_per_file)
    duplicates = len(staged) - len(pc.unique(staged.column("case_number")))
    passed = not problems and duplicates == 0
    for path in (target, quality_path):
        (publish if passed else reject)(path)
    if not passed:
        context.log.error(f"incidents not published (previous version kept): {problems}; {duplicates} duplicate cases")
    totals = report["totals"]
    sample = schema.empty_table().to_pandas()
    context.log.info(f"incidents: {totals}")
    for item in report["pending_files"]:
        context.log.warning(f"{item['file']} ({item['partition_key']}) was read but never validated; left out "
                            "until a run validates it")
    yield dg.MaterializeResult(
        metadata={
            **table_metadata(sample, target),
            "dagster/row_count": dg.MetadataValue.int(kept_rows),
            "published": passed,
            "dagster/column_lineage": column_lineage(same_name_lineage(sample, "validated_incidents", schema.names)),
            **{f"total/{k}": v for k, v in totals.items() if isinstance(v, int)},
            "files": len(summaries),
            "pending_files": len(pending),
            "data_quality": dg.MetadataValue.json(report),
            **reads_metadata(reads),
        },
        data_version=content_version(target if passed else rejected_path(target)),
    )
    yield dg.AssetCheckResult(
        check_name="accounting_reconciles",
        passed=not problems,
        metadata={"totals": dg.MetadataValue.json(totals), "problems": dg.MetadataValue.json(problems)},
    )
    yield dg.AssetCheckResult(check_name="one_record_per_case", passed=duplicates == 0,
                              metadata={"duplicate_case_numbers": duplicates})
    yield dg.AssetCheckResult(
        check_name="every_file_validated", passed=not pending, severity=dg.AssetCheckSeverity.WARN,
        metadata={"files_not_validated": ", ".join(f"{e['file']} ({k})" for k, e in pending.items()) or "none"},
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


def _stream_kept(reads, layout, done: dict, kept: pd.DataFrame, schema: pa.Schema, target) -> int:
    """Write the kept rows of each validated file, file by file in ledger order and in file order
    within a file, taking rows by position (so a row kept twice is written twice and caught)."""
    by_file = {str(k): np.sort(g["position"].to_numpy()) for k, g in kept.groupby("partition_key", observed=True)}
    with parquet_batch_writer(target) as sink:
        for key, entry in done.items():
            wanted, offset = by_file.get(key, np.zeros(0, dtype=np.int64)), 0
            for batch in reads.parquet_batches(layout.validated_table(key), batch_rows=VALIDATION_BATCH_ROWS):
                lo, hi = np.searchsorted(wanted, [offset, offset + batch.num_rows])
                offset += batch.num_rows
                if hi == lo:
                    continue
                rows = batch.take(pa.array(wanted[lo:hi] - (offset - batch.num_rows)))
                columns = {f.name: rows.column(f.name).cast(f.type) if f.name in rows.column_names
                           else pa.nulls(rows.num_rows, f.type) for f in schema}
                columns["ingest_seq"] = pa.repeat(pa.scalar(int(entry["seq"]), pa.int64()), rows.num_rows)
                columns["partition_key"] = pa.repeat(pa.scalar(key, pa.string()), rows.num_rows)
                sink.write(pa.table(columns, schema=schema))
        if sink.writer is None:
            sink.write(schema.empty_table())
        return sink.rows
