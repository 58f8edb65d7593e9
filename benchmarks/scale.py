"""How wall time and peak memory grow with the data: every stage at 1, 3 and 10 million rows.

    python -m benchmarks.scale [--sizes 1000000 3000000 10000000] [--files 1 12] [--workdir DIR]
    python -m benchmarks.scale --sampling-cost LAKE --sample-rows N   # all training rows vs a stratified sample
    python -m benchmarks.scale --ingest-ratio              # ingestion + validation vs pyarrow.csv.read_csv

Each stage runs in a fresh process (benchmarks/stages.py), so its peak RSS is its own. Results are
merged into benchmarks/results/scale.json (one entry per size and file count, replaced when rerun),
so sizes can be run one at a time. Use `nice`: the 10-million-row run takes an hour or more.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.stages import REPO, run_stages

RESULTS = REPO / "benchmarks" / "results" / "scale.json"


def _save(key: str, value) -> None:
    from crime_pipeline.lib.atomic import write_json

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

    from crime_pipeline.lib.artifacts import predict_proba
    from crime_pipeline.lib.atomic import read_parquet
    from crime_pipeline.lib.lake import LakeLayout
    from crime_pipeline.lib.mlp import MLPSettings, train_mlp
    from crime_pipeline.lib.training import Matrices, matrices, stratified_sample, train_gbdt, train_logistic_regression

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
                model, _ = train_mlp(data.x, data.y, val.x, val.y, n, MLPSettings(), "cpu", log=lambda m: None,
                                     features=info["features"], scaler=info["scaler"])
            else:
                model = (train_logistic_regression if kind == "baseline" else train_gbdt)(data, False)
            proba = predict_proba(kind, model, test.x, n)
            out["models"].setdefault(kind, {})[name] = {
                "accuracy": round(float(accuracy_score(test.y, proba.argmax(1))), 4),
                "log_loss": round(float(log_loss(test.y, np.clip(proba, 1e-12, 1), labels=range(n))), 4),
                "train_s": round(time.perf_counter() - started, 1)}
            print(kind, name, out["models"][kind][name], flush=True)
            _save("sampling_cost", out)
    return out


def _old_reading():
    """The reader before streaming (commit f5de5a7), loaded from git: the 'before' of the ratio."""
    source = subprocess.run(["git", "show", "f5de5a7:crime_pipeline/lib/reading.py"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout
    spec = importlib.util.spec_from_loader("old_reading", loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_reading"] = module  # dataclasses look their module up here
    exec(compile(source, "old_reading.py", "exec"), module.__dict__)
    return module


def ingest_ratio(rows: int = 322_000, repeats: int = 3) -> dict:
    """Ingestion + validation of one generated file (reading, the independent count, raw table,
    validation, both output tables) against `pyarrow.csv.read_csv` of the same file, same process;
    the streaming code and the whole-file code it replaced. Best of `repeats` for each."""
    import pyarrow.csv as pacsv

    from crime_pipeline import synthetic
    from crime_pipeline.defs.ingestion import write_raw_table
    from crime_pipeline.lib.atomic import iter_parquet, parquet_batch_writer, read_parquet, write_parquet
    from crime_pipeline.lib.quality import count_csv_records
    from crime_pipeline.lib.reading import stream_raw_csv
    from crime_pipeline.lib.validation import validate_incidents

    old = _old_reading()
    as_of = "2026-01-01"
    with tempfile.TemporaryDirectory(prefix="ingest-ratio-") as tmp:
        path = Path(tmp) / "export.csv"
        synthetic.write_export_files([path], rows)

        def pyarrow_parse():
            pacsv.read_csv(path)

        def streaming():
            stream_raw_csv(path, lambda raw: write_raw_table(raw, Path(tmp) / "raw.parquet", path.name, "0" * 64))
            count_csv_records(path)
            with parquet_batch_writer(Path(tmp) / "v.parquet") as valid, parquet_batch_writer(Path(tmp) / "q.parquet") as bad:
                for batch in iter_parquet(Path(tmp) / "raw.parquet"):
                    result = validate_incidents(batch.to_pandas(), as_of=as_of)
                    valid.write(result.valid)
                    bad.write(result.quarantine)

        def whole_file():
            data = path.read_bytes()
            rows_ = old.read_raw_csv(path, data).rows
            rows_.insert(0, "source_file", path.name)
            write_parquet(Path(tmp) / "raw0.parquet", rows_)
            count_csv_records(data)
            result = validate_incidents(read_parquet(Path(tmp) / "raw0.parquet"), as_of=as_of)
            write_parquet(Path(tmp) / "v0.parquet", result.valid)
            write_parquet(Path(tmp) / "q0.parquet", result.quarantine)

        best = {}
        for _ in range(repeats):
            for name, fn in (("pyarrow_read_csv_s", pyarrow_parse), ("streaming_s", streaming), ("whole_file_s", whole_file)):
                started = time.perf_counter()
                fn()
                best[name] = min(best.get(name, float("inf")), time.perf_counter() - started)
    base = best["pyarrow_read_csv_s"]
    return {"rows": rows, **{k: round(v, 2) for k, v in best.items()},
            "ratio_streaming": round(best["streaming_s"] / base, 2), "ratio_whole_file": round(best["whole_file_s"] / base, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 3_000_000, 10_000_000])
    parser.add_argument("--files", type=int, nargs="+", choices=[1, 12], default=[1])
    parser.add_argument("--workdir", default=None, help="lakes go here (default: a temporary folder, removed)")
    parser.add_argument("--sampling-cost", metavar="LAKE", help="a built lake: every training row vs a stratified sample")
    parser.add_argument("--sample-rows", type=int, default=1_000_000, help="the sample's size for --sampling-cost")
    parser.add_argument("--ingest-ratio", action="store_true", help="ingestion + validation vs the pyarrow parse")
    args = parser.parse_args(argv)
    if args.ingest_ratio:
        result = ingest_ratio()
        print(json.dumps(result, indent=2))
        _save("ingest_ratio", result)
        return 0
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
                _save(f"rows={rows:,} files={files}", {"rows": rows, "files": files, "stages": stages,
                                                         "total_s": round(time.perf_counter() - started, 1)})
    print(growth_table(json.loads(RESULTS.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
