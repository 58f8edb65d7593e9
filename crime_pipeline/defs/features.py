"""Features: the leak-proof time-and-place table and the train / validation / test splits.

The work is lib/features/stages.py's `build_features` and `split_dataset`; the assets turn their
results into Dagster results. `SplitConfig`, the run config of the split, is derived from
`SplitSettings` (its one declaration), so the two cannot disagree.
"""

import dagster as dg

from crime_pipeline.defs.automation_conditions import REFRESH_WHEN_UPSTREAM_CHANGES
from crime_pipeline.defs.config import config_from_settings, first_paragraph, settings_of
from crime_pipeline.defs.lake_io import declared_reads, reads_metadata, stage_failures
from crime_pipeline.defs.metadata import column_lineage, content_version, table_metadata
from crime_pipeline.deploy_tags import TABLE
from crime_pipeline.lib.features import stages as feature_stages
from crime_pipeline.lib.features.stages import SplitSettings
from crime_pipeline.lib.features.table import FEATURE_LINEAGE
from crime_pipeline.resources import LakeResource


@dg.asset(
    deps=["incidents"],
    group_name="features",
    kinds={"pandas", "parquet"},
    code_version="3",  # 3: explicit time_unknown / day_unknown instead of a fake noon or 1st
    automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
    op_tags=TABLE,
    check_specs=[
        dg.AssetCheckSpec(
            "no_label_leakage",
            asset="incident_features",
            blocking=True,
            description="On the staged table read back from disk: every column is on the allow-list, "
            "no feature predicts the label almost perfectly on its own (mutual information / "
            "purity), and no combination does (a shallow tree on all features).",
        ),
    ],
)
def incident_features(context: dg.AssetExecutionContext, lake: LakeResource):
    """Time-and-place features for every incident, with the label, from an allow-list only.

    Latitude, longitude and the incident datetime feed hour, weekday, month, cyclical encodings,
    distance to downtown, a grid cell and holiday / default-time flags. The label is the parent
    incident type over the city's classes (Buffalo's 9 by default; each row's `city` column names its
    profile, and `label_id` indexes that city's classes); `label_map.json` beside the table fixes the
    class ids. The table is staged, audited by the leakage check, and published (where models read it)
    only if the check passes; otherwise the previous table stays and the staged one is kept as
    `incident_features.rejected.parquet`.
    """
    reads = declared_reads(context, lake)
    with stage_failures():
        built = feature_stages.build_features(reads, log=context.log)
    scores, combination = built.scores, built.combination
    version = content_version(built.served)
    yield dg.MaterializeResult(
        metadata={
            **table_metadata(built.sample, built.table),
            "dagster/row_count": dg.MetadataValue.int(built.rows),
            "data_version": version.value,
            "features": ", ".join(built.features),
            "classes": ", ".join(built.classes),
            "cities": ", ".join(built.cities),
            "published": built.published,
            **reads_metadata(reads),
            "dagster/column_lineage": column_lineage(
                {
                    col: [("incidents", src) for src in FEATURE_LINEAGE[col]]
                    for col in built.sample.columns
                    if col in FEATURE_LINEAGE
                }
                | {c: [("incidents", c)] for c in ("case_number", "incident_datetime", "label")}
                | {"label_id": [("incidents", "label")]}
            ),
        },
        data_version=version,
    )
    yield dg.AssetCheckResult(
        check_name="no_label_leakage",
        passed=built.published,
        metadata={
            "not_on_allow_list": ", ".join(built.not_allowed) or "none",
            "leaky_columns": ", ".join(built.leaky) or "none",
            "max_mi_ratio": float(scores["mi_ratio"].max()),
            "combination_accuracy": combination["accuracy"],
            "majority_rate": combination["majority"],
            "scores": dg.MetadataValue.md(scores.round(4).to_markdown()),
        },
    )


# The run config of dataset_splits; its description is SplitSettings' first paragraph.
SplitConfig = config_from_settings("SplitConfig", first_paragraph(SplitSettings), SplitSettings)


@dg.asset(
    deps=[incident_features],
    group_name="features",
    kinds={"pandas", "parquet"},
    code_version="2",
    automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
    op_tags=TABLE,
)
def dataset_splits(context: dg.AssetExecutionContext, config: SplitConfig, lake: LakeResource) -> dg.MaterializeResult:
    """Train / validation / test parts of the feature table, and a MinMax scaler fitted on train only.

    Temporal by default: the oldest incidents train, the next period validates, the most recent
    test, so models are judged on a future they never saw. One row per case number, so no case
    is split across parts. The scaler's min/max come from the training rows alone. Fails, naming the
    counts, when a part would get fewer than 100 / 20 / 20 incidents (train / validation / test) or
    training fewer than two incident types.
    """
    reads = declared_reads(context, lake)
    settings = settings_of(config, SplitSettings)
    with stage_failures():
        split = feature_stages.split_dataset(reads, settings, log=context.log)
    summary = split.summary
    return dg.MaterializeResult(
        metadata={
            **table_metadata(split.sample, split.table),
            "dagster/row_count": dg.MetadataValue.int(split.rows),
            "strategy": settings.strategy,
            "cities": ", ".join(summary["cities"]),
            **{f"rows/{p}": i["rows"] for p, i in summary["parts"].items()},
            "parts": dg.MetadataValue.json(summary["parts"]),
            "class_counts": dg.MetadataValue.md(split.class_counts.to_markdown()),
            **reads_metadata(reads),
        },
        data_version=dg.DataVersion(summary["data_version"]),
    )
