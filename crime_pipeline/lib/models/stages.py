"""The model stages, one per model asset: fit per city, score on validation, save the candidates.

`fit_baseline`, `fit_gbdt` and `fit_mlp` train on the training sample of dataset_splits
(fit.py). `weight_mlp` trains nothing: it takes mlp_model's candidate network for each city and
applies the class-balanced decision rule (the prior correction: a logit offset of -log(training
share) per type) to it and to the validation logits the MLP saved beside it, so its validation
metrics are exactly those of the same network trained again with `prior_correction`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict

import numpy as np

from crime_pipeline.lib.cities.profiles import model_name
from crime_pipeline.lib.lake.errors import StageError
from crime_pipeline.lib.lake.faults import fault_point
from crime_pipeline.lib.lake.reads import DeclaredReads
from crime_pipeline.lib.models.artifacts import load_model
from crime_pipeline.lib.models.candidates import (
    read_validation_logits,
    remove_superseded_logits,
    save_candidate,
    save_validation_logits,
    validation_metrics,
)
from crime_pipeline.lib.models.fit import CityFit, ModelsFitted, fit_per_city, per_city
from crime_pipeline.lib.models.mlp.network import prior_correction_offset
from crime_pipeline.lib.models.mlp.settings import MLPSettings
from crime_pipeline.lib.models.mlp.train import proba_from_logits, scaled_logits, train_mlp
from crime_pipeline.lib.models.settings import GBDTSettings, LogisticRegressionSettings
from crime_pipeline.lib.models.training import DEFAULT_MAX_TRAIN_ROWS, matrices, train_gbdt, train_logistic_regression

_log = logging.getLogger(__name__)

# mlp_weighted_model's settings: the MLP's, with class-balanced decisions (its run config's defaults).
WEIGHTED_MLP_SETTINGS = MLPSettings(prior_correction=True)


def fit_baseline(
    reads: DeclaredReads, settings: LogisticRegressionSettings, log: logging.Logger = _log
) -> ModelsFitted:
    """baseline_model's stage: multinomial logistic regression per city."""

    def fit(city, rows, info):
        data = matrices(rows, info["scaler"], "train")
        return CityFit(train_logistic_regression(data, settings.class_weighted, settings.c, settings.max_iter))

    return fit_per_city(reads, "baseline", fit, asdict(settings), settings.max_train_rows, log)


def fit_gbdt(reads: DeclaredReads, settings: GBDTSettings, log: logging.Logger = _log) -> ModelsFitted:
    """gbdt_model's stage: histogram gradient-boosted trees per city."""

    def fit(city, rows, info):
        model = train_gbdt(
            matrices(rows, info["scaler"], "train"),
            settings.class_weighted,
            settings.max_iter,
            settings.learning_rate,
            settings.max_leaf_nodes,
        )
        log.info(f"gbdt ({city}): {model.n_iter_} boosting iterations")
        return CityFit(model)

    return fit_per_city(reads, "gbdt", fit, asdict(settings), settings.max_train_rows, log)


def fit_mlp(
    reads: DeclaredReads, settings: MLPSettings, max_train_rows: int, device: str, log: logging.Logger = _log
) -> ModelsFitted:
    """mlp_model's stage: the MLP per city on `device`. Beside each candidate it saves the validation
    logits and records the training sample's class counts, for mlp_weighted_model."""
    folder = reads.layout.model_candidates
    logits_files: dict[str, str] = {}

    def log_epoch(message: str) -> None:
        log.info(message)
        fault_point("mlp:epoch")  # the crash tests kill training here

    def fit(city, rows, info):
        log.info(f"training the mlp network for {city} on {device}")
        train, val = matrices(rows, info["scaler"], "train"), matrices(rows, info["scaler"], "validation")
        n_classes = len(info["classes"])
        cpu_started = time.process_time()
        model, history = train_mlp(
            train.x,
            train.y,
            val.x,
            val.y,
            n_classes,
            settings,
            device,
            log=log_epoch,
            features=info["features"],
            scaler=info["scaler"],
        )
        cpu_seconds = round(time.process_time() - cpu_started, 2)
        # Validation is scored with the place encoding of training rows only: the saved one also counts
        # the validation rows (recount_with_validation), which would let them see their own labels.
        logits = scaled_logits(model, val.x, encoder=model.selection_encoder)
        val_proba = proba_from_logits(logits, model.logit_offset).astype(np.float64)
        val_proba /= val_proba.sum(axis=1, keepdims=True)
        name = model_name("mlp", city)
        record = save_validation_logits(folder, name, logits)
        logits_files[name] = record["file"]
        return CityFit(
            model,
            {
                "history": history,
                "device": device,
                "train_cpu_seconds": cpu_seconds,
                "train_class_counts": np.bincount(train.y, minlength=n_classes).tolist(),
                "validation_logits": record,
            },
            val_proba,
        )

    fitted = fit_per_city(reads, "mlp", fit, settings.to_dict(), max_train_rows, log)
    for name, keep in logits_files.items():
        remove_superseded_logits(folder, name, keep)
    return fitted


def weight_mlp(
    reads: DeclaredReads,
    settings: MLPSettings = WEIGHTED_MLP_SETTINGS,
    max_train_rows: int = DEFAULT_MAX_TRAIN_ROWS,
    log: logging.Logger = _log,
) -> ModelsFitted:
    """mlp_weighted_model's stage: each city's mlp_model candidate with class-balanced decisions
    (`settings.prior_correction`), saved as the mlp_weighted candidate; no network is trained.

    Its other settings cannot change a network already trained: one set to a value that is neither
    its default nor what mlp_model used is an error naming it."""
    layout = reads.layout
    path = layout.table("dataset_splits")
    info = reads.json(layout.lake_file("dataset_splits.json"))
    city_column = ["city"] if "city" in reads.parquet_schema(path).names else []
    parts = reads.parquet(path, columns=["split", "label_id", *city_column])
    results, sampling = {}, {}
    for city, rows, city_info in per_city(parts[parts["split"] == "validation"], info):
        started = time.perf_counter()
        name = model_name("mlp", city)
        model, meta = _mlp_candidate(reads, name, info["data_version"], city)
        _check_settings(settings, max_train_rows, meta, name)
        logits = read_validation_logits(reads, layout.model_candidates, meta["validation_logits"], f"{name}.json")
        y = rows["label_id"].to_numpy(dtype=np.int64)
        n_classes = len(city_info["classes"])
        if logits.shape != (len(y), n_classes):
            raise StageError(
                f"the validation logits of {name}.json are {logits.shape[0]} rows x {logits.shape[1]} "
                f"types, but the splits hold {len(y)} validation rows of {n_classes} types for {city}: "
                "rematerialize mlp_model",
                {"city": city},
            )
        model.logit_offset = prior_correction_offset(meta["train_class_counts"]) if settings.prior_correction else None
        proba = proba_from_logits(logits, model.logit_offset).astype(np.float64)
        proba /= proba.sum(axis=1, keepdims=True)
        metrics = validation_metrics(y, proba, n_classes, time.perf_counter() - started)
        extra = {key: meta[key] for key in ("history", "device", "train_cpu_seconds")}
        extra |= {"network": {"kind": "mlp", "weights_sha256": meta["weights_sha256"]}, "sampling": meta["sampling"]}
        config = {**meta["config"], "prior_correction": settings.prior_correction}
        log.info(
            f"mlp_weighted ({city}): mlp_model's network, {'class-balanced' if settings.prior_correction else 'plain'} "
            "decisions; nothing retrained"
        )
        results[city] = save_candidate(layout, "mlp_weighted", city, model, city_info, config, metrics, extra, log)
        sampling = meta["sampling"]
    return ModelsFitted("mlp_weighted", results, sampling, info["data_version"])


def _mlp_candidate(reads: DeclaredReads, name: str, data_version: str, city: str) -> tuple:
    """mlp_model's candidate `name` (network, metadata), trained for `city` on the current splits by
    this version. Network and metadata come from one read of the metadata, so a retrain running
    beside this step cannot pair one network with another's logits and class counts."""
    folder = reads.layout.model_candidates
    path = folder / f"{name}.json"
    if not reads.exists(path):
        raise StageError(f"no mlp_model candidate {name}.json in {path.parent}: materialize mlp_model first")
    model, meta = load_model(folder, "mlp", name)
    reads.path(folder / meta["weights_file"])  # recorded: the network is read too
    if meta.get("city") != city:
        raise StageError(f"mlp_model's candidate {name}.json was trained for {meta.get('city')}, not {city}")
    if meta.get("data_version") != data_version:
        raise StageError(
            f"mlp_model's candidate {name}.json was trained on data version {meta.get('data_version')}, "
            f"the splits are {data_version}: rematerialize mlp_model",
            {"candidate": meta.get("data_version"), "splits": data_version},
        )
    missing = [k for k in ("validation_logits", "train_class_counts", "sampling") if k not in meta]
    if missing:
        raise StageError(
            f"mlp_model's candidate {name}.json has no {', '.join(missing)} (saved by an older "
            "version): rematerialize mlp_model"
        )
    return model, meta


def _check_settings(settings: MLPSettings, max_train_rows: int, meta: dict, name: str) -> None:
    """Refuse a network setting set to neither its default nor the value mlp_model trained with."""
    requested = {**settings.to_dict(), "max_train_rows": max_train_rows}
    defaults = {**WEIGHTED_MLP_SETTINGS.to_dict(), "max_train_rows": DEFAULT_MAX_TRAIN_ROWS}
    trained = {**meta["config"], "max_train_rows": meta["sampling"].get("max_train_rows")}
    conflicts = {
        key: (value, trained.get(key))
        for key, value in requested.items()
        if key != "prior_correction" and value != defaults[key] and value != trained.get(key)
    }
    if conflicts:
        said = ", ".join(f"{key}={value!r} (mlp_model used {used!r})" for key, (value, used) in conflicts.items())
        raise StageError(
            f"mlp_weighted_model reuses mlp_model's network ({name}) and cannot retrain it with {said}: "
            "set these in mlp_model's config",
            {"conflicts": list(conflicts)},
        )
