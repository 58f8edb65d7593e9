"""Models: a logistic-regression baseline, the seed project's MLP (GPU-aware), and gradient-boosted trees.

Each asset saves a candidate under models/candidates/; model_evaluation audits the candidates and
publishes to models/ (where `predict` loads) only those that pass its blocking checks.
"""

import json
import time

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.metrics import accuracy_score, log_loss

from crime_pipeline.defs.automation_conditions import REFRESH_WHEN_UPSTREAM_CHANGES
from crime_pipeline.defs.lake_io import DeclaredReads, declared_reads
from crime_pipeline.lib.artifacts import predict_proba, save_model
from crime_pipeline.lib.faults import fault_point
from crime_pipeline.lib.mlp import MLPSettings, train_mlp
from crime_pipeline.lib.training import (
    DEFAULT_MAX_TRAIN_ROWS,
    matrices,
    stratified_sample,
    train_gbdt,
    train_logistic_regression,
)
from crime_pipeline.resources import LakeResource, TorchDeviceResource

# A training step that runs past this is stuck or thrashing; run monitoring ends the run.
TRAINING_TAGS = {"dagster/max_runtime": str(2 * 60 * 60)}


def read_training_splits(reads: DeclaredReads, max_train_rows: int, seed: int = 0) -> tuple[pd.DataFrame, dict, dict]:
    """The training sample and the validation part of dataset_splits (model columns only, read in
    batches), its summary, and what was sampled. Training rows beyond `max_train_rows` are left out
    by a stratified sample (each type keeps its share); validation is whole."""
    layout = reads.layout
    path = layout.table("dataset_splits")
    info = reads.json(layout.lake_file("dataset_splits.json"))
    parts = reads.parquet(path, columns=["split", "label_id"])
    split = parts["split"].to_numpy()
    train = np.flatnonzero(split == "train")
    chosen = train[stratified_sample(parts["label_id"].to_numpy()[train], max_train_rows, seed)]
    keep = split == "validation"
    keep[chosen] = True
    del parts, split
    tables, offset = [], 0
    for batch in reads.parquet_batches(path, columns=[*info["scaler"], "label_id", "split"]):
        tables.append(batch.filter(pa.array(keep[offset:offset + batch.num_rows])))
        offset += batch.num_rows
    sampling = {"train_rows": len(train), "train_rows_used": len(chosen), "max_train_rows": max_train_rows}
    return pa.concat_tables(tables).to_pandas(), info, sampling


def _finish(context, lake: LakeResource, reads: DeclaredReads, kind: str, model, splits, info: dict, config: dict,
            extra: dict | None = None, seconds: float = 0.0) -> dg.MaterializeResult:
    """Score on validation, save the candidate artifact with its metadata, report both in the UI."""
    val = matrices(splits, info["scaler"], "validation")
    n_classes = len(info["classes"])
    proba = predict_proba(kind, model, val.x, n_classes)
    metrics = {
        "validation_accuracy": float(accuracy_score(val.y, proba.argmax(1))),
        "validation_log_loss": float(log_loss(val.y, np.clip(proba, 1e-12, 1), labels=range(n_classes))),
        "train_seconds": round(seconds, 2),
    }
    meta = {"features": info["features"], "classes": info["classes"], "scaler": info["scaler"], "config": config,
            "data_version": info["data_version"], "split_strategy": info["strategy"], "metrics": metrics,
            **(extra or {})}
    path = save_model(lake.layout.model_candidates, kind, model, meta)
    context.log.info(f"{kind}: {metrics}")
    weights = json.loads(path.read_text())["weights_sha256"]
    return dg.MaterializeResult(
        data_version=dg.DataVersion(weights[:16]),
        metadata={**metrics, "candidate": dg.MetadataValue.path(str(path)), "data_version": info["data_version"],
                  **{f"sampling/{k}": v for k, v in (extra or {}).get("sampling", {}).items()}, **reads.metadata()},
    )


class LogisticRegressionConfig(dg.Config):
    """Baseline settings: class weighting and inverse regularisation strength."""

    class_weighted: bool = False
    c: float = 1.0
    max_iter: int = 500
    max_train_rows: int = DEFAULT_MAX_TRAIN_ROWS


@dg.asset(deps=["dataset_splits"], group_name="models", kinds={"scikitlearn"}, code_version="2",
          automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES, op_tags=TRAINING_TAGS)
def baseline_model(context: dg.AssetExecutionContext, config: LogisticRegressionConfig, lake: LakeResource) -> dg.MaterializeResult:
    """Multinomial logistic regression (lbfgs) on the scaled time-and-place features: the baseline.

    Saved as coefficient arrays (.npz, no pickle) with a JSON of features, classes and scaler.
    """
    reads = declared_reads(context, lake)
    splits, info, sampling = read_training_splits(reads, config.max_train_rows)
    started = time.perf_counter()
    model = train_logistic_regression(matrices(splits, info["scaler"], "train"), config.class_weighted, config.c,
                                      config.max_iter)
    return _finish(context, lake, reads, "baseline", model, splits, info, config.model_dump(),
                   extra={"sampling": sampling}, seconds=time.perf_counter() - started)


class GBDTConfig(dg.Config):
    """Gradient-boosting settings."""

    class_weighted: bool = False
    max_iter: int = 150
    learning_rate: float = 0.1
    max_leaf_nodes: int = 31
    max_train_rows: int = DEFAULT_MAX_TRAIN_ROWS


@dg.asset(deps=["dataset_splits"], group_name="models", kinds={"scikitlearn"}, code_version="2",
          automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES, op_tags=TRAINING_TAGS)
def gbdt_model(context: dg.AssetExecutionContext, config: GBDTConfig, lake: LakeResource) -> dg.MaterializeResult:
    """HistGradientBoostingClassifier: the reference a practitioner would reach for on tabular data.

    Saved with skops and loaded with an explicit list of trusted types (no pickle).
    """
    reads = declared_reads(context, lake)
    splits, info, sampling = read_training_splits(reads, config.max_train_rows)
    started = time.perf_counter()
    model = train_gbdt(matrices(splits, info["scaler"], "train"), config.class_weighted, config.max_iter,
                       config.learning_rate, config.max_leaf_nodes)
    context.log.info(f"gbdt: {model.n_iter_} boosting iterations")
    return _finish(context, lake, reads, "gbdt", model, splits, info, config.model_dump(),
                   extra={"sampling": sampling}, seconds=time.perf_counter() - started)


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
    reads = declared_reads(context, lake)
    splits, info, sampling = read_training_splits(reads, config.max_train_rows)
    scales = {k: tuple(getattr(config, k)) for k in ("cell_scales", "spread_scales", "target_scales")}
    settings = MLPSettings(**{**config.model_dump(exclude={"max_train_rows"}), **scales})
    device = torch_device.resolve()
    context.log.info(f"training the {kind} network on {device}")
    train, val = matrices(splits, info["scaler"], "train"), matrices(splits, info["scaler"], "validation")
    started, cpu_started = time.perf_counter(), time.process_time()

    def log_epoch(message: str) -> None:
        context.log.info(message)
        fault_point(f"{kind}:epoch")  # the crash tests kill training here

    model, history = train_mlp(train.x, train.y, val.x, val.y, len(info["classes"]), settings, device,
                               log=log_epoch, features=info["features"], scaler=info["scaler"])
    cpu_seconds = round(time.process_time() - cpu_started, 2)
    return _finish(context, lake, reads, kind, model, splits, info, settings.to_dict(),
                   extra={"history": history, "device": device, "train_cpu_seconds": cpu_seconds, "sampling": sampling},
                   seconds=time.perf_counter() - started)


@dg.asset(deps=["dataset_splits"], group_name="models", kinds={"pytorch"}, code_version="3",
          automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES, pool="gpu", op_tags=TRAINING_TAGS)
def mlp_model(context: dg.AssetExecutionContext, config: MLPConfig, lake: LakeResource,
              torch_device: TorchDeviceResource) -> dg.MaterializeResult:
    """The seed project's MLP: 128-64-32 ReLU with dropout 0.3, softmax over the classes.

    In front of the trunk: one-hot hour, weekday and month, Fourier features of the coordinates and
    grid-cell embeddings at three scales, all fitted on training rows only. Trains on the torch
    device resource (CUDA when present, else the CPU) with Adam and a one-cycle schedule, early
    stopping on validation log loss (best weights restored), then a temperature fitted on
    validation. In the `gpu` pool, so two trainings never share one GPU. Saved as a state_dict
    loaded with weights_only=True, its fitted encoder as JSON.
    """
    return _train_mlp_asset(context, config, lake, torch_device, "mlp")


@dg.asset(deps=["dataset_splits"], group_name="models", kinds={"pytorch"}, code_version="3",
          automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES, pool="gpu", op_tags=TRAINING_TAGS)
def mlp_weighted_model(context: dg.AssetExecutionContext, config: WeightedMLPConfig, lake: LakeResource,
                       torch_device: TorchDeviceResource) -> dg.MaterializeResult:
    """The same MLP with class-balanced (cost-sensitive) decisions: higher recall on rare types, paid
    for in accuracy and log loss. Evaluated beside the plain MLP so the trade-off is visible.
    """
    return _train_mlp_asset(context, config, lake, torch_device, "mlp_weighted")
