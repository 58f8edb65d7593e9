"""Features: the leak-proof time-and-place table and the train / validation / test splits."""

from typing import Literal

import dagster as dg
import pandas as pd

from crime_pipeline.defs.automation_conditions import REFRESH_WHEN_UPSTREAM_CHANGES
from crime_pipeline.defs.lake_io import declared_reads
from crime_pipeline.defs.metadata import column_lineage, content_version, table_metadata
from crime_pipeline.deploy_tags import TABLE
from crime_pipeline.lib.atomic import (
    publish,
    read_parquet,
    reject,
    rejected_path,
    staged_path,
    write_json,
    write_parquet,
)
from crime_pipeline.lib.cities import DEFAULT_CITY, get_profile, primary_city
from crime_pipeline.lib.features import (
    CITY_COLUMN,
    FEATURE_COLUMNS,
    FEATURE_LINEAGE,
    ID_COLUMNS,
    MODEL_FEATURES,
    build_feature_table,
    label_map,
)
from crime_pipeline.lib.leakage import (
    COMBINATION_LIMIT,
    MI_RATIO_LIMIT,
    PURITY_LIMIT,
    combination_accuracy,
    disguise_scores,
    leakage_scores,
)
from crime_pipeline.lib.splits import SPLITS, TooLittleDataError, city_parts, fit_minmax, split_per_city
from crime_pipeline.resources import LakeResource

NOT_FEATURES = (*ID_COLUMNS, "label", "label_id", CITY_COLUMN)


def file_version(path) -> str:
    """A short content hash naming the exact data a downstream artifact was built from."""
    return content_version(path).value


@dg.asset(
    deps=["incidents"],
    group_name="features",
    kinds={"pandas", "parquet"},
    code_version="2",
    automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
    op_tags=TABLE,
    check_specs=[
        dg.AssetCheckSpec("no_label_leakage", asset="incident_features", blocking=True,
                          description="On the staged table read back from disk: every column is on the allow-list, "
                          "no feature predicts the label almost perfectly on its own (mutual information / "
                          "purity), and no combination does (a shallow tree on all features)."),
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
    layout = lake.layout
    reads = declared_reads(context, lake)
    incidents_path = layout.table("incidents")
    incidents = reads.parquet(incidents_path)
    table = build_feature_table(incidents)
    cities = sorted(city_parts(table))
    target = layout.table("incident_features")
    write_parquet(staged_path(target), table)
    staged = read_parquet(staged_path(target))  # audit what was written, not what was meant
    features = [c for c in staged.columns if c not in NOT_FEATURES]
    not_allowed = sorted(set(features) - set(FEATURE_COLUMNS))
    scores = leakage_scores(staged[features], staged["label"])
    combination = combination_accuracy(staged[features], staged["label"])
    leaky = sorted(scores.index[scores["leaky"]])
    passed = not not_allowed and not leaky and not combination["leaky"]
    leakage = {
        "passed": passed, "not_on_allow_list": not_allowed, "leaky": leaky, "combination": combination,
        "mi_ratio_limit": MI_RATIO_LIMIT, "purity_limit": PURITY_LIMIT, "combination_limit": COMBINATION_LIMIT,
        "scores": scores.to_dict(orient="index"),
        # The profiles' label disguises scored the same way: the check would catch them as features.
        "disguises": disguise_scores(incidents, {c: get_profile(c).disguises for c in cities}),
    }
    outputs = (target, layout.lake_file("label_map.json"), layout.lake_file("leakage_check.json"))
    labels = label_map() if cities == [DEFAULT_CITY] else {c: label_map(get_profile(c)) for c in cities}
    write_json(staged_path(outputs[1]), labels)
    write_json(staged_path(outputs[2]), leakage)
    for path in outputs:
        (publish if passed else reject)(path)
    if not passed:
        context.log.error(f"leakage check failed: not allowed {not_allowed}, leaky {leaky}, combination "
                          f"{combination}; table not published, the previous one stays")
    path = target
    version = content_version(target if passed else rejected_path(target))
    yield dg.MaterializeResult(
        metadata={
            **table_metadata(table, path),
            "data_version": version.value,
            "features": ", ".join(features),
            "classes": ", ".join(get_profile(primary_city(cities)).class_names),
            "cities": ", ".join(cities),
            "published": passed,
            **reads.metadata(),
            "dagster/column_lineage": column_lineage(
                {col: [("incidents", src) for src in FEATURE_LINEAGE[col]] for col in table.columns if col in FEATURE_LINEAGE}
                | {c: [("incidents", c)] for c in ("case_number", "incident_datetime", "label")}
                | {"label_id": [("incidents", "label")]}
            ),
        },
        data_version=version,
    )
    yield dg.AssetCheckResult(
        check_name="no_label_leakage",
        passed=passed,
        metadata={
            "not_on_allow_list": ", ".join(not_allowed) or "none",
            "leaky_columns": ", ".join(leaky) or "none",
            "max_mi_ratio": float(scores["mi_ratio"].max()),
            "combination_accuracy": combination["accuracy"],
            "majority_rate": combination["majority"],
            "scores": dg.MetadataValue.md(scores.round(4).to_markdown()),
        },
    )


class SplitConfig(dg.Config):
    """How to split: temporal by default; a stratified random split reproduces the seed project's setup."""

    strategy: Literal["temporal", "random"] = "temporal"
    validation_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 0


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
    layout = lake.layout
    reads = declared_reads(context, lake)
    features_path = layout.table("incident_features")
    table = reads.parquet(features_path)
    if not 0 < config.validation_fraction < 1 or not 0 < config.test_fraction < 1 or \
            config.validation_fraction + config.test_fraction >= 0.9:
        raise dg.Failure(description="validation_fraction and test_fraction must be in (0, 1) and leave a training part")
    try:
        split = split_per_city(table, config.strategy, config.validation_fraction, config.test_fraction, config.seed)
    except TooLittleDataError as exc:  # the sentence is the failure's description, shown as the cause
        raise dg.Failure(description=str(exc), metadata={f"rows/{k}": v for k, v in exc.counts.items()}) from exc
    table["split"] = split.to_numpy()
    path = write_parquet(layout.table("dataset_splits"), table)

    def parts(rows):
        return {part: {"rows": int((rows["split"] == part).sum()),
                       "from": str(rows.loc[rows["split"] == part, "incident_datetime"].min()),
                       "to": str(rows.loc[rows["split"] == part, "incident_datetime"].max())} for part in SPLITS}

    # Per city: its classes and a scaler fitted on its own training rows. The top level is the
    # primary city's (the default city when present), as single-city readers expect.
    by_city = {city: {"classes": list(get_profile(city).class_names),
                      "scaler": fit_minmax(rows[rows["split"] == "train"], MODEL_FEATURES), "parts": parts(rows)}
               for city, rows in city_parts(table).items()}
    primary = by_city[primary_city(by_city)]
    summary = {
        "strategy": config.strategy,
        "validation_fraction": config.validation_fraction,
        "test_fraction": config.test_fraction,
        "seed": config.seed,
        "features": list(MODEL_FEATURES),
        "classes": primary["classes"],
        "scaler": primary["scaler"],
        "data_version": file_version(path),  # what models record as the data they were trained on
        "parts": parts(table),
        "cities": by_city,
    }
    write_json(layout.lake_file("dataset_splits.json"), summary)
    for part, info in summary["parts"].items():
        context.log.info(f"{part}: {info['rows']} rows, {info['from']} .. {info['to']}")
    classes = list(dict.fromkeys(c for info in by_city.values() for c in info["classes"]))
    counts = pd.crosstab(table["label"], table["split"]).reindex(index=classes, columns=list(SPLITS)).fillna(0)
    return dg.MaterializeResult(
        metadata={
            **table_metadata(table, path),
            "strategy": config.strategy,
            "cities": ", ".join(by_city),
            **{f"rows/{p}": i["rows"] for p, i in summary["parts"].items()},
            "parts": dg.MetadataValue.json(summary["parts"]),
            "class_counts": dg.MetadataValue.md(counts.astype(int).to_markdown()),
            **reads.metadata(),
        },
        data_version=dg.DataVersion(summary["data_version"]),
    )
