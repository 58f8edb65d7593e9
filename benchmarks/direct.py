"""The whole graph without Dagster: the lib stage functions the assets call, in the same order, in one process.

    python -m benchmarks.direct LAKE_ROOT --json OUT.json [--launched-at EPOCH_SECONDS]

LAKE_ROOT holds raw/incoming/*.csv (and raw/generated.json). Each step calls the very stage
function its asset calls (lib/<stage>/stages.py), with the settings' defaults, which are also the
assets' config defaults (those are derived from the same settings classes). What is left out is
what exists only for Dagster: materialization metadata, column lineage and data versions. Nothing
here imports dagster. Writes per-step seconds and the evaluation's accuracies (to compare with the
Dagster run's) to OUT.json.
"""

from __future__ import annotations

import argparse
import logging
import os
import time

STARTED = time.time()

from pathlib import Path  # noqa: E402

from crime_pipeline.lib.features.stages import SplitSettings, build_features, split_dataset  # noqa: E402
from crime_pipeline.lib.ingest.raw_csv import sha256_file  # noqa: E402
from crime_pipeline.lib.ingest.stages import ingest_file  # noqa: E402
from crime_pipeline.lib.lake.atomic import write_json  # noqa: E402
from crime_pipeline.lib.lake.catalog import DATASETS  # noqa: E402
from crime_pipeline.lib.lake.layout import LakeLayout, partition_key_for  # noqa: E402
from crime_pipeline.lib.lake.ledger import ingested, scan_incoming  # noqa: E402
from crime_pipeline.lib.lake.reads import DeclaredReads  # noqa: E402
from crime_pipeline.lib.models.mlp.settings import MLPSettings, select_device  # noqa: E402
from crime_pipeline.lib.models.settings import GBDTSettings, LogisticRegressionSettings, TrainingSample  # noqa: E402
from crime_pipeline.lib.models.stages import WEIGHTED_MLP_SETTINGS, fit_baseline, fit_gbdt, fit_mlp, weight_mlp  # noqa: E402
from crime_pipeline.lib.reports.model_gate import evaluate_and_publish  # noqa: E402
from crime_pipeline.lib.reports.seed_method import SeedSettings  # noqa: E402
from crime_pipeline.lib.reports.seed_reproduction import reproduce_seed  # noqa: E402
from crime_pipeline.lib.reports.stages import draw_report_figures, write_report  # noqa: E402
from crime_pipeline.lib.validate.stages import merge_incidents, validate_file  # noqa: E402

IMPORTED = time.time()

DEVICE = select_device(os.environ.get("CRIME_PIPELINE_DEVICE", "auto"))  # as the torch_device resource
LOG = logging.getLogger("benchmarks.direct")
# Every publisher in the catalog: the driver may read any declared lake file, never an undeclared one.
EVERY_ASSET = {asset for d in DATASETS for asset in d.publishers}


def run(root: Path) -> dict:
    """Every step in the order `crime-pipeline run` executed them (its run's step order); seconds per step."""
    layout = LakeLayout(root).ensure()
    seconds: dict[str, float] = {}

    def step(name: str, fn, *args):
        started = time.perf_counter()
        out = fn(DeclaredReads(layout, name, EVERY_ASSET), *args, log=LOG)
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started
        return out

    mlp_rows = TrainingSample().max_train_rows
    new, _ = scan_incoming(layout, key_of=lambda path: partition_key_for(sha256_file(path)))
    for item in new:
        step("raw_incidents", ingest_file, item.key, item.path.name)
        step("validate_file", validate_file, item.key)
    step("incidents", merge_incidents)
    step("incident_features", build_features)
    step("seed_reproduction", reproduce_seed, SeedSettings(), DEVICE)
    step("dataset_splits", split_dataset, SplitSettings())
    step("baseline_model", fit_baseline, LogisticRegressionSettings())
    step("gbdt_model", fit_gbdt, GBDTSettings())
    step("mlp_model", fit_mlp, MLPSettings(), mlp_rows, DEVICE)
    step("mlp_weighted_model", weight_mlp, WEIGHTED_MLP_SETTINGS, mlp_rows)
    evaluation = step("model_evaluation", evaluate_and_publish).doc
    step("figures", draw_report_figures)
    step("crime_report", write_report)
    rows = sum(e["rows_read"] for e in ingested(layout).values())
    return {
        "seconds": seconds,
        "rows_read": rows,
        "accuracy": {k: m["accuracy"] for k, m in evaluation["models"].items()},
        "log_loss": {k: m["log_loss"] for k, m in evaluation["models"].items()},
    }


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
