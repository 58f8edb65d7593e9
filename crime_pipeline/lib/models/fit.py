"""Fitting a model kind per city: the training sample of dataset_splits, one candidate per city.

`fit_per_city` is what every training asset does around its own `fit`: read the training sample
(stratified above `max_train_rows`) and the validation rows, fit each city's model, score it on
validation and save it as a candidate. It returns the candidates and what they were trained on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from crime_pipeline.lib.cities.profiles import primary_city
from crime_pipeline.lib.features.splits import city_parts
from crime_pipeline.lib.lake.reads import DeclaredReads
from crime_pipeline.lib.models.artifacts import predict_proba
from crime_pipeline.lib.models.candidates import Candidate, save_candidate, validation_metrics
from crime_pipeline.lib.models.training import matrices, stratified_sample

_log = logging.getLogger(__name__)


def read_training_splits(reads: DeclaredReads, max_train_rows: int, seed: int = 0) -> tuple[pd.DataFrame, dict, dict]:
    """The training sample and the validation part of dataset_splits (model columns only, read in
    batches), its summary, and what was sampled. Training rows beyond `max_train_rows` are left out
    by a stratified sample (each city's types keep their shares); validation is whole."""
    layout = reads.layout
    path = layout.table("dataset_splits")
    info = reads.json(layout.lake_file("dataset_splits.json"))
    city = ["city"] if "city" in reads.parquet_schema(path).names else []
    parts = reads.parquet(path, columns=["split", "label_id", *city])
    split = parts["split"].to_numpy()
    train = np.flatnonzero(split == "train")
    strata = parts["label_id"].to_numpy(dtype=np.int64)
    if city:  # label ids are per city: stratify by (city, type)
        strata = strata + 1000 * pd.factorize(parts["city"])[0]
    chosen = train[stratified_sample(strata[train], max_train_rows, seed)]
    keep = split == "validation"
    keep[chosen] = True
    del parts, split
    rows = reads.parquet_rows_where(path, keep, columns=[*info["scaler"], "label_id", "split", *city])
    sampling = {"train_rows": len(train), "train_rows_used": len(chosen), "max_train_rows": max_train_rows}
    return rows.to_pandas(), info, sampling


def per_city(splits: pd.DataFrame, info: dict) -> Iterator[tuple[str, pd.DataFrame, dict]]:
    """(city, its rows, its split summary: classes and scaler) for every city in the splits."""
    for city, rows in city_parts(splits).items():
        yield city, rows, {**info, **info.get("cities", {}).get(city, {})}


@dataclass(frozen=True)
class CityFit:
    """What a model's `fit` returns for one city: the model, metadata beside the standard fields, and
    its validation probabilities when it scores validation its own way (else they are predicted)."""

    model: Any
    extra: dict = field(default_factory=dict)
    val_proba: np.ndarray | None = None


@dataclass(frozen=True)
class ModelsFitted:
    """One model kind's candidates, one per city, and what they were trained on."""

    kind: str
    cities: dict[str, Candidate]
    sampling: dict  # training rows, those used, the limit
    data_version: str  # of the dataset_splits they were trained on

    @property
    def primary(self) -> Candidate:
        """The primary city's candidate: its metrics are the asset's headline."""
        return self.cities[primary_city(self.cities)]

    @property
    def weights_version(self) -> str:
        """A version naming every city's weights (the asset's data version)."""
        return "".join(c.weights_sha256[:16] for c in self.cities.values())[:64]


def fit_per_city(
    reads: DeclaredReads,
    kind: str,
    fit: Callable[[str, pd.DataFrame, dict], CityFit],
    config: dict,
    max_train_rows: int,
    log: logging.Logger = _log,
) -> ModelsFitted:
    """One candidate per city present: `fit(city, rows, info)` trains on the city's rows; each model is
    scored on its city's validation rows and saved with `config` in its metadata."""
    splits, info, sampling = read_training_splits(reads, max_train_rows)
    if sampling["train_rows_used"] < sampling["train_rows"]:
        log.info(
            f"training on a stratified sample of {sampling['train_rows_used']:,} of "
            f"{sampling['train_rows']:,} training rows (max_train_rows)"
        )
    results = {}
    for city, rows, city_info in per_city(splits, info):
        started = time.perf_counter()
        fitted = fit(city, rows, city_info)
        seconds = time.perf_counter() - started
        val = matrices(rows, city_info["scaler"], "validation")
        n_classes = len(city_info["classes"])
        proba = predict_proba(kind, fitted.model, val.x, n_classes) if fitted.val_proba is None else fitted.val_proba
        metrics = validation_metrics(val.y, proba, n_classes, seconds)
        results[city] = save_candidate(
            reads.layout,
            kind,
            city,
            fitted.model,
            city_info,
            config,
            metrics,
            {**fitted.extra, "sampling": sampling},
            log,
        )
    return ModelsFitted(kind, results, sampling, info["data_version"])
