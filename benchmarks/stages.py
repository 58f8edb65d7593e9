"""Wall time and peak resident memory of each pipeline stage, each in a fresh process.

    python -m benchmarks.stages --rows 1000000 [--files 12] [--workdir DIR]

Generates the data into a fresh lake under the work folder, then runs each stage in its own
subprocess (in-process `dg.materialize` against a persistent DAGSTER_HOME there, as
`crime-pipeline run` does), so a stage's peak RSS is its own: the kernel's maximum resident set
of that process (`os.wait4`), imports included. `run_stages` is what `python -m benchmarks` imports.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS = ("baseline_model", "gbdt_model", "mlp_model", "mlp_weighted_model")
# Stage name -> the assets it materializes (generate and ingest are special: see _run_stage).
STAGES: dict[str, list[str]] = {
    "generate": [],
    "ingest+validate": [],
    "incidents": ["incidents"],
    "features": ["incident_features"],
    "splits": ["dataset_splits"],
    **{m: [m] for m in MODELS},
    "evaluation+figures+report": ["model_evaluation", "figures", "seed_reproduction", "crime_report"],
}


def _run_stage(stage: str, rows: int, files: int, seed: int) -> None:
    """Inside the worker process: run one stage against CRIME_PIPELINE_LAKE / DAGSTER_HOME."""
    if stage == "generate":
        from crime_pipeline.cli import main

        if main(["generate", "--rows", str(rows), "--files", str(files), "--seed", str(seed)]) != 0:
            raise SystemExit("generate failed")
        return
    import dagster as dg

    from crime_pipeline.definitions import build_definitions
    from crime_pipeline.orchestrate import failure_messages, run_pipeline
    from crime_pipeline.runs import QUIET_LOGS

    defs = build_definitions(os.environ["CRIME_PIPELINE_LAKE"])
    instance = dg.DagsterInstance.get()
    if stage == "ingest+validate":
        if run_pipeline(defs, instance, downstream=[], echo=lambda line: None) != 0:
            raise SystemExit("ingestion failed")
        return
    result = dg.materialize(
        [*defs.assets, *(defs.asset_checks or [])],
        selection=STAGES[stage],
        instance=instance,
        resources=defs.resources,
        raise_on_error=False,
        run_config=QUIET_LOGS,
    )
    if not result.success:
        raise SystemExit(f"{stage} failed: {failure_messages(result)}")


def _rows_after(stage: str, lake: Path, rows: int) -> int:
    """Rows the stage produced: generated rows for the first two, training rows used for a model."""
    import pyarrow.parquet as pq

    from crime_pipeline.lib.lake.layout import LakeLayout

    if stage in MODELS:  # the training rows it used (a stratified sample above the cap)
        meta = json.loads((LakeLayout(lake).model_candidates / f"{stage.removesuffix('_model')}.json").read_text())
        return meta.get("sampling", {}).get("train_rows_used", rows)
    table = {"incidents": "incidents", "features": "incident_features", "splits": "dataset_splits"}.get(stage)
    path = LakeLayout(lake).table(table) if table else None
    if path and path.exists():
        return pq.ParquetFile(path).metadata.num_rows
    return rows


PEAK_MARKER = "benchmarks.stages peak KiB: "


def _own_peak_kib() -> int:
    """This process's peak resident set in KiB: VmHWM (its own address space since exec), else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_stages(
    workdir: Path, rows: int, files: int = 1, seed: int = 7, stages: list[str] | None = None, echo=print
) -> list[dict]:
    """Generate `rows` incidents (`files` = 1 or 12) into a fresh lake under `workdir`, run each stage
    in a fresh subprocess; one {"stage", "rows", "wall_s", "peak_rss_mb"} per stage, in order.
    A failing stage raises RuntimeError with its output's tail."""
    workdir = Path(workdir)
    lake, home = workdir / "lake", workdir / "dagster_home"
    stages = stages or list(STAGES)
    for path in (lake, home):
        if "generate" in stages:  # a fresh lake; without it, the stages run on what is there
            shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "CRIME_PIPELINE_LAKE": str(lake),
        "DAGSTER_HOME": str(home),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    results = []
    for stage in stages:
        with tempfile.TemporaryFile() as log:
            started = time.perf_counter()
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.stages",
                    "--worker",
                    stage,
                    "--rows",
                    str(rows),
                    "--files",
                    str(files),
                    "--seed",
                    str(seed),
                ],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            wall = time.perf_counter() - started
            log.seek(0)
            output = log.read().decode(errors="replace")
            if proc.returncode != 0:
                raise RuntimeError(f"stage {stage} failed (exit {proc.returncode}):\n{output[-3000:]}")
        # The worker's own high-water mark (VmHWM). Not ru_maxrss: on Linux a child's counts what
        # its parent held when it was forked, so under a big parent every stage read the same.
        reported = [line[len(PEAK_MARKER) :] for line in output.splitlines() if line.startswith(PEAK_MARKER)]
        peak_kib = int(reported[-1]) if reported and reported[-1].isdigit() else usage.ru_maxrss
        row = {
            "stage": stage,
            "rows": _rows_after(stage, lake, rows),
            "wall_s": round(wall, 1),
            "peak_rss_mb": round(peak_kib / 1024),
        }
        results.append(row)
        echo(f"{stage:<28}{row['rows']:>12,}{row['wall_s']:>10.1f}{row['peak_rss_mb']:>10,}")
    return results


def print_table(results: list[dict]) -> None:
    print("| stage | rows | wall s | peak RSS MB |\n|---|---:|---:|---:|")
    for r in results:
        print(f"| {r['stage']} | {r['rows']:,} | {r['wall_s']:.1f} | {r['peak_rss_mb']:,} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.stages", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=322_000)
    parser.add_argument("--files", type=int, choices=[1, 12], default=1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", help="where the lake and instance go (default: a temporary folder, removed)")
    parser.add_argument("--stages", nargs="+", choices=list(STAGES), help="only these (in pipeline order)")
    parser.add_argument("--worker", choices=list(STAGES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _run_stage(args.worker, args.rows, args.files, args.seed)
        print(f"{PEAK_MARKER}{_own_peak_kib()}", flush=True)
        return 0
    print(f"{args.rows:,} rows in {args.files} file(s), seed {args.seed}")
    print(f"{'stage':<28}{'rows':>12}{'wall s':>10}{'peak MB':>10}")
    if args.workdir:
        results = run_stages(Path(args.workdir), args.rows, args.files, args.seed, args.stages)
    else:
        with tempfile.TemporaryDirectory(prefix="stages-") as tmp:
            results = run_stages(Path(tmp), args.rows, args.files, args.seed, args.stages)
    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
