"""Validation: the pandera contract per file, the quarantine, and the merged incidents table."""

import dagster as dg
import pandas as pd

from crime_pipeline.defs.automation_conditions import REFRESH_WHEN_UPSTREAM_CHANGES
from crime_pipeline.defs.ingestion import incoming_files, raw_incidents
from crime_pipeline.defs.metadata import column_lineage, same_name_lineage, table_metadata
from crime_pipeline.lib.atomic import read_parquet, write_json, write_parquet
from crime_pipeline.lib.lake import ingested, read_json
from crime_pipeline.lib.quality import quality_report
from crime_pipeline.lib.validation import RULES, supersede, validate_incidents
from crime_pipeline.resources import LakeResource


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "validated_incidents",
            deps=[raw_incidents],
            group_name="validation",
            kinds={"pandas", "parquet"},
            code_version="1",
            automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
            description="Rows of one file that pass the pandera IncidentSchema, typed: datetimes, "
            "coordinates, the canonical label, and flags for soft problems (hour mismatch, noon default).",
        ),
        dg.AssetSpec(
            "incident_quarantine",
            deps=[raw_incidents],
            group_name="validation",
            kinds={"pandas", "parquet"},
            code_version="1",
            automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
            description="Rows of one file that failed validation, as read, with their source line "
            "and every rule they failed. Nothing is dropped: it all lands here.",
        ),
    ],
    partitions_def=incoming_files,
    check_specs=[
        dg.AssetCheckSpec(
            "rows_accounted_for",
            asset="validated_incidents",
            blocking=True,
            description="Rows read = valid + quarantined for this file.",
        )
    ],
)
def validate_file(context: dg.AssetExecutionContext, lake: LakeResource):
    """Validate one ingested file against the pandera IncidentSchema; quarantine what fails."""
    layout = lake.layout
    key = context.partition_key
    raw = read_parquet(layout.raw_table(key))
    result = validate_incidents(raw)
    valid_path = write_parquet(layout.validated_table(key), result.valid)
    quarantine_path = write_parquet(layout.quarantine_table(key), result.quarantine)
    summary = {
        "file": str(raw["source_file"].iloc[0]) if len(raw) else None,
        "rows_read": result.rows_read,
        "valid": len(result.valid),
        "quarantined": len(result.quarantine),
        "quarantined_by_rule": result.by_rule,
        "flags": result.flags,
    }
    write_json(layout.validation_summary(key), summary)
    context.log.info(
        f"{summary['file']}: {result.rows_read} read, {len(result.valid)} valid, "
        f"{len(result.quarantine)} quarantined {result.by_rule}"
    )
    lineage = same_name_lineage(result.valid, "raw_incidents", raw.columns) | {
        "label": [("raw_incidents", "parent_incident_type")],
        "latitude": [("raw_incidents", "latitude"), ("raw_incidents", "location")],
        "longitude": [("raw_incidents", "longitude"), ("raw_incidents", "location")],
        "hour_of_day_reported": [("raw_incidents", "hour_of_day")],
        "hour_of_day": [("raw_incidents", "incident_datetime")],
    }
    yield dg.MaterializeResult(
        asset_key="validated_incidents",
        metadata={**table_metadata(result.valid, valid_path), "rows_read": result.rows_read,
                  "dagster/column_lineage": column_lineage(lineage),
                  **{f"flag/{k}": v for k, v in result.flags.items()}},
    )
    yield dg.MaterializeResult(
        asset_key="incident_quarantine",
        metadata={
            **table_metadata(result.quarantine, quarantine_path),
            **{f"rule/{k}": v for k, v in result.by_rule.items()},
            "rules": dg.MetadataValue.md("\n".join(f"- `{k}`: {v}" for k, v in RULES.items())),
        },
    )
    balanced = result.rows_read == len(result.valid) + len(result.quarantine)
    yield dg.AssetCheckResult(
        asset_key="validated_incidents",
        check_name="rows_accounted_for",
        passed=balanced,
        metadata={"rows_read": result.rows_read, "valid": len(result.valid),
                  "quarantined": len(result.quarantine)},
    )


@dg.asset(
    deps=["validated_incidents"],
    group_name="validation",
    kinds={"pandas", "parquet"},
    code_version="1",
    automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
    check_specs=[
        dg.AssetCheckSpec("accounting_reconciles", asset="incidents", blocking=True,
                          description="For every file: rows read = valid + quarantined + superseded."),
        dg.AssetCheckSpec("one_record_per_case", asset="incidents", blocking=True,
                          description="No case number appears twice in the merged table."),
    ],
)
def incidents(context: dg.AssetExecutionContext, lake: LakeResource):
    """Every validated file merged into one table, keeping the newest record of each case number.

    Newest is the latest updated_at / Created At; ties go to the later-ingested file. Also writes
    `reports/data_quality.json`: per file, rows read, valid, quarantined (by rule) and superseded.
    """
    layout = lake.layout
    frames, summaries = [], {}
    for key, entry in ingested(layout).items():
        path = layout.validated_table(key)
        if not path.exists():
            context.log.warning(f"{entry['file']} ({key}) is ingested but not validated yet; left out")
            continue
        frames.append(read_parquet(path).assign(ingest_seq=entry["seq"], partition_key=key))
        summaries[key] = read_json(layout.validation_summary(key), {})
    if not frames:
        raise dg.Failure(description=f"no validated files yet: drop a CSV export into {layout.incoming}")
    merged = pd.concat(frames, ignore_index=True)
    kept, superseded = supersede(merged)
    report = quality_report(summaries, superseded["partition_key"].value_counts().to_dict(),
                            kept["partition_key"].value_counts().to_dict())
    path = write_parquet(layout.table("incidents"), kept)
    write_json(layout.report_file("data_quality.json"), report)
    totals = report["totals"]
    context.log.info(f"incidents: {totals}")
    yield dg.MaterializeResult(
        metadata={
            **table_metadata(kept, path),
            "dagster/column_lineage": column_lineage(same_name_lineage(kept, "validated_incidents", merged.columns)),
            **{f"total/{k}": v for k, v in totals.items() if isinstance(v, int)},
            "files": len(summaries),
            "data_quality": dg.MetadataValue.json(report),
        }
    )
    yield dg.AssetCheckResult(
        check_name="accounting_reconciles",
        passed=report["reconciles"],
        metadata={"totals": dg.MetadataValue.json(totals)},
    )
    duplicates = int(kept["case_number"].duplicated().sum())
    yield dg.AssetCheckResult(check_name="one_record_per_case", passed=duplicates == 0,
                              metadata={"duplicate_case_numbers": duplicates})
