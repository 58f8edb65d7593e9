"""Validation: the pandera contract per file, the quarantine, and the merged incidents table.

Both stages (lib/validate/stages.py) write, audit, then publish: tables go to a staged name, the
blocking checks run on what was staged against independent evidence (the ledger's record count from
a second reader, the published quarantine's own row count, the staged file read back), and only then
are they renamed to where readers look. A failed check keeps the previous published version and the
failure shows. The assets here turn the stages' results into Dagster results.
"""

import dagster as dg

from crime_pipeline.defs.automation_conditions import MERGE_WHEN_ANY_FILE_CHANGES, REFRESH_WHEN_UPSTREAM_CHANGES
from crime_pipeline.defs.ingestion import incoming_files
from crime_pipeline.defs.lake_io import declared_reads, reads_metadata, stage_failures
from crime_pipeline.defs.metadata import column_lineage, content_version, same_name_lineage, table_metadata
from crime_pipeline.defs.open_data import freshness_after_pull
from crime_pipeline.deploy_tags import PER_FILE, TABLE
from crime_pipeline.lib.validate import stages as validation_stages
from crime_pipeline.lib.validate.schema import RULES
from crime_pipeline.resources import LakeResource


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "validated_incidents",
            deps=["raw_incidents"],
            group_name="validation",
            kinds={"pandas", "parquet"},
            code_version="3",
            automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
            description="Rows of one file that pass the pandera IncidentSchema, typed: datetimes, "
            "coordinates, the canonical label, and flags for soft problems (hour mismatch, noon default).",
        ),
        dg.AssetSpec(
            "incident_quarantine",
            deps=["raw_incidents"],
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
    reads = declared_reads(context, lake)
    with stage_failures():
        done = validation_stages.validate_file(reads, context.partition_key, log=context.log)
    totals = done.totals
    lineage = same_name_lineage(done.valid_sample, "raw_incidents", done.raw_columns) | {
        "label": [("raw_incidents", done.label_column)],
        "latitude": [("raw_incidents", "latitude"), ("raw_incidents", "location")],
        "longitude": [("raw_incidents", "longitude"), ("raw_incidents", "location")],
        "hour_of_day_reported": [("raw_incidents", "hour_of_day")],
        "hour_of_day": [("raw_incidents", "incident_datetime")],
    }
    yield dg.MaterializeResult(
        asset_key="validated_incidents",
        data_version=content_version(done.served_valid),
        metadata={
            **table_metadata(done.valid_sample, done.valid_table),
            "dagster/row_count": dg.MetadataValue.int(totals.valid),
            "rows_read": totals.rows_read,
            "published": done.published,
            "validated_as_of": str(done.as_of),
            "city": done.city,
            "dagster/column_lineage": column_lineage(lineage),
            **{f"flag/{k}": v for k, v in totals.flags.items()},
            **reads_metadata(reads),
        },
    )
    yield dg.MaterializeResult(
        asset_key="incident_quarantine",
        metadata={
            **table_metadata(done.quarantine_sample, done.quarantine_table),
            "dagster/row_count": dg.MetadataValue.int(totals.quarantined),
            "published": done.published,
            **{f"rule/{k}": v for k, v in totals.by_rule.items()},
            "rules": dg.MetadataValue.md("\n".join(f"- `{k}`: {v}" for k, v in RULES.items())),
        },
    )
    yield dg.AssetCheckResult(
        asset_key="validated_incidents",
        check_name="rows_accounted_for",
        passed=done.published,
        metadata={
            "records_in_file": done.records_counted,
            "staged_valid": done.staged_valid,
            "staged_quarantined": done.staged_quarantined,
            "published": done.published,
        },
    )


@dg.asset(
    deps=["validated_incidents", "incident_quarantine"],
    group_name="validation",
    kinds={"pandas", "parquet"},
    code_version="4",  # 4: a case is a (city, case number)
    automation_condition=MERGE_WHEN_ANY_FILE_CHANGES,
    freshness_policy=freshness_after_pull(),
    op_tags=TABLE,
    check_specs=[
        dg.AssetCheckSpec(
            "accounting_reconciles",
            asset="incidents",
            blocking=True,
            description="For every file: records counted at ingestion = rows kept in the staged "
            "merged table + rows in its published quarantine + rows superseded.",
        ),
        dg.AssetCheckSpec(
            "one_record_per_case",
            asset="incidents",
            blocking=True,
            description="No case (a city's case number: each city numbers its own) appears twice in the "
            "staged merged table, read back from disk.",
        ),
        dg.AssetCheckSpec(
            "every_file_validated",
            asset="incidents",
            description="Every file read into the lake has published validation (WARN: the "
            "files named are left out until a run validates them).",
        ),
    ],
)
def incidents(context: dg.AssetExecutionContext, lake: LakeResource):
    """Every validated file merged into one table, keeping the newest record of each case: a city's
    case number (each city numbers its cases on its own, so the same number in two cities is two cases).

    Newest is the latest updated_at / Created At; ties go to the later-ingested file. Also writes
    `reports/data_quality.json`: per file, rows read, valid, quarantined (by rule) and superseded,
    and the files read but not yet validated.
    """
    reads = declared_reads(context, lake)
    with stage_failures():
        merged = validation_stages.merge_incidents(reads, log=context.log)
    report, totals, pending = merged.report, merged.report["totals"], merged.pending
    sample = merged.schema.empty_table().to_pandas()
    yield dg.MaterializeResult(
        metadata={
            **table_metadata(sample, merged.table),
            "dagster/row_count": dg.MetadataValue.int(merged.rows),
            "published": merged.published,
            "dagster/column_lineage": column_lineage(
                same_name_lineage(sample, "validated_incidents", merged.schema.names)
            ),
            **{f"total/{k}": v for k, v in totals.items() if isinstance(v, int)},
            "files": merged.files,
            "pending_files": len(pending),
            "data_quality": dg.MetadataValue.json(report),
            **reads_metadata(reads),
        },
        data_version=content_version(merged.served),
    )
    yield dg.AssetCheckResult(
        check_name="accounting_reconciles",
        passed=not merged.problems,
        metadata={"totals": dg.MetadataValue.json(totals), "problems": dg.MetadataValue.json(merged.problems)},
    )
    yield dg.AssetCheckResult(
        check_name="one_record_per_case",
        passed=merged.duplicates == 0,
        metadata={"duplicate_case_numbers": merged.duplicates},
    )
    yield dg.AssetCheckResult(
        check_name="every_file_validated",
        passed=not pending,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"files_not_validated": ", ".join(f"{e['file']} ({k})" for k, e in pending.items()) or "none"},
    )
