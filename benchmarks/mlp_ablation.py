"""MLP ablation: the seed's recipe, then each addition in turn, against the Bayes limit.

Run: python benchmarks/mlp_ablation.py [--quick] [--sizes 20000 322000] [--seed 7] [--only WORD ...] [--no-baselines]

For each size it generates the built-in data (same seed as `crime-pipeline generate`), validates,
de-duplicates, builds features and the temporal split exactly as the pipeline does, then trains one
MLP per row of VARIANTS (each row adds one thing to the row above) and, for reference, logistic
regression and gradient boosting. Prints accuracy, macro-F1, log loss, gap to the Bayes limit in
nats and training seconds (wall and CPU; the MLP trains on one CPU thread, see MLPSettings.cpu_threads).
ALTERNATIVES are variations of the last cumulative row (the pipeline default: MLPSettings in
lib/models/mlp/settings.py and MLPConfig in defs/models.py). --quick: 20,000 rows only; --only trains
only the MLP rows whose name contains one of the given words (e.g. --only "target encoding").
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, log_loss

from crime_pipeline.lib import synthetic
from crime_pipeline.lib.features.splits import fit_minmax, temporal_split
from crime_pipeline.lib.features.table import MODEL_FEATURES, build_feature_table
from crime_pipeline.lib.ingest.raw_csv import read_raw_csv
from crime_pipeline.lib.models.artifacts import predict_proba
from crime_pipeline.lib.models.mlp.settings import MLPSettings
from crime_pipeline.lib.models.mlp.train import train_mlp
from crime_pipeline.lib.models.training import matrices, train_gbdt, train_logistic_regression
from crime_pipeline.lib.validate.supersede import supersede
from crime_pipeline.lib.validate.validate import validate_incidents

SEED_STYLE = MLPSettings(
    epochs=15,
    learning_rate=1e-3,
    patience=3,
    one_hot_time=False,
    fourier=0,
    cell_scales=(),
    schedule="constant",
    temperature_scaling=False,
    spread_scales=(),
    target_scales=(),
    target_offset=False,
    spread_shifts=1,
    point_cells=False,
    recount_with_validation=False,
)
TARGET_ENCODING = {"spread_scales": (0.04, 0.02, 0.01, 0.005, 0.0025), "target_scales": (0.001,)}
VARIANTS: list[tuple[str, dict]] = [  # cumulative: each adds one thing to the row above
    ("seed-style (MinMax features, 15 epochs, lr 1e-3)", {}),
    ("+ one-hot hour / weekday / month", {"one_hot_time": True}),
    ("+ Fourier features of coordinates", {"fourier": 6}),
    ("+ grid-cell embeddings 0.02/0.005/0.001 deg", {"cell_scales": (0.02, 0.005, 0.001)}),
    (
        "+ one-cycle lr 3e-3, 40 epochs, patience 6",
        {"schedule": "onecycle", "learning_rate": 3e-3, "epochs": 40, "patience": 6},
    ),
    ("+ temperature scaling", {"temperature_scaling": True}),
    ("+ out-of-fold target encoding (spread 0.04-0.0025, cell 0.001)", TARGET_ENCODING),
    ("+ its log-probabilities as the logits' offset", {"target_offset": True}),
    (
        "- embeddings, - Fourier, one-cycle lr 1e-3 over 20 epochs",
        {"cell_scales": (), "fourier": 0, "epochs": 20, "learning_rate": 1e-3},
    ),
    ("+ point cells smoothed apart at 0.001 deg", {"point_cells": True}),
    ("+ spread levels on 4 shifted grids", {"spread_shifts": 4}),
    ("+ validation rows recounted after selection (= pipeline default)", {"recount_with_validation": True}),
]
ALTERNATIVES: list[tuple[str, dict]] = [  # each on top of the last cumulative row, not of each other
    (
        "  target encoding of all rows at 0.02/0.005/0.001 (no spread levels)",
        {"spread_scales": (), "target_scales": (0.02, 0.005, 0.001)},
    ),
    ("  no offset", {"target_offset": False}),
    ("  3 members, probabilities averaged", {"members": 3}),
]
WEIGHTED = ("last cumulative row, class-balanced decisions (mlp_weighted)", {"prior_correction": True})


def prepare(rows: int, seed: int):
    """The pipeline's data path without Dagster: CSV -> validation -> newest record -> features -> split."""
    data = synthetic.generate_incidents(rows, seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = synthetic.write_export_csv(data, Path(tmp) / "generated.csv")
        raw = read_raw_csv(path).rows
    valid = validate_incidents(raw).valid.assign(ingest_seq=0)
    kept, _ = supersede(valid)
    table = build_feature_table(kept)
    table["split"] = temporal_split(table, 0.15, 0.15).to_numpy()
    scaler = fit_minmax(table[table["split"] == "train"], MODEL_FEATURES)
    parts = {p: matrices(table, scaler, p) for p in ("train", "validation", "test")}
    test_rows = table[table["split"] == "test"]
    bayes = synthetic.posterior(test_rows["latitude"], test_rows["longitude"], test_rows["incident_datetime"])
    return parts, scaler, bayes


def scores(y: np.ndarray, proba: np.ndarray, bayes_loss: float) -> dict:
    loss = log_loss(y, np.clip(proba, 1e-12, 1), labels=range(proba.shape[1]))
    recall = [((proba.argmax(1) == k) & (y == k)).sum() / max((y == k).sum(), 1) for k in np.unique(y)]
    return {
        "accuracy": accuracy_score(y, proba.argmax(1)),
        "macro_f1": f1_score(y, proba.argmax(1), average="macro"),
        "balanced_acc": float(np.mean(recall)),
        "log_loss": loss,
        "gap": loss - bayes_loss,
    }


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _settings(base: MLPSettings, change: dict) -> MLPSettings:
    merged = {**base.to_dict(), **change}
    return MLPSettings(
        **{
            **merged,
            "cell_scales": tuple(merged["cell_scales"]),
            "target_scales": tuple(merged["target_scales"]),
            "spread_scales": tuple(merged["spread_scales"]),
        }
    )


def run_size(rows: int, seed: int, only: list[str] | None = None, baselines: bool = True) -> list[tuple[str, dict]]:
    parts, scaler, bayes = prepare(rows, seed)
    train, val, test = parts["train"], parts["validation"], parts["test"]
    bayes_loss = log_loss(test.y, bayes, labels=range(9))
    out = [("Bayes limit (true posterior)", {**scores(test.y, bayes, bayes_loss), "seconds": 0.0, "cpu": 0.0})]
    for name, train_fn, kind in (
        ("logistic regression", lambda: train_logistic_regression(train, False), "baseline"),
        ("gradient boosting", lambda: train_gbdt(train, False), "gbdt"),
    )[: 2 if baselines else 0]:
        model, wall, cpu = timed(train_fn)
        out.append(
            (name, {**scores(test.y, predict_proba(kind, model, test.x, 9), bayes_loss), "seconds": wall, "cpu": cpu})
        )
    settings = SEED_STYLE
    runs = []
    for name, change in VARIANTS:
        settings = _settings(settings, change)
        runs.append((name, settings))
    runs += [(name, _settings(settings, change)) for name, change in ALTERNATIVES + [WEIGHTED]]
    for name, settings in runs:
        if only and not any(word in name for word in only):
            continue
        (model, _), wall, cpu = timed(
            lambda: train_mlp(
                train.x,
                train.y,
                val.x,
                val.y,
                9,
                settings,
                "cpu",
                log=lambda m: None,
                features=list(MODEL_FEATURES),
                scaler=scaler,
            )
        )
        out.append(
            (name, {**scores(test.y, predict_proba("mlp", model, test.x, 9), bayes_loss), "seconds": wall, "cpu": cpu})
        )
        print(f"  [{rows:,}] {name}: log loss {out[-1][1]['log_loss']:.4f} ({wall:.0f} s)", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 rows only")
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, synthetic.DEFAULT_ROWS])
    parser.add_argument("--seed", type=int, default=synthetic.DEFAULT_SEED)
    parser.add_argument("--only", nargs="+", help="train only the MLP rows whose name contains one of these words")
    parser.add_argument("--no-baselines", action="store_true", help="skip logistic regression and gradient boosting")
    args = parser.parse_args()
    sizes = [20_000] if args.quick else args.sizes
    tables = []
    for rows in sizes:
        result = run_size(rows, args.seed, args.only, not args.no_baselines)
        lines = [
            f"\n{rows:,} generated rows (seed {args.seed}, temporal split), generator {synthetic.GENERATOR_VERSION}",
            "| variant | accuracy | balanced acc | macro-F1 | log loss | gap to Bayes | train s | CPU s |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, m in result:
            lines.append(
                f"| {name} | {m['accuracy']:.4f} | {m['balanced_acc']:.4f} | {m['macro_f1']:.4f} | "
                f"{m['log_loss']:.4f} | {m['gap']:+.4f} | {m['seconds']:.1f} | {m['cpu']:.1f} |"
            )
        tables.append("\n".join(lines))
        print(tables[-1], flush=True)


if __name__ == "__main__":
    main()
