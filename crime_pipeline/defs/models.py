"""Models: a logistic-regression baseline, the seed project's MLP (GPU-aware), and gradient-boosted trees.

Each asset saves a candidate under models/candidates/; model_evaluation audits the candidates and
publishes to models/ (where `predict` loads) only those that pass its blocking checks. The work is
lib/models/stages.py's; the run configs are derived from the settings dataclasses in lib/models
(`config_from_settings`), their one declaration.
"""

# No `from __future__ import annotations`: Dagster reads the assets' config and context annotations.
import dagster as dg

from crime_pipeline.defs.automation_conditions import REFRESH_WHEN_UPSTREAM_CHANGES
from crime_pipeline.defs.config import config_from_settings, first_paragraph, settings_of
from crime_pipeline.defs.lake_io import DeclaredReads, declared_reads, reads_metadata, stage_failures
from crime_pipeline.deploy_tags import CPU_TRAINING, GPU_TRAINING, TABLE
from crime_pipeline.lib.models.fit import ModelsFitted
from crime_pipeline.lib.models.mlp.settings import MLPSettings
from crime_pipeline.lib.models.settings import GBDTSettings, LogisticRegressionSettings, TrainingSample
from crime_pipeline.lib.models.stages import WEIGHTED_MLP_SETTINGS, fit_baseline, fit_gbdt, fit_mlp, weight_mlp
from crime_pipeline.resources import LakeResource, TorchDeviceResource

# A training step that runs past this is stuck or thrashing; run monitoring ends the run.
TRAINING_TAGS = {"dagster/max_runtime": str(2 * 60 * 60)}


LogisticRegressionConfig = config_from_settings(
    "LogisticRegressionConfig", first_paragraph(LogisticRegressionSettings), LogisticRegressionSettings
)
GBDTConfig = config_from_settings("GBDTConfig", first_paragraph(GBDTSettings), GBDTSettings)
MLPConfig = config_from_settings("MLPConfig", first_paragraph(MLPSettings), MLPSettings, TrainingSample)
WeightedMLPConfig = config_from_settings(
    "WeightedMLPConfig",
    "The same network with cost-sensitive decisions: probabilities divided by each type's training share, so "
    "every type counts alike (balanced class weights in the decision, not in the loss, which on small data "
    "memorises the rarest types). The network is mlp_model's: set its training settings there.",
    WEIGHTED_MLP_SETTINGS,
    TrainingSample,
)


def _materialization(fitted: ModelsFitted, reads: DeclaredReads) -> dg.MaterializeResult:
    """The primary city's metrics as the headline, every city's in a table."""
    primary = fitted.primary
    table = "| city | validation accuracy | validation log loss | train s |\n|---|---|---|---|\n" + "".join(
        f"| {c} | {r.metrics['validation_accuracy']:.4f} | {r.metrics['validation_log_loss']:.4f} | "
        f"{r.metrics['train_seconds']} |\n"
        for c, r in fitted.cities.items()
    )
    return dg.MaterializeResult(
        data_version=dg.DataVersion(fitted.weights_version),
        metadata={
            **primary.metrics,
            "candidate": dg.MetadataValue.path(str(primary.path)),
            "data_version": fitted.data_version,
            "cities": dg.MetadataValue.md(table),
            **{f"sampling/{k}": v for k, v in fitted.sampling.items()},
            **reads_metadata(reads),
        },
    )


@dg.asset(
    deps=["dataset_splits"],
    group_name="models",
    kinds={"scikitlearn"},
    code_version="2",
    automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
    op_tags=TRAINING_TAGS | CPU_TRAINING,
)
def baseline_model(
    context: dg.AssetExecutionContext, config: LogisticRegressionConfig, lake: LakeResource
) -> dg.MaterializeResult:
    """Multinomial logistic regression (lbfgs) on the scaled time-and-place features: the baseline.

    Saved as coefficient arrays (.npz, no pickle) with a JSON of features, classes and scaler.
    """
    reads = declared_reads(context, lake)
    with stage_failures():
        fitted = fit_baseline(reads, settings_of(config, LogisticRegressionSettings), log=context.log)
    return _materialization(fitted, reads)


@dg.asset(
    deps=["dataset_splits"],
    group_name="models",
    kinds={"scikitlearn"},
    code_version="2",
    automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
    op_tags=TRAINING_TAGS | CPU_TRAINING,
)
def gbdt_model(context: dg.AssetExecutionContext, config: GBDTConfig, lake: LakeResource) -> dg.MaterializeResult:
    """HistGradientBoostingClassifier: the reference a practitioner would reach for on tabular data.

    Saved with skops and loaded with an explicit list of trusted types (no pickle).
    """
    reads = declared_reads(context, lake)
    with stage_failures():
        fitted = fit_gbdt(reads, settings_of(config, GBDTSettings), log=context.log)
    return _materialization(fitted, reads)


@dg.asset(
    deps=["dataset_splits"],
    group_name="models",
    kinds={"pytorch"},
    code_version="5",
    automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
    pool="gpu",
    op_tags=TRAINING_TAGS | GPU_TRAINING,
)
def mlp_model(
    context: dg.AssetExecutionContext, config: MLPConfig, lake: LakeResource, torch_device: TorchDeviceResource
) -> dg.MaterializeResult:
    """The seed project's MLP: 128-64-32 ReLU with dropout 0.3, softmax over the classes.

    In front of the trunk: one-hot hour, weekday and month and a smoothed place encoding (log
    P(type | cell) from 0.04 to 0.001 degrees, fitted out of fold on training rows; its finest level
    is an offset on the logits); see lib/models/mlp. Trains on the torch
    device resource (CUDA when present, else the CPU) with Adam and a one-cycle schedule, early
    stopping on validation log loss (best weights restored), then a temperature fitted on
    validation. In the `gpu` pool, so two trainings never share one GPU. Saved as a state_dict
    loaded with weights_only=True, its fitted encoder as JSON.
    """
    reads = declared_reads(context, lake)
    with stage_failures():
        fitted = fit_mlp(
            reads, settings_of(config, MLPSettings), config.max_train_rows, torch_device.resolve(), log=context.log
        )
    return _materialization(fitted, reads)


@dg.asset(
    deps=["dataset_splits", "mlp_model"],
    group_name="models",
    kinds={"pytorch"},
    code_version="5",
    automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
    op_tags=TRAINING_TAGS | TABLE,
)
def mlp_weighted_model(
    context: dg.AssetExecutionContext, config: WeightedMLPConfig, lake: LakeResource
) -> dg.MaterializeResult:
    """The same MLP with class-balanced (cost-sensitive) decisions: higher recall on rare types, paid
    for in accuracy and log loss. Evaluated beside the plain MLP so the trade-off is visible.

    It trains nothing: it takes mlp_model's network and divides its probabilities by each type's
    share of the rows that network was trained on (applied to the validation logits mlp_model saved,
    so its validation metrics are those of that very network).
    """
    reads = declared_reads(context, lake)
    with stage_failures():
        fitted = weight_mlp(reads, settings_of(config, MLPSettings), config.max_train_rows, log=context.log)
    return _materialization(fitted, reads)
