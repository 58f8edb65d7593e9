"""The feature stages: the leak-proof feature table (`build_features`) and its splits (`split_dataset`).

`build_features` writes, audits, then publishes: the table is staged, read back from disk, and
published (where the splits and models read it) only if the leakage audit passes. `split_dataset`
assigns every row a part and fits each city's scaler on its training rows alone. `SplitSettings`
is the one declaration of how to split; the Dagster config is derived from it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from crime_pipeline.lib.cities.profiles import DEFAULT_CITY, get_profile, primary_city
from crime_pipeline.lib.features.leakage import (
    COMBINATION_LIMIT,
    MI_RATIO_LIMIT,
    PURITY_LIMIT,
    combination_accuracy,
    disguise_scores,
    leakage_scores,
)
from crime_pipeline.lib.features.splits import (
    SPLITS,
    TooLittleDataError,
    city_parts,
    fit_minmax,
    merge_minmax,
    split_per_city,
)
from crime_pipeline.lib.features.table import (
    CITY_COLUMN,
    FEATURE_COLUMNS,
    ID_COLUMNS,
    MODEL_FEATURES,
    build_feature_table,
    label_map,
)
from crime_pipeline.lib.lake.atomic import publish, reject, rejected_path, staged_path, write_json
from crime_pipeline.lib.lake.errors import StageError
from crime_pipeline.lib.lake.parquet import parquet_batch_writer
from crime_pipeline.lib.lake.reads import DeclaredReads
from crime_pipeline.lib.lake.storage import content_hash

NOT_FEATURES = (*ID_COLUMNS, "label", "label_id", CITY_COLUMN)
FEATURE_BATCH_ROWS = 250_000
# The leakage scores read back at most this many staged rows (a seeded uniform sample): enough to
# see a label in disguise (that takes a few thousand rows) without holding 10 million in memory.
LEAKAGE_SAMPLE_ROWS = 1_000_000
_log = logging.getLogger(__name__)


def read_sample(reads: DeclaredReads, path: Path, columns: list[str], max_rows: int, seed: int = 0) -> pd.DataFrame:
    """Every row of a Parquet file, or a seeded uniform sample of `max_rows` read batch by batch."""
    total = reads.parquet_rows(path)
    if total <= max_rows:
        return reads.parquet(path, columns=columns)
    keep = np.zeros(total, dtype=bool)
    keep[np.random.default_rng(seed).choice(total, size=max_rows, replace=False)] = True
    return reads.parquet_rows_where(path, keep, columns).to_pandas()


class _OwnStagedOutput(DeclaredReads):
    """A reader of the stage's own staged output, read back for its audit: not yet published, it is
    in no catalog entry and no input to record, but it is read with the same batched readers."""

    def path(self, path: Path) -> Path:
        return path


def cities_in(reads: DeclaredReads, path: Path, columns: set[str]) -> list[str]:
    """The cities a table's `city` column holds (the default city for a table without one)."""
    if CITY_COLUMN not in columns:
        return [DEFAULT_CITY]
    return sorted(map(str, reads.parquet(path, columns=[CITY_COLUMN])[CITY_COLUMN].dropna().unique()))


def file_version(path: Path) -> str:
    """A short content hash naming the exact data a downstream artifact was built from (the Dagster
    data version of the published file: defs/metadata.content_version hashes the same way)."""
    return content_hash(path)


@dataclass
class FeaturesBuilt:
    """The feature table built and audited: what the leakage check saw, and whether it was published."""

    table: Path
    sample: pd.DataFrame  # no rows: the columns and their types, for the metadata
    rows: int
    features: list[str]  # the staged table's feature columns, as audited
    cities: list[str]
    classes: list[str]  # the primary city's
    not_allowed: list[str]  # feature columns off the allow-list
    leaky: list[str]  # columns that predict the label almost perfectly on their own
    scores: pd.DataFrame  # per column: mi_ratio, purity, leaky
    combination: dict  # a shallow tree on all features together: accuracy, majority, leaky
    published: bool

    @property
    def served(self) -> Path:
        return self.table if self.published else rejected_path(self.table)


def build_features(reads: DeclaredReads, log: logging.Logger = _log) -> FeaturesBuilt:
    """Time-and-place features for every incident, with the label, from an allow-list only.

    Writes the table staged, batch by batch, with `label_map.json` and `leakage_check.json`; reads
    the staged table back (a seeded sample of a large one) and publishes all three only when every
    column is on the allow-list and no feature, alone or combined, predicts the label almost perfectly.
    """
    layout = reads.layout
    incidents_path = layout.table("incidents")
    present = set(reads.parquet_schema(incidents_path).names)
    cities = cities_in(reads, incidents_path, present)
    target = layout.table("incident_features")
    with parquet_batch_writer(staged_path(target)) as sink:  # batch by batch: bounded memory
        for batch in reads.parquet_batches(incidents_path, batch_rows=FEATURE_BATCH_ROWS):
            table = build_feature_table(batch.to_pandas(), with_city=cities != [DEFAULT_CITY], lake_root=layout.root)
            sink.write(table)
            sample = table.iloc[:0]
        rows = sink.rows
    # Audit what was written, not what was meant: read back (a seeded sample of a large table).
    own = _OwnStagedOutput(layout, reads.step, set())
    features = [c for c in own.parquet_schema(staged_path(target)).names if c not in NOT_FEATURES]
    staged = read_sample(own, staged_path(target), [*features, "label"], LEAKAGE_SAMPLE_ROWS)
    not_allowed = sorted(set(features) - set(FEATURE_COLUMNS))
    scores = leakage_scores(staged[features], staged["label"])
    combination = combination_accuracy(staged[features], staged["label"])
    leaky = sorted(scores.index[scores["leaky"]])
    passed = not not_allowed and not leaky and not combination["leaky"]
    # The profiles' label disguises scored the same way, on a sample: the check would catch them as features.
    profiles = {c: get_profile(c, lake_root=layout.root) for c in cities}
    disguises = {c: p.disguises for c, p in profiles.items()}
    wanted = (
        sorted({d for ds in disguises.values() for d in ds} & present)
        + ["label"]
        + ([CITY_COLUMN] if CITY_COLUMN in present else [])
    )
    leakage = {
        "passed": passed,
        "not_on_allow_list": not_allowed,
        "leaky": leaky,
        "combination": combination,
        "mi_ratio_limit": MI_RATIO_LIMIT,
        "purity_limit": PURITY_LIMIT,
        "combination_limit": COMBINATION_LIMIT,
        "rows_scored": len(staged),
        "rows": rows,
        "scores": scores.to_dict(orient="index"),
        "disguises": disguise_scores(read_sample(reads, incidents_path, wanted, LEAKAGE_SAMPLE_ROWS), disguises),
    }
    outputs = (target, layout.lake_file("label_map.json"), layout.lake_file("leakage_check.json"))
    labels = label_map() if cities == [DEFAULT_CITY] else {c: label_map(p) for c, p in profiles.items()}
    write_json(staged_path(outputs[1]), labels)
    write_json(staged_path(outputs[2]), leakage)
    for path in outputs:
        (publish if passed else reject)(path)
    if not passed:
        log.error(
            f"leakage check failed: not allowed {not_allowed}, leaky {leaky}, combination "
            f"{combination}; table not published, the previous one stays"
        )
    primary = get_profile(primary_city(cities), lake_root=layout.root)  # the default city for a table of no rows
    return FeaturesBuilt(
        table=target,
        sample=sample,
        rows=rows,
        features=features,
        cities=cities,
        classes=list(primary.class_names),
        not_allowed=not_allowed,
        leaky=leaky,
        scores=scores,
        combination=combination,
        published=passed,
    )


@dataclass(frozen=True)
class SplitSettings:
    """How to split: temporal by default; a stratified random split reproduces the seed project's setup.

    The one declaration of these settings: the Dagster run config (defs/features.SplitConfig) is
    derived from its fields, types and defaults.
    """

    strategy: Literal["temporal", "random"] = "temporal"
    validation_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 0


@dataclass
class DatasetSplit:
    """The split table written, with its summary (dataset_splits.json) and per-class counts."""

    table: Path
    sample: pd.DataFrame  # no rows: the columns and their types, for the metadata
    rows: int
    summary: dict  # dataset_splits.json: settings, parts, the primary city's classes and scaler, per-city detail
    class_counts: pd.DataFrame  # incidents per label (rows) and part (columns)


def split_dataset(
    reads: DeclaredReads, settings: SplitSettings = SplitSettings(), log: logging.Logger = _log
) -> DatasetSplit:
    """Train / validation / test parts of the feature table, and a MinMax scaler fitted on train only.

    Each city is split on its own; one row per case number, so no case is split across parts.
    StageError, naming the counts, when a part would get too few incidents or training fewer than
    two incident types, and when the fractions leave no training part.
    """
    layout = reads.layout
    features_path = layout.table("incident_features")
    # Parts from a narrow projection; the wide rows are then streamed with their part attached.
    narrow = ["case_number", "incident_datetime", "label", "label_id"]
    if CITY_COLUMN in reads.parquet_schema(features_path).names:
        narrow.append(CITY_COLUMN)
    table = reads.parquet(features_path, columns=narrow)
    if (
        not 0 < settings.validation_fraction < 1
        or not 0 < settings.test_fraction < 1
        or settings.validation_fraction + settings.test_fraction >= 0.9
    ):
        raise StageError("validation_fraction and test_fraction must be in (0, 1) and leave a training part")
    try:
        split = split_per_city(
            table, settings.strategy, settings.validation_fraction, settings.test_fraction, settings.seed
        )
    except TooLittleDataError as exc:  # the sentence is the failure's description, shown as the cause
        raise StageError(str(exc), {f"rows/{k}": v for k, v in exc.counts.items()}) from exc
    table["split"] = split.to_numpy()
    scalers: dict[str, dict] = {}  # per city, fitted on its own training rows, batch by batch
    offset = 0
    path = layout.table("dataset_splits")
    with parquet_batch_writer(path) as sink:
        for batch in reads.parquet_batches(features_path, batch_rows=FEATURE_BATCH_ROWS):
            part = table["split"].to_numpy()[offset : offset + batch.num_rows]
            offset += batch.num_rows
            frame = batch.to_pandas().assign(split=part)
            sink.write(frame)
            for city, rows in city_parts(frame[frame["split"] == "train"]).items():
                if len(rows):
                    scalers[city] = merge_minmax(scalers.get(city), fit_minmax(rows, MODEL_FEATURES))
            sample = frame.iloc[:0]

    def parts(rows):
        return {
            part: {
                "rows": int((rows["split"] == part).sum()),
                "from": str(rows.loc[rows["split"] == part, "incident_datetime"].min()),
                "to": str(rows.loc[rows["split"] == part, "incident_datetime"].max()),
            }
            for part in SPLITS
        }

    # Per city: its classes and scaler. The top level is the primary city's (the default city when
    # present), as single-city readers expect.
    by_city = {
        city: {
            "classes": list(get_profile(city, lake_root=layout.root).class_names),
            "scaler": scalers[city],
            "parts": parts(rows),
        }
        for city, rows in city_parts(table).items()
    }
    primary = by_city[primary_city(by_city)]
    summary = {
        **asdict(settings),  # strategy, validation_fraction, test_fraction, seed
        "features": list(MODEL_FEATURES),
        "classes": primary["classes"],
        "scaler": primary["scaler"],
        "data_version": file_version(path),  # what models record as the data they were trained on
        "parts": parts(table),
        "cities": by_city,
    }
    write_json(layout.lake_file("dataset_splits.json"), summary)
    for part, info in summary["parts"].items():
        log.info(f"{part}: {info['rows']} rows, {info['from']} .. {info['to']}")
    classes = list(dict.fromkeys(c for info in by_city.values() for c in info["classes"]))
    counts = pd.crosstab(table["label"], table["split"]).reindex(index=classes, columns=list(SPLITS)).fillna(0)
    return DatasetSplit(table=path, sample=sample, rows=len(table), summary=summary, class_counts=counts.astype(int))
