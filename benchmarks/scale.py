"""How wall time and peak memory grow with the data: every stage at 1, 3 and 10 million rows.

    python -m benchmarks.scale [--sizes 1000000 3000000 10000000] [--files 1 12] [--workdir DIR]
    python -m benchmarks.scale --sampling-cost LAKE --sample-rows N   # all training rows vs a stratified sample

Each stage runs in a fresh process (benchmarks/stages.py), so its peak RSS is its own. Results are
merged into benchmarks/results/scale.json (one entry per size and file count, replaced when rerun),
so sizes can be run one at a time. Use `nice`: the 10-million-row run takes an hour or more.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.stages import REPO, run_stages

RESULTS = REPO / "benchmarks" / "results" / "scale.json"


def _save(key: str, value) -> None:
    from crime_pipeline.lib.lake.atomic import write_json

    doc = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    doc[key] = value
    write_json(RESULTS, doc)


def growth_table(doc: dict) -> str:
    """One row per stage, one column pair (wall s, peak MB) per run."""
    runs = [(k, v) for k, v in doc.items() if k.startswith("rows=")]
    if not runs:
        return ""
    head = "| stage | " + " | ".join(f"{k.removeprefix('rows=')} wall s | peak MB" for k, _ in runs) + " |"
    lines = [head, "|---|" + "---:|---:|" * len(runs)]
    stages = list(dict.fromkeys(r["stage"] for _, v in runs for r in v["stages"]))
    for stage in stages:
        cells = []
        for _, v in runs:
            row = next((r for r in v["stages"] if r["stage"] == stage), None)
            cells += [f"{row['wall_s']:.1f}", f"{row['peak_rss_mb']:,}"] if row else ["", ""]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sampling_cost(lake_root: Path, train_rows: int, kinds=("baseline", "gbdt", "mlp")) -> dict:
    """Test accuracy and log loss of each model trained on every training row of a built lake, and on
    a stratified sample of `train_rows` of them (what `max_train_rows` does), same validation and test."""
    from sklearn.metrics import accuracy_score, log_loss

    from crime_pipeline.lib.lake.layout import LakeLayout
    from crime_pipeline.lib.lake.parquet import read_parquet
    from crime_pipeline.lib.models.artifacts import predict_proba
    from crime_pipeline.lib.models.mlp.settings import MLPSettings
    from crime_pipeline.lib.models.mlp.train import train_mlp
    from crime_pipeline.lib.models.training import (
        Matrices,
        matrices,
        stratified_sample,
        train_gbdt,
        train_logistic_regression,
    )

    layout = LakeLayout(lake_root)
    info = json.loads(layout.lake_file("dataset_splits.json").read_text())
    splits = read_parquet(layout.table("dataset_splits"), columns=[*info["scaler"], "label_id", "split"])
    train, val, test = (matrices(splits, info["scaler"], part) for part in ("train", "validation", "test"))
    pick = stratified_sample(train.y, train_rows)
    sample = Matrices(train.x[pick], train.y[pick])
    n = len(info["classes"])
    out = {"train_rows": len(train.y), "sample_rows": len(pick), "test_rows": len(test.y), "models": {}}
    for kind in kinds:
        for name, data in (("full", train), ("sample", sample)):
            started = time.perf_counter()
            if kind == "mlp":
                model, _ = train_mlp(
                    data.x,
                    data.y,
                    val.x,
                    val.y,
                    n,
                    MLPSettings(),
                    "cpu",
                    log=lambda m: None,
                    features=info["features"],
                    scaler=info["scaler"],
                )
            else:
                model = (train_logistic_regression if kind == "baseline" else train_gbdt)(data, False)
            proba = predict_proba(kind, model, test.x, n)
            out["models"].setdefault(kind, {})[name] = {
                "accuracy": round(float(accuracy_score(test.y, proba.argmax(1))), 4),
                "log_loss": round(float(log_loss(test.y, np.clip(proba, 1e-12, 1), labels=range(n))), 4),
                "train_s": round(time.perf_counter() - started, 1),
            }
            print(kind, name, out["models"][kind][name], flush=True)
            _save("sampling_cost", out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scale", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 3_000_000, 10_000_000])
    parser.add_argument("--files", type=int, nargs="+", choices=[1, 12], default=[1])
    parser.add_argument("--workdir", default=None, help="lakes go here (default: a temporary folder, removed)")
    parser.add_argument(
        "--sampling-cost", metavar="LAKE", help="a built lake: every training row vs a stratified sample"
    )
    parser.add_argument("--sample-rows", type=int, default=1_000_000, help="the sample's size for --sampling-cost")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
        root = Path(args.workdir or tmp)
        if args.sampling_cost:
            print(json.dumps(sampling_cost(Path(args.sampling_cost), args.sample_rows), indent=2))
            return 0
        for files in args.files:
            for rows in args.sizes:
                print(f"\n{rows:,} rows in {files} file(s)")
                started = time.perf_counter()
                stages = run_stages(root / f"{rows}_{files}", rows, files)
                _save(
                    f"rows={rows:,} files={files}",
                    {
                        "rows": rows,
                        "files": files,
                        "stages": stages,
                        "total_s": round(time.perf_counter() - started, 1),
                    },
                )
    print(growth_table(json.loads(RESULTS.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
