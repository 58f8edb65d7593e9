"""Features: the leak-proof time-and-place table and the train / validation / test splits."""

from typing import Literal

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa

from crime_pipeline.defs.automation_conditions import REFRESH_WHEN_UPSTREAM_CHANGES
from crime_pipeline.defs.lake_io import declared_reads, reads_metadata
from crime_pipeline.defs.metadata import column_lineage, content_version, table_metadata
from crime_pipeline.deploy_tags import TABLE
from crime_pipeline.lib.lake.parquet import iter_parquet, parquet_batch_writer, parquet_metadata, parquet_rows, read_parquet
from crime_pipeline.lib.lake.atomic import publish, reject, rejected_path, staged_path, write_json
from crime_pipeline.lib.cities.profiles import DEFAULT_CITY, get_profile, primary_city
from crime_pipeline.lib.features.table import CITY_COLUMN, FEATURE_COLUMNS, FEATURE_LINEAGE, ID_COLUMNS, MODEL_FEATURES, build_feature_table, label_map
from crime_pipeline.lib.features.leakage import COMBINATION_LIMIT, MI_RATIO_LIMIT, PURITY_LIMIT, combination_accuracy, disguise_scores, leakage_scores
from crime_pipeline.lib.features.splits import SPLITS, TooLittleDataError, city_parts, fit_minmax, merge_minmax, split_per_city
from crime_pipeline.resources import LakeResource

NOT_FEATURES = (*ID_COLUMNS, "label", "label_id", CITY_COLUMN)
FEATURE_BATCH_ROWS = 250_000
# The leakage scores read back at most this many staged rows (a seeded uniform sample): enough to
# see a label in disguise (that takes a few thousand rows) without holding 10 million in memory.
LEAKAGE_SAMPLE_ROWS = 1_000_000


def read_sample(path, columns: list[str], max_rows: int, seed: int = 0) -> pd.DataFrame:
    """Every row of a Parquet file, or a seeded uniform sample of `max_rows` read batch by batch."""
    total = parquet_rows(path)
    if total <= max_rows:
        return read_parquet(path, columns=columns)
    keep = np.zeros(total, dtype=bool)
    keep[np.random.default_rng(seed).choice(total, size=max_rows, replace=False)] = True
    parts, offset = [], 0
    for batch in iter_parquet(path, columns):
        parts.append(batch.filter(pa.array(keep[offset:offset + batch.num_rows])))
        offset += batch.num_rows
    return pa.concat_tables(parts).to_pandas()


def cities_in(reads, path, columns: set[str]) -> list[str]:
    """The cities a table's `city` column holds (the default city for a table without one)."""
    if CITY_COLUMN not in columns:
        return [DEFAULT_CITY]
    return sorted(map(str, reads.parquet(path, columns=[CITY_COLUMN])[CITY_COLUMN].dropna().unique()))


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
    present = set(reads.parquet_schema(incidents_path).names)
    cities = cities_in(reads, incidents_path, present)
    target = layout.table("incident_features")
    with parquet_batch_writer(staged_path(target)) as sink:  # batch by batch: bounded memory
        for batch in reads.parquet_batches(incidents_path, batch_rows=FEATURE_BATCH_ROWS):
            table = build_feature_table(batch.to_pandas(), with_city=cities != [DEFAULT_CITY])
            sink.write(table)
            sample = table.iloc[:0]
        rows = sink.rows
    # Audit what was written, not what was meant: read back (a seeded sample of a large table).
    staged_columns = parquet_metadata(staged_path(target)).schema.names
    features = [c for c in staged_columns if c not in NOT_FEATURES]
    staged = read_sample(staged_path(target), [*features, "label"], LEAKAGE_SAMPLE_ROWS)
    not_allowed = sorted(set(features) - set(FEATURE_COLUMNS))
    scores = leakage_scores(staged[features], staged["label"])
    combination = combination_accuracy(staged[features], staged["label"])
    leaky = sorted(scores.index[scores["leaky"]])
    passed = not not_allowed and not leaky and not combination["leaky"]
    # The profiles' label disguises scored the same way, on a sample: the check would catch them as features.
    disguises = {c: get_profile(c).disguises for c in cities}
    wanted = sorted({d for ds in disguises.values() for d in ds} & present) + ["label"] + \
        ([CITY_COLUMN] if CITY_COLUMN in present else [])
    leakage = {
        "passed": passed, "not_on_allow_list": not_allowed, "leaky": leaky, "combination": combination,
        "mi_ratio_limit": MI_RATIO_LIMIT, "purity_limit": PURITY_LIMIT, "combination_limit": COMBINATION_LIMIT,
        "rows_scored": len(staged), "rows": rows,
        "scores": scores.to_dict(orient="index"),
        "disguises": disguise_scores(read_sample(reads.path(incidents_path), wanted, LEAKAGE_SAMPLE_ROWS), disguises),
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
            **table_metadata(sample, path),
            "dagster/row_count": dg.MetadataValue.int(rows),
            "data_version": version.value,
            "features": ", ".join(features),
            "classes": ", ".join(get_profile(primary_city(cities)).class_names),
            "cities": ", ".join(cities),
            "published": passed,
            **reads_metadata(reads),
            "dagster/column_lineage": column_lineage(
                {col: [("incidents", src) for src in FEATURE_LINEAGE[col]] for col in sample.columns if col in FEATURE_LINEAGE}
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
    # Parts from a narrow projection; the wide rows are then streamed with their part attached.
    narrow = ["case_number", "incident_datetime", "label", "label_id"]
    if CITY_COLUMN in reads.parquet_schema(features_path).names:
        narrow.append(CITY_COLUMN)
    table = reads.parquet(features_path, columns=narrow)
    if not 0 < config.validation_fraction < 1 or not 0 < config.test_fraction < 1 or \
            config.validation_fraction + config.test_fraction >= 0.9:
        raise dg.Failure(description="validation_fraction and test_fraction must be in (0, 1) and leave a training part")
    try:
        split = split_per_city(table, config.strategy, config.validation_fraction, config.test_fraction, config.seed)
    except TooLittleDataError as exc:  # the sentence is the failure's description, shown as the cause
        raise dg.Failure(description=str(exc), metadata={f"rows/{k}": v for k, v in exc.counts.items()}) from exc
    table["split"] = split.to_numpy()
    scalers: dict[str, dict] = {}  # per city, fitted on its own training rows, batch by batch
    offset = 0
    with parquet_batch_writer(layout.table("dataset_splits")) as sink:
        for batch in reads.parquet_batches(features_path, batch_rows=FEATURE_BATCH_ROWS):
            part = table["split"].to_numpy()[offset:offset + batch.num_rows]
            offset += batch.num_rows
            frame = batch.to_pandas().assign(split=part)
            sink.write(frame)
            for city, rows in city_parts(frame[frame["split"] == "train"]).items():
                if len(rows):
                    scalers[city] = merge_minmax(scalers.get(city), fit_minmax(rows, MODEL_FEATURES))
            sample = frame.iloc[:0]
    path = layout.table("dataset_splits")

    def parts(rows):
        return {part: {"rows": int((rows["split"] == part).sum()),
                       "from": str(rows.loc[rows["split"] == part, "incident_datetime"].min()),
                       "to": str(rows.loc[rows["split"] == part, "incident_datetime"].max())} for part in SPLITS}

    # Per city: its classes and scaler. The top level is the primary city's (the default city when
    # present), as single-city readers expect.
    by_city = {city: {"classes": list(get_profile(city).class_names), "scaler": scalers[city], "parts": parts(rows)}
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
            **table_metadata(sample, path),
            "dagster/row_count": dg.MetadataValue.int(len(table)),
            "strategy": config.strategy,
            "cities": ", ".join(by_city),
            **{f"rows/{p}": i["rows"] for p, i in summary["parts"].items()},
            "parts": dg.MetadataValue.json(summary["parts"]),
            "class_counts": dg.MetadataValue.md(counts.astype(int).to_markdown()),
            **reads_metadata(reads),
        },
        data_version=dg.DataVersion(summary["data_version"]),
    )
