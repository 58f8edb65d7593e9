"""Models: a logistic-regression baseline, the seed project's MLP (GPU-aware), and gradient-boosted trees.

Each asset saves a candidate under models/candidates/; model_evaluation audits the candidates and
publishes to models/ (where `predict` loads) only those that pass its blocking checks.
"""

import json
import time

import dagster as dg
import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, log_loss

from crime_pipeline.defs.automation_conditions import REFRESH_WHEN_UPSTREAM_CHANGES
from crime_pipeline.defs.lake_io import DeclaredReads, declared_reads, reads_metadata
from crime_pipeline.deploy_tags import CPU_TRAINING, GPU_TRAINING
from crime_pipeline.lib.models.artifacts import predict_proba, save_model
from crime_pipeline.lib.cities.profiles import model_name, primary_city
from crime_pipeline.lib.lake.faults import fault_point
from crime_pipeline.lib.models.mlp import MLPSettings, train_mlp
from crime_pipeline.lib.models.mlp import predict_proba as mlp_predict_proba
from crime_pipeline.lib.features.splits import city_parts
from crime_pipeline.lib.lake.storage import read_bytes
from crime_pipeline.lib.models.training import DEFAULT_MAX_TRAIN_ROWS, matrices, stratified_sample, train_gbdt, train_logistic_regression
from crime_pipeline.resources import LakeResource, TorchDeviceResource

# A training step that runs past this is stuck or thrashing; run monitoring ends the run.
TRAINING_TAGS = {"dagster/max_runtime": str(2 * 60 * 60)}


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


def per_city(splits, info: dict):
    """(city, its rows, its split summary: classes and scaler) for every city in the splits."""
    for city, rows in city_parts(splits).items():
        yield city, rows, {**info, **info.get("cities", {}).get(city, {})}


def _fit_per_city(context, lake: LakeResource, reads: DeclaredReads, kind: str, fit, config: dict,
                  max_train_rows: int) -> dg.MaterializeResult:
    """One candidate per city present: `fit(city, rows, info)` returns (model, extra); the primary
    city's metrics are the asset's headline metadata, every city's are in a table."""
    splits, info, sampling = read_training_splits(reads, max_train_rows)
    if sampling["train_rows_used"] < sampling["train_rows"]:
        context.log.info(f"training on a stratified sample of {sampling['train_rows_used']:,} of "
                         f"{sampling['train_rows']:,} training rows (max_train_rows)")
    results = {}
    for city, rows, city_info in per_city(splits, info):
        started = time.perf_counter()
        model, extra = fit(city, rows, city_info)
        extra = {**(extra or {}), "sampling": sampling}
        val_proba = extra.pop("val_proba", None)  # set by a fit that scores validation its own way
        results[city] = _finish(context, lake, kind, city, model, rows, city_info, config, extra,
                                time.perf_counter() - started, val_proba)
    primary = results[primary_city(results)]
    table = "| city | validation accuracy | validation log loss | train s |\n|---|---|---|---|\n" + "".join(
        f"| {c} | {r['metrics']['validation_accuracy']:.4f} | {r['metrics']['validation_log_loss']:.4f} | "
        f"{r['metrics']['train_seconds']} |\n" for c, r in results.items())
    return dg.MaterializeResult(
        data_version=dg.DataVersion("".join(r["weights"][:16] for r in results.values())[:64]),
        metadata={**primary["metrics"], "candidate": dg.MetadataValue.path(str(primary["path"])),
                  "data_version": info["data_version"], "cities": dg.MetadataValue.md(table),
                  **{f"sampling/{k}": v for k, v in sampling.items()}, **reads_metadata(reads)},
    )


def _finish(context, lake: LakeResource, kind: str, city: str, model, splits, info: dict, config: dict,
            extra: dict | None = None, seconds: float = 0.0, val_proba=None) -> dict:
    """Score on validation (or take `val_proba`), save the candidate artifact with its metadata."""
    val = matrices(splits, info["scaler"], "validation")
    n_classes = len(info["classes"])
    proba = predict_proba(kind, model, val.x, n_classes) if val_proba is None else val_proba
    metrics = {
        "validation_accuracy": float(accuracy_score(val.y, proba.argmax(1))),
        "validation_log_loss": float(log_loss(val.y, np.clip(proba, 1e-12, 1), labels=range(n_classes))),
        "train_seconds": round(seconds, 2),
    }
    meta = {"features": info["features"], "classes": info["classes"], "scaler": info["scaler"], "config": config,
            "data_version": info["data_version"], "split_strategy": info["strategy"], "metrics": metrics,
            "city": city, **(extra or {})}
    path = save_model(lake.layout.model_candidates, kind, model, meta, model_name(kind, city))
    context.log.info(f"{kind} ({city}): {metrics}")
    return {"metrics": metrics, "path": path, "weights": json.loads(read_bytes(path))["weights_sha256"]}


class LogisticRegressionConfig(dg.Config):
    """Baseline settings: class weighting and inverse regularisation strength."""

    class_weighted: bool = False
    c: float = 1.0
    max_iter: int = 500
    max_train_rows: int = DEFAULT_MAX_TRAIN_ROWS


@dg.asset(deps=["dataset_splits"], group_name="models", kinds={"scikitlearn"}, code_version="2",
          automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES, op_tags=TRAINING_TAGS | CPU_TRAINING)
def baseline_model(context: dg.AssetExecutionContext, config: LogisticRegressionConfig, lake: LakeResource) -> dg.MaterializeResult:
    """Multinomial logistic regression (lbfgs) on the scaled time-and-place features: the baseline.

    Saved as coefficient arrays (.npz, no pickle) with a JSON of features, classes and scaler.
    """
    def fit(city, rows, info):
        return train_logistic_regression(matrices(rows, info["scaler"], "train"), config.class_weighted, config.c,
                                         config.max_iter), None

    return _fit_per_city(context, lake, declared_reads(context, lake), "baseline", fit,
                         config.model_dump(), config.max_train_rows)


class GBDTConfig(dg.Config):
    """Gradient-boosting settings."""

    class_weighted: bool = False
    max_iter: int = 150
    learning_rate: float = 0.1
    max_leaf_nodes: int = 31
    max_train_rows: int = DEFAULT_MAX_TRAIN_ROWS


@dg.asset(deps=["dataset_splits"], group_name="models", kinds={"scikitlearn"}, code_version="2",
          automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES, op_tags=TRAINING_TAGS | CPU_TRAINING)
def gbdt_model(context: dg.AssetExecutionContext, config: GBDTConfig, lake: LakeResource) -> dg.MaterializeResult:
    """HistGradientBoostingClassifier: the reference a practitioner would reach for on tabular data.

    Saved with skops and loaded with an explicit list of trusted types (no pickle).
    """
    def fit(city, rows, info):
        model = train_gbdt(matrices(rows, info["scaler"], "train"), config.class_weighted, config.max_iter,
                           config.learning_rate, config.max_leaf_nodes)
        context.log.info(f"gbdt ({city}): {model.n_iter_} boosting iterations")
        return model, None

    return _fit_per_city(context, lake, declared_reads(context, lake), "gbdt", fit,
                         config.model_dump(), config.max_train_rows)


class MLPConfig(dg.Config):
    """MLP training settings (trunk fixed: 128-64-32 with dropout; see lib/mlp.py for the inputs)."""

    epochs: int = 20
    batch_size: int = 1024
    learning_rate: float = 1e-3
    dropout: float = 0.3
    patience: int = 6
    class_weighted: bool = False
    bf16_autocast: bool = False
    seed: int = 0
    one_hot_time: bool = True
    fourier: int = 0
    cell_scales: list[float] = []
    cell_min_count: int = 5
    embed_dim: int = 8
    spread_scales: list[float] = [0.04, 0.02, 0.01, 0.005, 0.0025]
    target_scales: list[float] = [0.001]
    target_folds: int = 5
    target_offset: bool = True
    spread_shifts: int = 4
    point_cells: bool = True
    recount_with_validation: bool = True
    members: int = 1
    schedule: str = "onecycle"
    temperature_scaling: bool = True
    prior_correction: bool = False
    cpu_threads: int = 1
    max_train_rows: int = DEFAULT_MAX_TRAIN_ROWS  # a stratified sample above this (not an MLPSettings field)


class WeightedMLPConfig(MLPConfig):
    """The same network with cost-sensitive decisions: probabilities divided by each type's training
    share, so every type counts alike (balanced class weights in the decision, not in the loss, which
    on small data memorises the rarest types)."""

    prior_correction: bool = True


def _train_mlp_asset(context, config: MLPConfig, lake: LakeResource, torch_device: TorchDeviceResource,
                     kind: str) -> dg.MaterializeResult:
    scales = {k: tuple(getattr(config, k)) for k in ("cell_scales", "spread_scales", "target_scales")}
    settings = MLPSettings(**{**config.model_dump(exclude={"max_train_rows"}), **scales})
    device = torch_device.resolve()

    def log_epoch(message: str) -> None:
        context.log.info(message)
        fault_point(f"{kind}:epoch")  # the crash tests kill training here

    def fit(city, rows, info):
        context.log.info(f"training the {kind} network for {city} on {device}")
        train, val = matrices(rows, info["scaler"], "train"), matrices(rows, info["scaler"], "validation")
        cpu_started = time.process_time()
        model, history = train_mlp(train.x, train.y, val.x, val.y, len(info["classes"]), settings, device,
                                   log=log_epoch, features=info["features"], scaler=info["scaler"])
        cpu_seconds = round(time.process_time() - cpu_started, 2)
        # Validation is scored with the place encoding of training rows only: the saved one also counts
        # the validation rows (recount_with_validation), which would let them see their own labels.
        val_proba = None
        if model.selection_encoder is not None:
            val_proba = mlp_predict_proba(model, val.x, encoder=model.selection_encoder).astype(np.float64)
            val_proba /= val_proba.sum(axis=1, keepdims=True)
        return model, {"history": history, "device": device, "train_cpu_seconds": cpu_seconds, "val_proba": val_proba}

    return _fit_per_city(context, lake, declared_reads(context, lake), kind, fit, settings.to_dict(),
                         config.max_train_rows)


@dg.asset(deps=["dataset_splits"], group_name="models", kinds={"pytorch"}, code_version="4",
          automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES, pool="gpu", op_tags=TRAINING_TAGS | GPU_TRAINING)
def mlp_model(context: dg.AssetExecutionContext, config: MLPConfig, lake: LakeResource,
              torch_device: TorchDeviceResource) -> dg.MaterializeResult:
    """The seed project's MLP: 128-64-32 ReLU with dropout 0.3, softmax over the classes.

    In front of the trunk: one-hot hour, weekday and month and a smoothed place encoding (log
    P(type | cell) from 0.04 to 0.001 degrees, fitted out of fold on training rows; its finest level
    is an offset on the logits); see lib/mlp.py. Trains on the torch
    device resource (CUDA when present, else the CPU) with Adam and a one-cycle schedule, early
    stopping on validation log loss (best weights restored), then a temperature fitted on
    validation. In the `gpu` pool, so two trainings never share one GPU. Saved as a state_dict
    loaded with weights_only=True, its fitted encoder as JSON.
    """
    return _train_mlp_asset(context, config, lake, torch_device, "mlp")


@dg.asset(deps=["dataset_splits"], group_name="models", kinds={"pytorch"}, code_version="4",
          automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES, pool="gpu", op_tags=TRAINING_TAGS | GPU_TRAINING)
def mlp_weighted_model(context: dg.AssetExecutionContext, config: WeightedMLPConfig, lake: LakeResource,
                       torch_device: TorchDeviceResource) -> dg.MaterializeResult:
    """The same MLP with class-balanced (cost-sensitive) decisions: higher recall on rare types, paid
    for in accuracy and log loss. Evaluated beside the plain MLP so the trade-off is visible.
    """
    return _train_mlp_asset(context, config, lake, torch_device, "mlp_weighted")
