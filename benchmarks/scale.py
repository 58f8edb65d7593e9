"""How wall time and peak memory grow with the data: every stage at 1, 3 and 10 million rows.

    python -m benchmarks.scale [--sizes 1000000 3000000 10000000] [--files 1 12] [--workdir DIR]
    python -m benchmarks.scale --sampling-cost 3000000     # full training set vs the stratified sample
    python -m benchmarks.scale --ingest-ratio              # ingestion + validation vs pyarrow.csv.read_csv

Each stage runs in a fresh process (benchmarks/stages.py), so its peak RSS is its own. Results are
merged into benchmarks/results/scale.json (one entry per size and file count, replaced when rerun),
so sizes can be run one at a time. Use `nice`: the 10-million-row run takes an hour or more.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def sampling_cost(workdir: Path, rows: int) -> dict:
    """Test metrics of every model trained on the stratified sample (the default), then of the
    logistic regression, gradient boosting and MLP retrained on every training row, same lake."""
    workdir.mkdir(parents=True, exist_ok=True)
    if not (workdir / "lake" / "reports" / "evaluation.json").exists():
        run_stages(workdir, rows)
    sampled = json.loads((workdir / "lake" / "reports" / "evaluation.json").read_text())
    env = {**os.environ, "CRIME_PIPELINE_LAKE": str(workdir / "lake"), "DAGSTER_HOME": str(workdir / "dagster_home"),
           "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "benchmarks.scale", "--retrain-full"], cwd=REPO, env=env, check=True)
    full = json.loads((workdir / "lake" / "reports" / "evaluation.json").read_text())
    keep = ("accuracy", "macro_f1", "log_loss")
    out = {"rows": rows, "retrain_full_s": round(time.perf_counter() - started, 1), "models": {}}
    for kind in ("baseline", "gbdt", "mlp"):
        out["models"][kind] = {"sample": {k: sampled["models"][kind].get(k) for k in keep},
                               "full": {k: full["models"][kind].get(k) for k in keep}}
    if sampled.get("bayes"):
        out["bayes"] = {k: sampled["bayes"].get(k) for k in keep}
    return out


def _retrain_full() -> None:
    """Worker: retrain three models on every training row, then evaluate (same lake and instance)."""
    import dagster as dg

    from crime_pipeline.definitions import build_definitions
    from crime_pipeline.orchestrate import QUIET_LOGS

    defs = build_definitions(os.environ["CRIME_PIPELINE_LAKE"])
    ops = {"baseline_model": {}, "gbdt_model": {}, "mlp_model": {}}
    config = {**QUIET_LOGS, "ops": {k: {"config": {"max_train_rows": 0}} for k in ops}}
    result = dg.materialize([*defs.assets, *(defs.asset_checks or [])], instance=dg.DagsterInstance.get(),
                            selection=[*ops, "model_evaluation"], resources=defs.resources, run_config=config)
    assert result.success


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
    parser.add_argument("--sampling-cost", type=int, metavar="ROWS", help="compare full training with the sample")
    parser.add_argument("--ingest-ratio", action="store_true", help="ingestion + validation vs the pyarrow parse")
    parser.add_argument("--retrain-full", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.retrain_full:
        _retrain_full()
        return 0
    if args.ingest_ratio:
        result = ingest_ratio()
        print(json.dumps(result, indent=2))
        _save("ingest_ratio", result)
        return 0
    with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
        root = Path(args.workdir or tmp)
        if args.sampling_cost:
            result = sampling_cost(root / f"sampling_{args.sampling_cost}", args.sampling_cost)
            print(json.dumps(result, indent=2))
            _save("sampling_cost", result)
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
