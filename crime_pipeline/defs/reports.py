"""Reports: honest evaluation against baselines and the Bayes limit, figures, and one HTML report."""

import base64
import json
from datetime import datetime, timezone

import dagster as dg
import pandas as pd

from crime_pipeline import synthetic
from crime_pipeline.defs.automation_conditions import REFRESH_WHEN_UPSTREAM_CHANGES
from crime_pipeline.defs.models import load_splits
from crime_pipeline.lib import plots
from crime_pipeline.lib.artifacts import KINDS, load_model, predict_proba
from crime_pipeline.lib.atomic import read_parquet, write_json, write_parquet, write_text
from crime_pipeline.lib.evaluation import evaluate, markdown_table
from crime_pipeline.lib.lake import LakeLayout, generated_files, ingested, read_json
from crime_pipeline.lib.report import render_report
from crime_pipeline.lib.training import matrices
from crime_pipeline.resources import LakeResource

PLAUSIBLE_ACCURACY = 0.8  # nine crime types from time and place do not honestly allow more


def all_generated(layout: LakeLayout) -> bool:
    """True when every ingested file came from the current built-in generator (Bayes limit known)."""
    files = ingested(layout)
    generated = generated_files(layout)
    return bool(files) and all(
        key in generated and generated[key].get("generator_version", synthetic.GENERATOR_VERSION) == synthetic.GENERATOR_VERSION
        for key in files
    )


@dg.asset(
    deps=["baseline_model", "mlp_model", "mlp_weighted_model", "gbdt_model"],
    group_name="reports",
    kinds={"pandas", "json"},
    code_version="1",
    automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
    check_specs=[
        dg.AssetCheckSpec("no_model_beats_bayes", asset="model_evaluation", blocking=True,
                          description="On generated data, no model beats the true posterior by more than "
                          "sampling noise (that would be a leak, never a success)."),
        dg.AssetCheckSpec("accuracy_is_plausible", asset="model_evaluation",
                          description="On real data, no model exceeds 0.8 accuracy (WARN: look for a leak)."),
        dg.AssetCheckSpec("mlp_beats_baselines", asset="model_evaluation",
                          description="The MLP beats the majority class and is not behind logistic regression on log loss (WARN)."),
    ],
)
def model_evaluation(context: dg.AssetExecutionContext, lake: LakeResource):
    """Every model and two baselines (majority class, class prior) on the test split.

    Accuracy, balanced accuracy, macro and weighted F1, per-class precision and recall, log loss,
    top-3 accuracy and expected calibration error. On data from the built-in generator, also the
    Bayes limit: the same metrics for the generator's exact posterior on the same rows, and each
    model's gap to it. Written to reports/evaluation.json.
    """
    layout = lake.layout
    splits, info = load_splits(lake)
    classes = info["classes"]
    test_rows = splits[splits["split"] == "test"]
    test = matrices(splits, info["scaler"], "test")
    train_y = splits.loc[splits["split"] == "train", "label_id"].to_numpy()
    probas = {}
    for kind in KINDS:
        model, _ = load_model(layout.models, kind)
        probas[kind] = predict_proba(kind, model, test.x, len(classes))
    bayes = None
    generated = all_generated(layout)
    if generated:
        bayes = synthetic.posterior(test_rows["latitude"], test_rows["longitude"], test_rows["incident_datetime"])
    doc = evaluate(test.y, train_y, probas, classes, info["strategy"], bayes)
    doc["generated_data"] = generated
    doc["data_version"] = info["data_version"]
    predictions = pd.DataFrame({"label_id": test.y, **{f"pred_{k}": p.argmax(1) for k, p in probas.items()}})
    write_parquet(layout.lake_file("test_predictions.parquet"), predictions)  # for the figures
    path = write_json(layout.report_file("evaluation.json"), doc)
    table = markdown_table(doc)
    context.log.info("\n" + table)
    yield dg.MaterializeResult(
        metadata={
            "metrics": dg.MetadataValue.md(table),
            "path": dg.MetadataValue.path(str(path)),
            "n_test": doc["n_test"],
            **{f"{k}/accuracy": m["accuracy"] for k, m in doc["models"].items()},
            **({"bayes/accuracy": doc["bayes"]["accuracy"]} if doc["bayes"] else {}),
            **({"mlp_tradeoff": dg.MetadataValue.md(doc["mlp_tradeoff"])} if doc.get("mlp_tradeoff") else {}),
        }
    )
    if doc["bayes"]:
        winners = [k for k, g in doc["bayes"]["gap"].items() if g["test"]["beats_bayes"]]
        yield dg.AssetCheckResult(check_name="no_model_beats_bayes", passed=not winners,
                                  metadata={"models_beating_bayes": ", ".join(winners) or "none",
                                            "bayes_accuracy": doc["bayes"]["accuracy"]})
    else:
        yield dg.AssetCheckResult(check_name="no_model_beats_bayes", passed=True,
                                  metadata={"note": "not generated data: the Bayes limit is unknown"})
    too_good = [k for k, m in doc["models"].items() if m["accuracy"] > PLAUSIBLE_ACCURACY]
    yield dg.AssetCheckResult(
        check_name="accuracy_is_plausible", severity=dg.AssetCheckSeverity.WARN,
        passed=generated or not too_good,
        metadata={"models_above_0.8": ", ".join(too_good) or "none"},
    )
    mlp, baseline = doc["models"]["mlp"], doc["models"]["baseline"]
    majority = doc["baselines"]["majority"]["accuracy"]
    yield dg.AssetCheckResult(
        check_name="mlp_beats_baselines", severity=dg.AssetCheckSeverity.WARN,
        passed=mlp["accuracy"] > majority and mlp["log_loss"] <= baseline["log_loss"],
        metadata={"mlp_accuracy": mlp["accuracy"], "majority_accuracy": majority,
                  "mlp_log_loss": mlp["log_loss"], "baseline_log_loss": baseline["log_loss"]},
    )


FIGURE_CAPTIONS = {
    "class_distribution.png": "Class distribution: Theft dominates; read every accuracy against this imbalance.",
    "hotspots_time_bands.png": "Density by time band: look for the late-night cluster downtown (cyan star).",
    "hotspots_types.png": "Density by type: where each main type concentrates.",
    "training_curves.png": "MLP training curves: validation loss should flatten, not climb (no overfitting).",
    "per_class_recall.png": "Per-class recall: which models find the rare types at all.",
}


def _confusion_caption(kind: str) -> str:
    return f"Confusion matrix, {kind}: rows are true types; mass off the diagonal is confusion (rare types drift to Theft)."


@dg.asset(deps=["model_evaluation", "incidents"], group_name="reports", kinds={"matplotlib", "png"}, code_version="1",
          automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES)
def figures(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    """PNG figures in reports/: a normalised confusion matrix per model, the MLP training curves,
    hexbin hotspot maps by time band and by main type, the class distribution, and per-class recall
    of every model side by side. Each is also attached to this asset's metadata as an inline image
    with a caption saying what to look for.
    """
    layout = lake.layout
    evaluation = json.loads(layout.report_file("evaluation.json").read_text())
    classes = evaluation["classes"]
    incidents = read_parquet(layout.table("incidents"))
    predictions = read_parquet(layout.lake_file("test_predictions.parquet"))
    written = []
    for kind in evaluation["models"]:
        written.append(plots.confusion_matrix_figure(
            predictions["label_id"].to_numpy(), predictions[f"pred_{kind}"].to_numpy(), classes,
            f"Confusion matrix: {kind} (test split)", layout.report_file(f"confusion_{kind}.png")))
    history = json.loads((layout.models / "mlp.json").read_text())["history"]
    written.append(plots.training_curves_figure(history, layout.report_file("training_curves.png")))
    written.append(plots.hotspots_by_time_band(incidents, layout.report_file("hotspots_time_bands.png")))
    written.append(plots.hotspots_by_type(incidents, classes, layout.report_file("hotspots_types.png")))
    written.append(plots.class_distribution_figure(incidents["label"], classes, layout.report_file("class_distribution.png")))
    recalls = {k: m["per_class_recall"] for k, m in evaluation["models"].items()}
    written.append(plots.per_class_recall_figure(recalls, classes, layout.report_file("per_class_recall.png")))
    context.log.info(f"wrote {len(written)} figures to {layout.report_file('')}")
    # Each figure is shown in the UI itself (Markdown with the PNG inline), with what to look for.
    return dg.MaterializeResult(
        metadata={
            "folder": dg.MetadataValue.path(str(layout.report_file(""))),
            **{path.stem: dg.MetadataValue.md(
                f"![{caption}](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})\n\n{caption}")
               for path, caption in figure_list(layout)},
        }
    )


def figure_list(layout: LakeLayout) -> list:
    """Every figure with its caption, in the order the report shows them."""
    items = [(layout.report_file(f"confusion_{k}.png"), _confusion_caption(k)) for k in KINDS]
    items += [(layout.report_file(name), caption) for name, caption in FIGURE_CAPTIONS.items()]
    return [(p, c) for p, c in items if p.exists()]


def quarantine_examples(layout: LakeLayout, limit: int = 15) -> pd.DataFrame:
    """The first quarantined rows of each file, with the columns a reader needs to judge them."""
    columns = ["source_file", "source_line", "rules", "case_number", "incident_datetime", "parent_incident_type",
               "incident_description", "latitude", "longitude"]
    frames = []
    for key in ingested(layout):
        path = layout.quarantine_table(key)
        if path.exists():
            frame = read_parquet(path)
            frames.append(frame.reindex(columns=columns).head(limit))
    if not frames:
        return pd.DataFrame(columns=columns)
    out = pd.concat(frames, ignore_index=True).head(limit)
    out["incident_description"] = out["incident_description"].astype("string").str.slice(0, 120)
    return out


@dg.asset(deps=["figures", "model_evaluation", "incident_features", "incidents"], group_name="reports",
          kinds={"html"}, code_version="1", automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES)
def crime_report(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    """One self-contained HTML report (reports/report.html): data quality, the leakage check, metrics
    with baselines and the Bayes limit, and every figure with a caption saying what to look for.
    Images are inline and every value from the data is escaped; it opens without a network.
    """
    layout = lake.layout
    quality = read_json(layout.report_file("data_quality.json"), {})
    leakage = read_json(layout.lake_file("leakage_check.json"), {})
    evaluation = read_json(layout.report_file("evaluation.json"), {})
    html = render_report(quality, leakage, evaluation, figure_list(layout), quarantine_examples(layout),
                         datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    path = write_text(layout.report_file("report.html"), html)
    best = max(evaluation["models"].items(), key=lambda kv: kv[1]["accuracy"])
    summary = {
        "report": str(path),
        "rows_read": quality["totals"]["rows_read"],
        "valid": quality["totals"]["valid"],
        "best_model": best[0],
        "best_accuracy": round(best[1]["accuracy"], 4),
        "majority_accuracy": round(evaluation["baselines"]["majority"]["accuracy"], 4),
        "bayes_accuracy": round(evaluation["bayes"]["accuracy"], 4) if evaluation.get("bayes") else None,
    }
    write_json(layout.report_file("summary.json"), summary)
    context.log.info(f"report: {path}")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "size_kb": round(len(html) / 1024, 1),
            "summary": dg.MetadataValue.md(
                "\n".join(f"- **{k}**: {v}" for k, v in summary.items()) + "\n\n" + markdown_table(evaluation)),
            "best_accuracy": summary["best_accuracy"],
            "majority_accuracy": summary["majority_accuracy"],
        }
    )


def headline(layout: LakeLayout) -> str | None:
    """The lines `crime-pipeline run` prints at the end: where the report is and the main numbers."""
    summary = read_json(layout.report_file("summary.json"), {})
    evaluation = read_json(layout.report_file("evaluation.json"), {})
    if not summary or not evaluation:
        return None
    lines = [f"report: {summary['report']}",
             f"incidents: {summary['rows_read']:,} rows read, {summary['valid']:,} valid"]
    for kind, m in evaluation["models"].items():
        lines.append(f"  {kind:12s} accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  log loss {m['log_loss']:.4f}")
    if evaluation.get("mlp_tradeoff"):
        lines.append(f"  {evaluation['mlp_tradeoff']}")
    b = evaluation["baselines"]["majority"]
    lines.append(f"  {'majority':12s} accuracy {b['accuracy']:.4f}")
    if evaluation.get("bayes"):
        m = evaluation["bayes"]
        lines.append(f"  {'Bayes':12s} accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  log loss {m['log_loss']:.4f}"
                     "  (the best any model can do on this data)")
    return "\n".join(lines)

