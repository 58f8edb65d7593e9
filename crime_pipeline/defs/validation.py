"""Validation: the pandera contract per file, the quarantine, and the merged incidents table.

Both stages write, audit, then publish: tables go to a staged name, the blocking checks run on
what was staged against independent evidence (the ledger's record count from a second reader, the
published quarantine's own row count, the staged file read back), and only then are they renamed
to where readers look. A failed check keeps the previous published version and the failure shows.
"""

import dagster as dg
import pandas as pd
import pyarrow.compute as pc

from crime_pipeline.defs.automation_conditions import MERGE_WHEN_ANY_FILE_CHANGES, REFRESH_WHEN_UPSTREAM_CHANGES
from crime_pipeline.defs.ingestion import incoming_files, raw_incidents
from crime_pipeline.defs.lake_io import declared_reads
from crime_pipeline.defs.open_data import freshness_after_pull
from crime_pipeline.defs.metadata import column_lineage, content_version, same_name_lineage, table_metadata
from crime_pipeline.deploy_tags import PER_FILE, TABLE
from crime_pipeline.lib.atomic import (parquet_metadata, publish, read_table, reject, rejected_path, staged_path,
                                       write_json, write_parquet)
from crime_pipeline.lib.cities import DEFAULT_CITY
from crime_pipeline.lib.faults import fault_point
from crime_pipeline.lib.lake import record_validated, split_by_status
from crime_pipeline.lib.quality import accounting_problems, quality_report
from crime_pipeline.lib.validation import RULES, city_of, local_time, supersede, validate_incidents
from crime_pipeline.resources import LakeResource


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
    raw = reads.parquet(layout.raw_table(key))
    entry = reads.json(layout.ledger)["files"][key]
    result = validate_incidents(raw, as_of=ingestion_time(entry))
    fault_point("validate:before_write")
    outputs = (layout.validated_table(key), layout.quarantine_table(key), layout.validation_summary(key))
    summary = {
        "file": entry["file"],
        "rows_read": result.rows_read,
        "valid": len(result.valid),
        "quarantined": len(result.quarantine),
        "quarantined_by_rule": result.by_rule,
        "flags": result.flags,
    }
    write_parquet(staged_path(outputs[0]), result.valid)
    write_parquet(staged_path(outputs[1]), result.quarantine)
    write_json(staged_path(outputs[2]), summary)
    staged_valid = parquet_metadata(staged_path(outputs[0])).num_rows
    staged_quarantine = parquet_metadata(staged_path(outputs[1])).num_rows
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
        f"{entry['file']}: {result.rows_read} read, {len(result.valid)} valid, "
        f"{len(result.quarantine)} quarantined {result.by_rule}"
    )
    lineage = same_name_lineage(result.valid, "raw_incidents", raw.columns) | {
        "label": [("raw_incidents", city_of(raw).label_column)],
        "latitude": [("raw_incidents", "latitude"), ("raw_incidents", "location")],
        "longitude": [("raw_incidents", "longitude"), ("raw_incidents", "location")],
        "hour_of_day_reported": [("raw_incidents", "hour_of_day")],
        "hour_of_day": [("raw_incidents", "incident_datetime")],
    }
    served = outputs[0] if balanced else rejected_path(outputs[0])
    yield dg.MaterializeResult(
        asset_key="validated_incidents",
        data_version=content_version(served),
        metadata={**table_metadata(result.valid, outputs[0]), "rows_read": result.rows_read, "published": balanced,
                  "validated_as_of": str(ingestion_time(entry)), "city": city_of(raw).key,
                  "dagster/column_lineage": column_lineage(lineage),
                  **{f"flag/{k}": v for k, v in result.flags.items()}, **reads.metadata()},
    )
    yield dg.MaterializeResult(
        asset_key="incident_quarantine",
        metadata={
            **table_metadata(result.quarantine, outputs[1]),
            "published": balanced,
            **{f"rule/{k}": v for k, v in result.by_rule.items()},
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
    frames, summaries = [], {}
    for key, entry in done.items():
        frames.append(reads.parquet(layout.validated_table(key)).assign(ingest_seq=entry["seq"], partition_key=key))
        summaries[key] = reads.json(layout.validation_summary(key))
    if not frames:
        raise dg.Failure(description=f"no validated files yet: drop a CSV export into {layout.incoming}")
    merged = pd.concat(frames, ignore_index=True)
    kept, superseded = supersede(merged)
    report = quality_report(summaries, superseded["partition_key"].value_counts().to_dict(),
                            kept["partition_key"].value_counts().to_dict())
    report["pending_files"] = [{"partition_key": k, "file": e["file"], "status": e.get("status")} for k, e in pending.items()]
    report["generator_versions"] = {k: e.get("generator_version") for k, e in ledger["files"].items()}
    report["file_cities"] = {k: e.get("city", DEFAULT_CITY) for k, e in ledger["files"].items()}
    target, quality_path = layout.table("incidents"), layout.report_file("data_quality.json")
    write_parquet(staged_path(target), kept)
    write_json(staged_path(quality_path), report)
    fault_point("incidents:staged")

    # Evidence from outside the merge: the ledger's independent counts, the published quarantine
    # tables' own row counts, and the staged table read back from disk.
    staged = read_table(staged_path(target), columns=["case_number", "partition_key"])
    kept_per_file = staged.column("partition_key").to_pandas().value_counts().to_dict()
    quarantined = {k: reads.parquet_metadata(layout.quarantine_table(k)).num_rows for k in done}
    problems = accounting_problems(done, kept_per_file, quarantined, superseded["partition_key"].value_counts().to_dict())
    duplicates = len(staged) - len(pc.unique(staged.column("case_number")))
    passed = not problems and duplicates == 0
    for path in (target, quality_path):
        (publish if passed else reject)(path)
    if not passed:
        context.log.error(f"incidents not published (previous version kept): {problems}; {duplicates} duplicate cases")
    totals = report["totals"]
    context.log.info(f"incidents: {totals}")
    for item in report["pending_files"]:
        context.log.warning(f"{item['file']} ({item['partition_key']}) was read but never validated; left out "
                            "until a run validates it")
    yield dg.MaterializeResult(
        metadata={
            **table_metadata(kept, target),
            "published": passed,
            "dagster/column_lineage": column_lineage(same_name_lineage(kept, "validated_incidents", merged.columns)),
            **{f"total/{k}": v for k, v in totals.items() if isinstance(v, int)},
            "files": len(summaries),
            "pending_files": len(pending),
            "data_quality": dg.MetadataValue.json(report),
            **reads.metadata(),
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
