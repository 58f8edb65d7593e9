"""The whole graph without Dagster: the lib/ functions the assets call, in the same order, in one process.

    python -m benchmarks.direct LAKE_ROOT --json OUT.json [--launched-at EPOCH_SECONDS]

LAKE_ROOT holds raw/incoming/*.csv (and raw/generated.json). Each step below mirrors one asset of
crime_pipeline/defs/ (its lib calls, its staged writes and read-backs, its checks), minus what
exists only for Dagster: materialization metadata, column lineage, data versions of the assets
and declared-read bookkeeping. Nothing here imports dagster. The settings are the assets' config
defaults, copied (test_benchmarks.py checks they still match). Writes per-step seconds and the
evaluation's accuracies (to compare with the Dagster run's) to OUT.json.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time

STARTED = time.time()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from pathlib import Path  # noqa: E402
from sklearn.metrics import accuracy_score, log_loss  # noqa: E402

from crime_pipeline.lib import synthetic  # noqa: E402
from crime_pipeline.lib.reports.figures import draw_figures, figure_names  # noqa: E402
from crime_pipeline.lib.models.artifacts import KINDS, load_model, predict_proba, publish_model, save_model  # noqa: E402
from crime_pipeline.lib.lake.atomic import publish, reject, staged_path, write_json, write_text  # noqa: E402
from crime_pipeline.lib.lake.parquet import read_parquet, write_parquet
from crime_pipeline.lib.cities.columns import CLASSES  # noqa: E402
from crime_pipeline.lib.reports.evaluation import evaluate  # noqa: E402
from crime_pipeline.lib.features.table import FEATURE_COLUMNS, ID_COLUMNS, MODEL_FEATURES, build_feature_table, label_map  # noqa: E402
from crime_pipeline.lib.lake.ledger import ingested, record_ingested, record_validated, scan_incoming, split_by_status  # noqa: E402
from crime_pipeline.lib.lake.layout import LakeLayout  # noqa: E402
from crime_pipeline.lib.lake.layout import partition_key_for
from crime_pipeline.lib.lake.documents import read_json
from crime_pipeline.lib.features.leakage import combination_accuracy, leakage_scores  # noqa: E402
from crime_pipeline.lib.models.mlp import MLPSettings, select_device, train_mlp  # noqa: E402
from crime_pipeline.lib.validate.quality import accounting_problems, quality_report  # noqa: E402
from crime_pipeline.lib.ingest.record_count import counting_records
from crime_pipeline.lib.ingest.raw_csv import read_raw_csv, sha256_file  # noqa: E402
from crime_pipeline.lib.reports.html import render_report  # noqa: E402
from crime_pipeline.lib.reports.seed_method import SeedSettings, reproduce  # noqa: E402
from crime_pipeline.lib.features.splits import fit_minmax, temporal_split  # noqa: E402
from crime_pipeline.lib.models.training import matrices, train_gbdt, train_logistic_regression  # noqa: E402
from crime_pipeline.lib.validate.validation import local_time, supersede, validate_incidents  # noqa: E402

IMPORTED = time.time()

# The assets' config defaults (defs/models.py, defs/features.py, defs/seed_reproduction.py).
LOGISTIC = {"class_weighted": False, "c": 1.0, "max_iter": 500}
GBDT = {"class_weighted": False, "max_iter": 150, "learning_rate": 0.1, "max_leaf_nodes": 31}
MLP = MLPSettings()
# The model assets train on a stratified sample above this many training rows; the driver trains on
# every row, so it refuses more (the benchmark's default file has about 217,000).
MAX_TRAIN_ROWS = 1_000_000
MLP_WEIGHTED = MLPSettings(prior_correction=True)
SPLIT = {"strategy": "temporal", "validation_fraction": 0.15, "test_fraction": 0.15, "seed": 0}
SEED = SeedSettings()
NOT_FEATURES = (*ID_COLUMNS, "label", "label_id")
DEVICE = select_device(os.environ.get("CRIME_PIPELINE_DEVICE", "auto"))  # as the torch_device resource


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()[:16]


def ingest(layout: LakeLayout, path: Path, key: str) -> None:
    """raw_incidents: the file read losslessly, the ledger entry with a second reader's count."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    with counting_records(path) as counted:  # beside the parse, as the asset counts
        read = read_raw_csv(path, data)
        rows = read.rows
        rows.insert(0, "source_file", path.name)
        rows.insert(1, "source_sha256", digest)
        write_parquet(layout.raw_table(key), rows)
        records_counted = counted()
    generator = read_json(layout.generated_manifest, {"files": {}})["files"].get(key, {})
    record_ingested(layout, key, {
        "file": path.name, "sha256": digest, "bytes": len(data), "rows_read": read.rows_read,
        "records_counted": records_counted,
        "generator_version": generator.get("generator_version") if generator.get("sha256") == digest else None,
    })


def validate(layout: LakeLayout, key: str) -> None:
    """validate_file: pandera rules, staged tables, the row accounting, then publication."""
    raw = read_parquet(layout.raw_table(key))
    entry = read_json(layout.ledger, {})["files"][key]
    result = validate_incidents(raw, as_of=local_time(entry["ingested_at"]))
    outputs = (layout.validated_table(key), layout.quarantine_table(key), layout.validation_summary(key))
    write_parquet(staged_path(outputs[0]), result.valid)
    write_parquet(staged_path(outputs[1]), result.quarantine)
    write_json(staged_path(outputs[2]), {"file": entry["file"], "rows_read": result.rows_read,
                                         "valid": len(result.valid), "quarantined": len(result.quarantine),
                                         "quarantined_by_rule": result.by_rule, "flags": result.flags})
    staged_valid = pq.ParquetFile(staged_path(outputs[0])).metadata.num_rows
    staged_quarantine = pq.ParquetFile(staged_path(outputs[1])).metadata.num_rows
    if staged_valid + staged_quarantine != entry.get("records_counted"):
        raise SystemExit(f"{entry['file']}: rows do not add up")
    for path in outputs:
        publish(path)
    record_validated(layout, key, {"valid": staged_valid, "quarantined": staged_quarantine})


def merge(layout: LakeLayout) -> None:
    """incidents: every validated file, newest record per case, data_quality.json, its checks."""
    ledger = read_json(layout.ledger, {})
    done, pending = split_by_status(ledger["files"])
    frames, summaries = [], {}
    for key, entry in done.items():
        frames.append(read_parquet(layout.validated_table(key)).assign(ingest_seq=entry["seq"], partition_key=key))
        summaries[key] = read_json(layout.validation_summary(key), {})
    kept, superseded = supersede(pd.concat(frames, ignore_index=True))
    report = quality_report(summaries, superseded["partition_key"].value_counts().to_dict(),
                            kept["partition_key"].value_counts().to_dict())
    report["pending_files"] = [{"partition_key": k, "file": e["file"], "status": e.get("status")} for k, e in pending.items()]
    report["generator_versions"] = {k: e.get("generator_version") for k, e in ledger["files"].items()}
    target, quality_path = layout.table("incidents"), layout.report_file("data_quality.json")
    write_parquet(staged_path(target), kept)
    write_json(staged_path(quality_path), report)
    staged = pq.read_table(staged_path(target), columns=["case_number", "partition_key"])
    kept_per_file = staged.column("partition_key").to_pandas().value_counts().to_dict()
    quarantined = {k: pq.ParquetFile(layout.quarantine_table(k)).metadata.num_rows for k in done}
    problems = accounting_problems(done, kept_per_file, quarantined, superseded["partition_key"].value_counts().to_dict())
    if problems or len(staged) != len(pc.unique(staged.column("case_number"))):
        raise SystemExit(f"incidents: checks failed {problems}")
    for path in (target, quality_path):
        publish(path)


def features(layout: LakeLayout) -> None:
    """incident_features: the table, staged, audited for leakage on what was written, published."""
    table = build_feature_table(read_parquet(layout.table("incidents")))
    target = layout.table("incident_features")
    write_parquet(staged_path(target), table)
    staged = read_parquet(staged_path(target))
    cols = [c for c in staged.columns if c not in NOT_FEATURES]
    scores = leakage_scores(staged[cols], staged["label"])
    combination = combination_accuracy(staged[cols], staged["label"])
    leaky = sorted(scores.index[scores["leaky"]])
    passed = not set(cols) - set(FEATURE_COLUMNS) and not leaky and not combination["leaky"]
    outputs = (target, layout.lake_file("label_map.json"), layout.lake_file("leakage_check.json"))
    write_json(staged_path(outputs[1]), label_map())
    write_json(staged_path(outputs[2]), {"passed": passed, "leaky": leaky, "combination": combination,
                                         "not_on_allow_list": sorted(set(cols) - set(FEATURE_COLUMNS)),
                                         "scores": scores.to_dict(orient="index")})
    for path in outputs:
        (publish if passed else reject)(path)


def splits(layout: LakeLayout) -> None:
    """dataset_splits: temporal parts and the MinMax scaler fitted on train."""
    table = read_parquet(layout.table("incident_features"))
    table["split"] = temporal_split(table, SPLIT["validation_fraction"], SPLIT["test_fraction"]).to_numpy()
    scaler = fit_minmax(table[table["split"] == "train"], MODEL_FEATURES)
    path = write_parquet(layout.table("dataset_splits"), table)
    write_json(layout.lake_file("dataset_splits.json"), {
        **SPLIT, "features": list(MODEL_FEATURES), "classes": list(CLASSES), "scaler": scaler,
        "data_version": file_hash(path),
        "parts": {p: {"rows": int((table["split"] == p).sum())} for p in ("train", "validation", "test")},
    })


def read_splits(layout: LakeLayout) -> tuple[pd.DataFrame, dict]:
    return read_parquet(layout.table("dataset_splits")), read_json(layout.lake_file("dataset_splits.json"), {})


def finish(layout: LakeLayout, kind: str, model, table, info, config: dict, extra: dict, seconds: float) -> None:
    """The model assets' _finish: validation scores, then the candidate artifact."""
    val = matrices(table, info["scaler"], "validation")
    proba = predict_proba(kind, model, val.x, len(info["classes"]))
    metrics = {"validation_accuracy": float(accuracy_score(val.y, proba.argmax(1))),
               "validation_log_loss": float(log_loss(val.y, np.clip(proba, 1e-12, 1), labels=range(len(info["classes"])))),
               "train_seconds": round(seconds, 2)}
    save_model(layout.model_candidates, kind, model, {
        "features": info["features"], "classes": info["classes"], "scaler": info["scaler"], "config": config,
        "data_version": info["data_version"], "split_strategy": info["strategy"], "metrics": metrics, **extra})


def train(layout: LakeLayout, kind: str) -> None:
    """baseline_model, gbdt_model, mlp_model, mlp_weighted_model."""
    table, info = read_splits(layout)
    started = time.perf_counter()
    train_part = matrices(table, info["scaler"], "train")
    if len(train_part.y) > MAX_TRAIN_ROWS:
        raise SystemExit(f"{len(train_part.y):,} training rows: above {MAX_TRAIN_ROWS:,} the assets train on a sample")
    if kind == "baseline":
        model = train_logistic_regression(train_part, LOGISTIC["class_weighted"], LOGISTIC["c"], LOGISTIC["max_iter"])
        config, extra = LOGISTIC, {}
    elif kind == "gbdt":
        model = train_gbdt(train_part, GBDT["class_weighted"], GBDT["max_iter"], GBDT["learning_rate"],
                           GBDT["max_leaf_nodes"])
        config, extra = GBDT, {}
    else:
        settings = MLP if kind == "mlp" else MLP_WEIGHTED
        val = matrices(table, info["scaler"], "validation")
        model, history = train_mlp(train_part.x, train_part.y, val.x, val.y, len(info["classes"]), settings, DEVICE,
                                   log=lambda message: None, features=info["features"], scaler=info["scaler"])
        config, extra = settings.to_dict(), {"history": history, "device": DEVICE}
    finish(layout, kind, model, table, info, config, extra, time.perf_counter() - started)


def evaluation(layout: LakeLayout) -> dict:
    """model_evaluation: every candidate on the test split, the Bayes limit, publication."""
    table, info = read_splits(layout)
    quality = read_json(layout.report_file("data_quality.json"), {})
    test_rows = table[table["split"] == "test"]
    test = matrices(table, info["scaler"], "test")
    train_y = table.loc[table["split"] == "train", "label_id"].to_numpy()
    probas = {kind: predict_proba(kind, load_model(layout.model_candidates, kind)[0], test.x, len(info["classes"]))
              for kind in KINDS}
    versions = quality.get("generator_versions", {})
    generated = bool(versions) and all(v == synthetic.GENERATOR_VERSION for v in versions.values())
    bayes = synthetic.posterior(test_rows["latitude"], test_rows["longitude"], test_rows["incident_datetime"]) \
        if generated else None
    doc = evaluate(test.y, train_y, probas, info["classes"], info["strategy"], bayes)
    doc["generated_data"], doc["data_version"] = generated, info["data_version"]
    outputs = (layout.report_file("evaluation.json"), layout.lake_file("test_predictions.parquet"))
    write_json(staged_path(outputs[0]), doc)
    write_parquet(staged_path(outputs[1]), pd.DataFrame({"label_id": test.y, **{f"pred_{k}": p.argmax(1) for k, p in probas.items()}}))
    for kind in KINDS:
        publish_model(layout.model_candidates, layout.models, kind, {"test_metrics": doc["models"][kind]})
    for path in outputs:
        publish(path)
    return doc


def figures(layout: LakeLayout) -> None:
    """figures: the same PNGs and captions, from the same columns."""
    incidents = read_parquet(layout.table("incidents"), columns=["incident_datetime", "label", "latitude", "longitude"])
    written = draw_figures(layout.report_file, read_json(layout.report_file("evaluation.json"), {}), incidents,
                           read_parquet(layout.lake_file("test_predictions.parquet")),
                           read_json(layout.models / "mlp.json", {})["history"])
    write_json(layout.report_file("captions.json"), written)


def seed_reproduction(layout: LakeLayout) -> None:
    doc = reproduce(read_parquet(layout.table("incidents")), SEED, DEVICE, log=lambda message: None)
    write_json(layout.report_file("seed_reproduction.json"), doc)


def report(layout: LakeLayout) -> None:
    """crime_report: the HTML report from the published files."""
    quality = read_json(layout.report_file("data_quality.json"), {})
    figure_captions = read_json(layout.report_file("captions.json"), {})
    shown = [(layout.report_file(n), figure_captions[n]) for n in figure_names(KINDS) if n in figure_captions]
    columns = ["source_file", "source_line", "rules", "case_number", "incident_datetime", "parent_incident_type",
               "incident_description", "latitude", "longitude"]
    examples = pd.concat([read_parquet(layout.quarantine_table(f["partition_key"])).reindex(columns=columns).head(15)
                          for f in quality["files"]], ignore_index=True).head(15)
    examples["incident_description"] = examples["incident_description"].astype("string").str.slice(0, 120)
    html = render_report(quality, read_json(layout.lake_file("leakage_check.json"), {}),
                         read_json(layout.report_file("evaluation.json"), {}), shown, examples,
                         time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                         seed=read_json(layout.report_file("seed_reproduction.json"), {}))
    write_text(layout.report_file("report.html"), html)


def run(root: Path) -> dict:
    """Every step in the order `crime-pipeline run` executed them (its run's step order); seconds per step."""
    layout = LakeLayout(root).ensure()
    seconds: dict[str, float] = {}

    def step(name: str, fn, *args):
        started = time.perf_counter()
        out = fn(*args)
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started
        return out

    new, _ = scan_incoming(layout, key_of=lambda path: partition_key_for(sha256_file(path)))
    for item in new:
        step("raw_incidents", ingest, layout, item.path, item.key)
        step("validate_file", validate, layout, item.key)
    step("incidents", merge, layout)
    step("incident_features", features, layout)
    step("seed_reproduction", seed_reproduction, layout)
    step("dataset_splits", splits, layout)
    for kind in ("baseline", "gbdt", "mlp", "mlp_weighted"):
        step(f"{kind}_model", train, layout, kind)
    doc = step("model_evaluation", evaluation, layout)
    step("figures", figures, layout)
    step("crime_report", report, layout)
    rows = sum(e["rows_read"] for e in ingested(layout).values())
    return {"seconds": seconds, "rows_read": rows,
            "accuracy": {k: m["accuracy"] for k, m in doc["models"].items()},
            "log_loss": {k: m["log_loss"] for k, m in doc["models"].items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lake", type=Path)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--launched-at", type=float, help="time.time() when the parent started this process")
    args = parser.parse_args()
    started = time.perf_counter()
    result = run(args.lake)
    result["run_s"] = time.perf_counter() - started
    launched = args.launched_at or STARTED
    result["import_s"] = IMPORTED - launched
    result["wall_s"] = time.time() - launched
    write_json(args.json, result)


if __name__ == "__main__":
    main()
