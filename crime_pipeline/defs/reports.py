"""Reports: honest evaluation against baselines and the Bayes limit, figures, and one HTML report.

model_evaluation is the gate for models: it audits the candidates the model assets trained (their
recorded features against the allow-list, their scores against the Bayes limit) and only then
publishes them to models/, where `predict` loads, together with evaluation.json. The work is
lib/reports/model_gate.py's `evaluate_and_publish` and lib/reports/stages.py's
`draw_report_figures` and `write_report`; the assets turn their results into Dagster results.
"""

import base64

import dagster as dg

from crime_pipeline.defs.automation_conditions import (
    REFRESH_UNLESS_A_BLOCKING_CHECK_FAILED,
    REFRESH_WHEN_UPSTREAM_CHANGES,
)
from crime_pipeline.defs.lake_io import declared_reads, reads_metadata, stage_failures
from crime_pipeline.defs.metadata import content_version
from crime_pipeline.defs.open_data import freshness_after_pull
from crime_pipeline.deploy_tags import LIGHT, TABLE
from crime_pipeline.lib.lake.storage import read_bytes
from crime_pipeline.lib.models.artifacts import KINDS
from crime_pipeline.lib.reports.districts import district_markdown
from crime_pipeline.lib.reports.evaluation import comparison_markdown
from crime_pipeline.lib.reports.model_gate import SKIPPED, CheckOutcome, evaluate_and_publish
from crime_pipeline.lib.reports.stages import draw_report_figures, write_report
from crime_pipeline.resources import LakeResource

MODEL_ASSETS = [f"{kind}_model" for kind in KINDS]
# The report shows the forecast section only once `crime-pipeline forecast` has built the backtest:
# a forecast never built must not freeze the report's automation.
REPORT_REFRESH = REFRESH_UNLESS_A_BLOCKING_CHECK_FAILED.replace(
    "any_deps_missing",
    dg.AutomationCondition.any_deps_missing()
    .ignore(dg.AssetSelection.assets("forecast_backtest"))
    .with_label("any_deps_missing (the forecast is optional)"),
)
# Checks after model_features_allowed, in the order they are reported; the WARN ones do not block.
EVALUATION_CHECKS = ("no_model_beats_bayes", "accuracy_is_plausible", "mlp_beats_baselines")
WARN_CHECKS = {"accuracy_is_plausible", "mlp_beats_baselines"}


def _check_result(name: str, outcome: CheckOutcome) -> dg.AssetCheckResult:
    """A check outcome of model_evaluation as Dagster's result (a mapping in the metadata as JSON)."""
    return dg.AssetCheckResult(
        asset_key="model_evaluation",
        check_name=name,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.WARN if name in WARN_CHECKS else dg.AssetCheckSeverity.ERROR,
        metadata={k: dg.MetadataValue.json(v) if isinstance(v, dict) else v for k, v in outcome.metadata.items()},
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "model_evaluation",
            deps=[*MODEL_ASSETS, "dataset_splits", "incidents"],
            group_name="reports",
            kinds={"pandas", "json"},
            code_version="3",
            automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
        )
    ],
    # can_subset: a check that cannot run on this data is left unexecuted (shown as skipped), not passed.
    can_subset=True,
    op_tags=TABLE,
    check_specs=[
        dg.AssetCheckSpec(
            "model_features_allowed",
            asset="model_evaluation",
            blocking=True,
            description="Every candidate model's recorded features are on the feature allow-list "
            "and it was trained on the current splits.",
        ),
        dg.AssetCheckSpec(
            "no_model_beats_bayes",
            asset="model_evaluation",
            blocking=True,
            description="On generated data, no model beats the true posterior by more than "
            "sampling noise (that would be a leak, never a success). Skipped on real data, where "
            "the posterior is unknown.",
        ),
        dg.AssetCheckSpec(
            "accuracy_is_plausible",
            asset="model_evaluation",
            description="On real data, no model exceeds 0.8 accuracy (WARN: look for a leak). "
            "Skipped on generated data, where the Bayes check is the stronger test.",
        ),
        dg.AssetCheckSpec(
            "mlp_beats_baselines",
            asset="model_evaluation",
            description="The MLP beats the majority class and is not behind logistic regression on log loss (WARN).",
        ),
    ],
)
def model_evaluation(context: dg.AssetExecutionContext, lake: LakeResource):
    """Every candidate model and two baselines (majority class, class prior) on the test split, per city.

    Accuracy, balanced accuracy, macro and weighted F1, per-class precision and recall, log loss,
    top-3 accuracy and expected calibration error. On data from the built-in generator, also the
    Bayes limit: the same metrics for the generator's exact posterior on the same rows, and each
    model's gap to it. Every headline metric carries a seeded bootstrap 95% interval over the test
    incidents, each model its paired gain over the majority class and the prior with whether that
    gain is distinguishable from zero, and reliability-diagram bins (calibration). Per police
    district, council district and neighbourhood the export has, each model's accuracy, log loss and
    calibration error (`districts/<column>` tables in the metadata). Each city is
    judged on its own test rows, against its own majority class and Bayes limit. When the blocking
    checks pass, the models are published to models/ and the results to reports/evaluation.json
    (the primary city's at the top level, every city's under `cities`, and a `comparison` row per
    city); otherwise the previous ones stay.
    """
    reads = declared_reads(context, lake)
    with stage_failures():
        result = evaluate_and_publish(reads, log=context.log)
    features_allowed = _check_result("model_features_allowed", result.checks["model_features_allowed"])
    if result.doc is None:  # the audit stopped it: nothing evaluated, nothing published
        yield dg.MaterializeResult(asset_key="model_evaluation", metadata={"published": False, **reads_metadata(reads)})
        yield features_allowed
        return
    doc = result.doc
    yield dg.MaterializeResult(
        asset_key="model_evaluation",
        data_version=content_version(result.written),
        metadata={
            "metrics": dg.MetadataValue.md(result.table),
            "cities": dg.MetadataValue.md(comparison_markdown(doc["comparison"])),
            "path": dg.MetadataValue.path(str(result.path)),
            "n_test": doc["n_test"],
            "published": result.published,
            "bayes_limit": "known (generated data)"
            if result.generated
            else "not applicable: real data, the posterior is unknown",
            **{f"{k}/accuracy": m["accuracy"] for k, m in doc["models"].items()},
            **({"bayes/accuracy": doc["bayes"]["accuracy"]} if doc["bayes"] else {}),
            **reads_metadata(reads),
            **({"mlp_tradeoff": dg.MetadataValue.md(doc["mlp_tradeoff"])} if doc.get("mlp_tradeoff") else {}),
            **{name: dg.MetadataValue.md(table) for name, table in district_markdown(doc).items()},
        },
    )
    yield features_allowed
    for name in EVALUATION_CHECKS:
        if name in result.checks:
            yield _check_result(name, result.checks[name])
        else:  # cannot run on this data: left unexecuted (shown as skipped), never passed
            context.log.info(SKIPPED[name])


@dg.asset(
    deps=["model_evaluation", "incidents"],
    group_name="reports",
    kinds={"matplotlib", "png", "geojson"},
    code_version="3",
    automation_condition=REFRESH_UNLESS_A_BLOCKING_CHECK_FAILED,
    op_tags=TABLE,
)
def figures(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    """PNG figures in reports/: every model's normalised confusion matrix in one small multiple, a
    reliability diagram per model, the MLP training curves, hexbin hotspot maps by time band and by
    type (every type, grey where a cell has no incident), the class distribution, and per-class recall
    of every model side by side. Each is also attached to this asset's metadata as an inline image
    with a caption computed from the data it shows (reports/captions.json keeps them for the report).
    The hotspot maps' cells are also written as GeoJSON polygons with counts
    (reports/hotspot_cells.geojson), for QGIS or any GIS tool.
    """
    reads = declared_reads(context, lake)
    with stage_failures():
        drawn = draw_report_figures(reads, log=context.log)
    # Each figure is shown in the UI itself (Markdown with the PNG inline), with what it shows.
    return dg.MaterializeResult(
        metadata={
            "folder": dg.MetadataValue.path(str(drawn.folder)),
            **({"hotspot_cells": dg.MetadataValue.path(str(drawn.hotspot_cells))} if drawn.hotspot_cells else {}),
            **{
                path.stem: dg.MetadataValue.md(
                    f"![{caption}](data:image/png;base64,{base64.b64encode(read_bytes(path)).decode()})\n\n{caption}"
                )
                for path, caption in drawn.figures
            },
            **reads_metadata(reads),
        }
    )


@dg.asset(
    deps=[
        "figures",
        "model_evaluation",
        "incident_features",
        "incidents",
        "incident_quarantine",
        "seed_reproduction",
        "forecast_backtest",
    ],
    group_name="reports",
    kinds={"html"},
    code_version="3",
    automation_condition=REPORT_REFRESH,
    freshness_policy=freshness_after_pull(),
    op_tags=LIGHT,
)
def crime_report(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    """One self-contained HTML report (reports/report.html) with a table of contents: the headline with
    95% intervals and whether the best model's gain over the commonest type is distinguishable from
    zero, metrics with baselines and the Bayes limit, districts, time, every figure with a caption
    saying what to look for, a Responsible use section (where the data came from, real or generated,
    recorded incidents not crime, the feedback-loop caveat), data quality and the leakage check.
    Images are inline and every value from the data is escaped; it opens without a network.
    """
    reads = declared_reads(context, lake)
    with stage_failures():
        report = write_report(reads, log=context.log)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(report.path)),
            "size_kb": report.size_kb,
            "summary": dg.MetadataValue.md(report.summary_markdown),
            "best_accuracy": report.summary["best_accuracy"],
            **reads_metadata(reads),
            "majority_accuracy": report.summary["majority_accuracy"],
        }
    )
