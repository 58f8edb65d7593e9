"""Models: a logistic-regression baseline, the seed project's MLP (GPU-aware), and gradient-boosted trees.

Each asset saves a candidate under models/candidates/; model_evaluation audits the candidates and
publishes to models/ (where `predict` loads) only those that pass its blocking checks.
"""

import json
import time

import dagster as dg
import numpy as np
from sklearn.metrics import accuracy_score, log_loss

from crime_pipeline.defs.automation_conditions import REFRESH_WHEN_UPSTREAM_CHANGES
from crime_pipeline.defs.lake_io import DeclaredReads, declared_reads, read_splits
from crime_pipeline.lib.artifacts import predict_proba, save_model
from crime_pipeline.lib.faults import fault_point
from crime_pipeline.lib.mlp import MLPSettings, train_mlp
from crime_pipeline.lib.mlp import predict_proba as mlp_predict_proba
from crime_pipeline.lib.training import matrices, train_gbdt, train_logistic_regression
from crime_pipeline.resources import LakeResource, TorchDeviceResource

# A training step that runs past this is stuck or thrashing; run monitoring ends the run.
TRAINING_TAGS = {"dagster/max_runtime": str(2 * 60 * 60)}


def _finish(context, lake: LakeResource, reads: DeclaredReads, kind: str, model, splits, info: dict, config: dict,
            extra: dict | None = None, seconds: float = 0.0, val_proba=None) -> dg.MaterializeResult:
    """Score on validation (or take `val_proba`), save the candidate artifact with its metadata, report both in the UI."""
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
            **(extra or {})}
    path = save_model(lake.layout.model_candidates, kind, model, meta)
    context.log.info(f"{kind}: {metrics}")
    weights = json.loads(path.read_text())["weights_sha256"]
    return dg.MaterializeResult(
        data_version=dg.DataVersion(weights[:16]),
        metadata={**metrics, "candidate": dg.MetadataValue.path(str(path)), "data_version": info["data_version"],
                  **reads.metadata()},
    )


class LogisticRegressionConfig(dg.Config):
    """Baseline settings: class weighting and inverse regularisation strength."""

    class_weighted: bool = False
    c: float = 1.0
    max_iter: int = 500


@dg.asset(deps=["dataset_splits"], group_name="models", kinds={"scikitlearn"}, code_version="2",
          automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES, op_tags=TRAINING_TAGS)
def baseline_model(context: dg.AssetExecutionContext, config: LogisticRegressionConfig, lake: LakeResource) -> dg.MaterializeResult:
    """Multinomial logistic regression (lbfgs) on the scaled time-and-place features: the baseline.

    Saved as coefficient arrays (.npz, no pickle) with a JSON of features, classes and scaler.
    """
    reads = declared_reads(context, lake)
    splits, info = read_splits(reads)
    started = time.perf_counter()
    model = train_logistic_regression(matrices(splits, info["scaler"], "train"), config.class_weighted, config.c,
                                      config.max_iter)
    return _finish(context, lake, reads, "baseline", model, splits, info, config.model_dump(), seconds=time.perf_counter() - started)


class GBDTConfig(dg.Config):
    """Gradient-boosting settings."""

    class_weighted: bool = False
    max_iter: int = 150
    learning_rate: float = 0.1
    max_leaf_nodes: int = 31


@dg.asset(deps=["dataset_splits"], group_name="models", kinds={"scikitlearn"}, code_version="2",
          automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES, op_tags=TRAINING_TAGS)
def gbdt_model(context: dg.AssetExecutionContext, config: GBDTConfig, lake: LakeResource) -> dg.MaterializeResult:
    """HistGradientBoostingClassifier: the reference a practitioner would reach for on tabular data.

    Saved with skops and loaded with an explicit list of trusted types (no pickle).
    """
    reads = declared_reads(context, lake)
    splits, info = read_splits(reads)
    started = time.perf_counter()
    model = train_gbdt(matrices(splits, info["scaler"], "train"), config.class_weighted, config.max_iter,
                       config.learning_rate, config.max_leaf_nodes)
    context.log.info(f"gbdt: {model.n_iter_} boosting iterations")
    return _finish(context, lake, reads, "gbdt", model, splits, info, config.model_dump(), seconds=time.perf_counter() - started)


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


class WeightedMLPConfig(MLPConfig):
    """The same network with cost-sensitive decisions: probabilities divided by each type's training
    share, so every type counts alike (balanced class weights in the decision, not in the loss, which
    on small data memorises the rarest types)."""

    prior_correction: bool = True


def _train_mlp_asset(context, config: MLPConfig, lake: LakeResource, torch_device: TorchDeviceResource,
                     kind: str) -> dg.MaterializeResult:
    reads = declared_reads(context, lake)
    splits, info = read_splits(reads)
    scales = {k: tuple(getattr(config, k)) for k in ("cell_scales", "spread_scales", "target_scales")}
    settings = MLPSettings(**{**config.model_dump(), **scales})
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
    # Validation is scored with the place encoding of training rows only: the saved one also counts
    # the validation rows (recount_with_validation), which would let them see their own labels.
    val_proba = None
    if model.selection_encoder is not None:
        val_proba = mlp_predict_proba(model, val.x, encoder=model.selection_encoder).astype(np.float64)
        val_proba /= val_proba.sum(axis=1, keepdims=True)
    return _finish(context, lake, reads, kind, model, splits, info, settings.to_dict(),
                   extra={"history": history, "device": device, "train_cpu_seconds": cpu_seconds},
                   seconds=time.perf_counter() - started, val_proba=val_proba)


@dg.asset(deps=["dataset_splits"], group_name="models", kinds={"pytorch"}, code_version="4",
          automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES, pool="gpu", op_tags=TRAINING_TAGS)
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
          automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES, pool="gpu", op_tags=TRAINING_TAGS)
def mlp_weighted_model(context: dg.AssetExecutionContext, config: WeightedMLPConfig, lake: LakeResource,
                       torch_device: TorchDeviceResource) -> dg.MaterializeResult:
    """The same MLP with class-balanced (cost-sensitive) decisions: higher recall on rare types, paid
    for in accuracy and log loss. Evaluated beside the plain MLP so the trade-off is visible.
    """
    return _train_mlp_asset(context, config, lake, torch_device, "mlp_weighted")
