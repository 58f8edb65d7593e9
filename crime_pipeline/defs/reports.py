"""Reports: honest evaluation against baselines and the Bayes limit, figures, and one HTML report.

model_evaluation is the gate for models: it audits the candidates the model assets trained (their
recorded features against the allow-list, their scores against the Bayes limit) and only then
publishes them to models/, where `predict` loads, together with evaluation.json.
"""

import base64
from datetime import datetime, timezone

import dagster as dg
import numpy as np
import pandas as pd

from crime_pipeline.lib import synthetic
from crime_pipeline.defs.automation_conditions import REFRESH_UNLESS_A_BLOCKING_CHECK_FAILED, REFRESH_WHEN_UPSTREAM_CHANGES
from crime_pipeline.defs.lake_io import declared_reads, reads_metadata
from crime_pipeline.defs.metadata import content_version
from crime_pipeline.defs.models import per_city
from crime_pipeline.defs.open_data import freshness_after_pull
from crime_pipeline.deploy_tags import LIGHT, TABLE
from crime_pipeline.lib.models.artifacts import KINDS, load_model, predict_proba, publish_model
from crime_pipeline.lib.lake.atomic import publish, reject, rejected_path, staged_path, write_json, write_text
from crime_pipeline.lib.lake.parquet import write_parquet
from crime_pipeline.lib.cities.profiles import DEFAULT_CITY, get_profile, model_name, primary_city
from crime_pipeline.lib.reports.evaluation import comparison_markdown, comparison_rows, evaluate, markdown_table
from crime_pipeline.lib.lake.faults import fault_point
from crime_pipeline.lib.features.table import FEATURE_COLUMNS
from crime_pipeline.lib.reports.figures import draw_figures, figure_names
from crime_pipeline.lib.lake.layout import LakeLayout
from crime_pipeline.lib.lake.documents import read_json
from crime_pipeline.lib.reports.html import render_report
from crime_pipeline.lib.features.splits import city_parts
from crime_pipeline.lib.lake.storage import exists, read_bytes
from crime_pipeline.lib.models.training import matrices
from crime_pipeline.resources import LakeResource

PLAUSIBLE_ACCURACY = 0.8  # nine crime types from time and place do not honestly allow more
MODEL_ASSETS = [f"{kind}_model" for kind in KINDS]


def all_generated(generator_versions: dict[str, str | None], version: str | None = None) -> bool:
    """True when every ingested file was recorded as written by the current generator (of its city:
    `version`, the default city's by default): only then is the Bayes limit known. A file without a
    recorded version counts as real data."""
    version = version or synthetic.GENERATOR_VERSION
    return bool(generator_versions) and all(v == version for v in generator_versions.values())


def city_generated(quality: dict, city: str) -> bool:
    """Whether every file of `city` came from the current generator of that city."""
    versions = quality.get("generator_versions", {})
    cities = quality.get("file_cities", {})
    mine = {k: v for k, v in versions.items() if cities.get(k, DEFAULT_CITY) == city}
    return all_generated(mine, synthetic.generator_version(city))


@dg.multi_asset(
    specs=[dg.AssetSpec("model_evaluation", deps=[*MODEL_ASSETS, "dataset_splits", "incidents"], group_name="reports",
                        kinds={"pandas", "json"}, code_version="2", automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES)],
    # can_subset: a check that cannot run on this data is left unexecuted (shown as skipped), not passed.
    can_subset=True,
    op_tags=TABLE,
    check_specs=[
        dg.AssetCheckSpec("model_features_allowed", asset="model_evaluation", blocking=True,
                          description="Every candidate model's recorded features are on the feature allow-list "
                          "and it was trained on the current splits."),
        dg.AssetCheckSpec("no_model_beats_bayes", asset="model_evaluation", blocking=True,
                          description="On generated data, no model beats the true posterior by more than "
                          "sampling noise (that would be a leak, never a success). Skipped on real data, where "
                          "the posterior is unknown."),
        dg.AssetCheckSpec("accuracy_is_plausible", asset="model_evaluation",
                          description="On real data, no model exceeds 0.8 accuracy (WARN: look for a leak). "
                          "Skipped on generated data, where the Bayes check is the stronger test."),
        dg.AssetCheckSpec("mlp_beats_baselines", asset="model_evaluation",
                          description="The MLP beats the majority class and is not behind logistic regression on log loss (WARN)."),
    ],
)
def model_evaluation(context: dg.AssetExecutionContext, lake: LakeResource):
    """Every candidate model and two baselines (majority class, class prior) on the test split, per city.

    Accuracy, balanced accuracy, macro and weighted F1, per-class precision and recall, log loss,
    top-3 accuracy and expected calibration error. On data from the built-in generator, also the
    Bayes limit: the same metrics for the generator's exact posterior on the same rows, and each
    model's gap to it. Each city is judged on its own test rows, against its own majority class and
    Bayes limit. When the blocking checks pass, the models are published to models/ and the
    results to reports/evaluation.json (the primary city's at the top level, every city's under
    `cities`, and a `comparison` row per city); otherwise the previous ones stay.
    """
    layout = lake.layout
    reads = declared_reads(context, lake)
    info = reads.json(layout.lake_file("dataset_splits.json"))
    # Only what evaluation uses (test rows, training labels): 10 million rows whole would not fit comfortably.
    city_column = ["city"] if "city" in reads.parquet_schema(layout.table("dataset_splits")).names else []
    columns = list(dict.fromkeys([*info["scaler"], "latitude", "longitude", "incident_datetime", "label_id", "split",
                                  *city_column]))
    splits = reads.parquet(layout.table("dataset_splits"), columns=columns, filters=[("split", "==", "test")])
    parts = reads.parquet(layout.table("dataset_splits"), columns=["label_id", "split", *city_column])
    quality = reads.json(layout.report_file("data_quality.json"))
    cities = list(city_parts(splits))
    candidates = {(kind, city): reads.json(layout.model_candidates / f"{model_name(kind, city)}.json")
                  for city in cities for kind in KINDS}
    bad_features = {model_name(*k): sorted(set(m["features"]) - set(FEATURE_COLUMNS)) for k, m in candidates.items()}
    bad_features = {k: v for k, v in bad_features.items() if v}
    stale = [model_name(*k) for k, m in candidates.items() if m.get("data_version") != info["data_version"]]
    yield_features = dg.AssetCheckResult(
        asset_key="model_evaluation", check_name="model_features_allowed", passed=not bad_features and not stale,
        metadata={"features_not_allowed": dg.MetadataValue.json(bad_features), "trained_on_other_data": ", ".join(stale) or "none"})
    if bad_features or stale:
        context.log.error(f"not evaluating or publishing: features not allowed {bad_features}, stale {stale}")
        yield dg.MaterializeResult(asset_key="model_evaluation", metadata={"published": False, **reads_metadata(reads)})
        yield yield_features
        return

    docs, predictions = {}, {}
    train_labels = city_parts(parts[parts["split"] == "train"])
    for city, rows, city_info in per_city(splits, info):  # `splits` holds the test rows only
        classes = city_info["classes"]
        test = matrices(rows, city_info["scaler"], "test")
        train_y = train_labels[city]["label_id"].to_numpy()
        probas = {}
        for kind in KINDS:
            name = model_name(kind, city)
            reads.path(layout.model_candidates / candidates[(kind, city)]["weights_file"])
            model, _ = load_model(layout.model_candidates, kind, name)
            probas[kind] = predict_proba(kind, model, test.x, len(classes))
        generated = city_generated(quality, city)
        bayes = None
        if generated:
            # In slices: the posterior's (types, components, rows) temporaries took 12 GB on 1.4 million test rows.
            bayes = np.concatenate([
                synthetic.posterior(part["latitude"], part["longitude"], part["incident_datetime"], city=city)
                for part in (rows.iloc[i:i + 100_000] for i in range(0, max(len(rows), 1), 100_000))])
        doc = evaluate(test.y, train_y, probas, classes, info["strategy"], bayes)
        doc["generated_data"] = generated
        doc["data_version"] = info["data_version"]
        doc["city"] = city
        docs[city] = doc
        predictions[city] = pd.DataFrame({"label_id": test.y, **{f"pred_{k}": p.argmax(1) for k, p in probas.items()}})
    primary = primary_city(docs)
    doc = {**docs[primary], "cities": docs, "comparison": comparison_rows(docs)}
    generated = all(d["generated_data"] for d in docs.values())
    winners = [f"{k}" + ("" if c == primary and len(docs) == 1 else f" ({c})")
               for c, d in docs.items() if d["bayes"] for k, g in d["bayes"]["gap"].items() if g["test"]["beats_bayes"]]
    passed = not winners
    outputs = (layout.report_file("evaluation.json"), layout.lake_file("test_predictions.parquet"))
    write_json(staged_path(outputs[0]), doc)
    write_parquet(staged_path(outputs[1]), predictions[primary])  # the primary city's: the figures show it
    if passed:
        for city, city_doc in docs.items():
            for kind in KINDS:
                publish_model(layout.model_candidates, layout.models, kind,
                              {"published_at": datetime.now(timezone.utc).isoformat(),
                               "test_metrics": city_doc["models"][kind]}, model_name(kind, city))
    for path in outputs:
        (publish if passed else reject)(path)
    if not passed:
        context.log.error(f"{', '.join(winners)} beat the Bayes limit: a leak. Nothing published; the previous models stay")
    table = markdown_table(doc)
    context.log.info("\n" + table)
    yield dg.MaterializeResult(
        asset_key="model_evaluation",
        data_version=content_version(outputs[0] if passed else rejected_path(outputs[0])),
        metadata={
            "metrics": dg.MetadataValue.md(table),
            "cities": dg.MetadataValue.md(comparison_markdown(doc["comparison"])),
            "path": dg.MetadataValue.path(str(outputs[0])),
            "n_test": doc["n_test"],
            "published": passed,
            "bayes_limit": "known (generated data)" if generated else "not applicable: real data, the posterior is unknown",
            **{f"{k}/accuracy": m["accuracy"] for k, m in doc["models"].items()},
            **({"bayes/accuracy": doc["bayes"]["accuracy"]} if doc["bayes"] else {}),
            **reads_metadata(reads),
            **({"mlp_tradeoff": dg.MetadataValue.md(doc["mlp_tradeoff"])} if doc.get("mlp_tradeoff") else {}),
        }
    )
    yield yield_features
    judged = [d for d in docs.values() if d["bayes"]]
    if judged:
        yield dg.AssetCheckResult(asset_key="model_evaluation", check_name="no_model_beats_bayes", passed=passed,
                                  metadata={"models_beating_bayes": ", ".join(winners) or "none",
                                            "bayes_accuracy": doc["bayes"]["accuracy"] if doc["bayes"] else None,
                                            "cities_judged": ", ".join(d["city"] for d in judged)})
    else:
        context.log.info("no_model_beats_bayes: skipped, real data (the Bayes limit is unknown)")
    real = [d for d in docs.values() if not d["bayes"]]
    if real:
        too_good = [k + ("" if len(docs) == 1 else f" ({d['city']})")
                    for d in real for k, m in d["models"].items() if m["accuracy"] > PLAUSIBLE_ACCURACY]
        yield dg.AssetCheckResult(
            asset_key="model_evaluation", check_name="accuracy_is_plausible", severity=dg.AssetCheckSeverity.WARN, passed=not too_good,
            metadata={"models_above_0.8": ", ".join(too_good) or "none"},
        )
    else:
        context.log.info("accuracy_is_plausible: skipped, generated data (the Bayes check applies)")
    behind = {c: d for c, d in docs.items() if not (d["models"]["mlp"]["accuracy"] > d["baselines"]["majority"]["accuracy"]
                                                   and d["models"]["mlp"]["log_loss"] <= d["models"]["baseline"]["log_loss"])}
    mlp, baseline = doc["models"]["mlp"], doc["models"]["baseline"]
    majority = doc["baselines"]["majority"]["accuracy"]
    yield dg.AssetCheckResult(
        asset_key="model_evaluation", check_name="mlp_beats_baselines", severity=dg.AssetCheckSeverity.WARN,
        passed=not behind,
        metadata={"mlp_accuracy": mlp["accuracy"], "majority_accuracy": majority,
                  "mlp_log_loss": mlp["log_loss"], "baseline_log_loss": baseline["log_loss"],
                  "cities_behind": ", ".join(behind) or "none"},
    )


@dg.asset(deps=["model_evaluation", "incidents"], group_name="reports", kinds={"matplotlib", "png"}, code_version="2",
          automation_condition=REFRESH_UNLESS_A_BLOCKING_CHECK_FAILED, op_tags=TABLE)
def figures(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    """PNG figures in reports/: a normalised confusion matrix per model, the MLP training curves,
    hexbin hotspot maps by time band and by main type, the class distribution, and per-class recall
    of every model side by side. Each is also attached to this asset's metadata as an inline image
    with a caption computed from the data it shows (reports/captions.json keeps them for the report).
    """
    layout = lake.layout
    reads = declared_reads(context, lake)
    evaluation = reads.json(layout.report_file("evaluation.json"))
    city = evaluation.get("city", DEFAULT_CITY)  # the figures show the primary city
    profile = get_profile(city)
    city_column = ["city"] if "city" in reads.parquet_schema(layout.table("incidents")).names else []
    incidents = reads.parquet(layout.table("incidents"),
                              columns=["incident_datetime", "label", "latitude", "longitude", *city_column])
    if "city" in incidents:
        incidents = incidents[incidents["city"] == city]
    predictions = reads.parquet(layout.lake_file("test_predictions.parquet"))
    history = reads.json(layout.models / f"{model_name('mlp', city)}.json")["history"]
    written = draw_figures(layout.report_file, evaluation, incidents, predictions, history, profile)
    write_json(layout.report_file("captions.json"), written)
    context.log.info(f"wrote {len(written)} figures to {layout.report_file('')}")
    # Each figure is shown in the UI itself (Markdown with the PNG inline), with what it shows.
    return dg.MaterializeResult(
        metadata={
            "folder": dg.MetadataValue.path(str(layout.report_file(""))),
            **{path.stem: dg.MetadataValue.md(
                f"![{caption}](data:image/png;base64,{base64.b64encode(read_bytes(path)).decode()})\n\n{caption}")
               for path, caption in figure_list(layout, written)},
            **reads_metadata(reads),
        }
    )


def figure_list(layout: LakeLayout, figure_captions: dict[str, str]) -> list:
    """Every figure with its caption, in the order the report shows them."""
    return [(layout.report_file(n), figure_captions[n]) for n in figure_names(KINDS)
            if n in figure_captions and exists(layout.report_file(n))]


def quarantine_examples(reads, files: list[dict], limit: int = 15) -> pd.DataFrame:
    """The first quarantined rows of each file, with the columns a reader needs to judge them."""
    columns = ["source_file", "source_line", "rules", "case_number", "incident_datetime", "parent_incident_type",
               "incident_description", "latitude", "longitude"]
    frames = []
    for item in files:
        path = reads.layout.quarantine_table(item["partition_key"])
        if reads.exists(path):
            frames.append(reads.parquet(path).reindex(columns=columns).head(limit))
    if not frames:
        return pd.DataFrame(columns=columns)
    out = pd.concat(frames, ignore_index=True).head(limit)
    out["incident_description"] = out["incident_description"].astype("string").str.slice(0, 120)
    return out


@dg.asset(deps=["figures", "model_evaluation", "incident_features", "incidents", "incident_quarantine", "seed_reproduction"],
          group_name="reports", kinds={"html"}, code_version="2",
          automation_condition=REFRESH_UNLESS_A_BLOCKING_CHECK_FAILED, freshness_policy=freshness_after_pull(),
          op_tags=LIGHT)
def crime_report(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    """One self-contained HTML report (reports/report.html): data quality, the leakage check, metrics
    with baselines and the Bayes limit, and every figure with a caption saying what to look for.
    Images are inline and every value from the data is escaped; it opens without a network.
    """
    layout = lake.layout
    reads = declared_reads(context, lake)
    quality = reads.json(layout.report_file("data_quality.json"))
    leakage = reads.json(layout.lake_file("leakage_check.json"))
    evaluation = reads.json(layout.report_file("evaluation.json"))
    figures_shown = figure_list(layout, reads.json(layout.report_file("captions.json")))
    for figure, _ in figures_shown:
        reads.path(figure)
    html = render_report(quality, leakage, evaluation, figures_shown, quarantine_examples(reads, quality["files"]),
                         datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                         seed=reads.json(layout.report_file("seed_reproduction.json")))
    fault_point("report:before_write")
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
        "cities": [r["city"] for r in evaluation.get("comparison", [])],
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
            **reads_metadata(reads),
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
    comparison = evaluation.get("comparison") or []
    if len(comparison) > 1:  # several cities: one line each, each against its own baselines
        lines.append(f"  (above: {evaluation.get('city')}) cities side by side:")
        for r in comparison:
            bayes = f", Bayes {r['bayes_accuracy']:.4f}" if r["bayes_accuracy"] is not None else ""
            lines.append(f"  {r['city']:12s} best {r['best_model']} {r['best_accuracy']:.4f}, majority "
                         f"{r['majority_accuracy']:.4f}{bayes} ({r['n_test']:,} test incidents)")
    return "\n".join(lines)

