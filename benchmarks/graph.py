"""The Dagster side: `crime-pipeline run` on a fresh lake, then one new month dropped into it.

    python -m benchmarks.graph --month MONTH.csv --rebuild-root DIR --json OUT.json [--launched-at EPOCH_SECONDS]
                               [--refresh ASSET,...]

Run with CRIME_PIPELINE_LAKE (holding the default file in raw/incoming) and DAGSTER_HOME set.
In order, all in this process:
1. `crime-pipeline run` (the CLI's own entry point): the whole graph, timed from this process's launch;
2. MONTH.csv copied into raw/incoming, then `run_pipeline(downstream=[])`: what `crime-pipeline run`
   does for a new file (scan, one partition run of ingestion + validation), nothing below it;
3. `run_pipeline()`: the downstream refresh the new partition triggers (--refresh limits it, for --quick);
4. a full rebuild of ingestion + validation: every incoming file into a fresh lake and instance
   under DIR, `run_pipeline(downstream=[])`. Dagster's run records give each file's own run time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import time

STARTED = time.time()

from pathlib import Path  # noqa: E402

import dagster as dg  # noqa: E402

from crime_pipeline.cli import main as crime_pipeline  # noqa: E402
from crime_pipeline.definitions import build_definitions  # noqa: E402
from crime_pipeline.lib.ingest.raw_csv import sha256_file  # noqa: E402
from crime_pipeline.lib.lake.atomic import write_bytes, write_json  # noqa: E402
from crime_pipeline.lib.lake.layout import LakeLayout, partition_key_for  # noqa: E402
from crime_pipeline.lib.lake.ledger import ingested
from crime_pipeline.orchestrate import run_pipeline  # noqa: E402

IMPORTED = time.time()


def file_runs(instance: dg.DagsterInstance) -> dict[str, float]:
    """Seconds of each per-file run (partition key -> end - start), as Dagster recorded them."""
    out = {}
    for record in instance.get_run_records():
        key = record.dagster_run.tags.get("dagster/partition")
        if key and record.start_time and record.end_time:
            out[key] = record.end_time - record.start_time
    return out


def step_seconds(instance: dg.DagsterInstance) -> dict[str, float]:
    """Every step of every run in the instance, summed by step key."""
    out: dict[str, float] = {}
    for run in instance.get_runs():
        for stat in instance.get_run_step_stats(run.run_id):
            if stat.start_time and stat.end_time:
                out[stat.step_key] = out.get(stat.step_key, 0.0) + stat.end_time - stat.start_time
    return out


def timed_pipeline(defs, instance, downstream=None) -> tuple[float, list[str]]:
    lines: list[str] = []
    started = time.perf_counter()
    code = run_pipeline(defs, instance, echo=lines.append, downstream=downstream)
    seconds = time.perf_counter() - started
    if code != 0:
        raise SystemExit("crime-pipeline run failed:\n" + "\n".join(lines))
    return seconds, lines


def rebuilt_count(lines: list[str]) -> int:
    found = [int(m.group(1)) for line in lines if (m := re.match(r"rebuilding (\d+) downstream assets", line))]
    return found[0] if found else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--month", type=Path, required=True)
    parser.add_argument("--rebuild-root", type=Path, required=True)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--launched-at", type=float)
    parser.add_argument("--refresh", help="comma-separated assets the downstream refresh may rebuild (default: all)")
    args = parser.parse_args()
    launched = args.launched_at or STARTED
    out: dict = {"import_s": IMPORTED - launched}

    # 1. The whole graph, as a user runs it.
    started = time.perf_counter()
    if crime_pipeline(["run"]) != 0:
        raise SystemExit("crime-pipeline run failed")
    out["run_s"] = time.perf_counter() - started
    out["wall_s"] = time.time() - launched
    layout = LakeLayout(Path(os.environ["CRIME_PIPELINE_LAKE"]))
    instance = dg.DagsterInstance.get()
    out["steps_s"] = step_seconds(instance)
    evaluation = json.loads(layout.report_file("evaluation.json").read_text())
    out["evaluation"] = {
        "split": evaluation["split"],
        "n_test": evaluation["n_test"],
        "accuracy": {k: m["accuracy"] for k, m in evaluation["models"].items()},
        "log_loss": {k: m["log_loss"] for k, m in evaluation["models"].items()},
        "majority_accuracy": evaluation["baselines"]["majority"]["accuracy"],
        "bayes": {"accuracy": evaluation["bayes"]["accuracy"], "log_loss": evaluation["bayes"]["log_loss"]}
        if evaluation.get("bayes")
        else None,
    }
    out["rows_read"] = sum(e["rows_read"] for e in ingested(layout).values())

    # 2. One new month into the built lake: just its partition.
    defs = build_definitions(str(layout.root))
    write_bytes(layout.incoming / args.month.name, args.month.read_bytes())
    month_key = partition_key_for(sha256_file(args.month))
    out["new_partition_s"], _ = timed_pipeline(defs, instance, downstream=[])
    out["new_partition_run_s"] = file_runs(instance)[month_key]
    out["new_partition_rows"] = ingested(layout)[month_key]["rows_read"]

    # 3. What it triggers below.
    out["downstream_s"], lines = timed_pipeline(defs, instance, args.refresh.split(",") if args.refresh else None)
    out["downstream_assets"] = rebuilt_count(lines)

    # 4. Ingestion + validation of every file from scratch.
    fresh = LakeLayout(args.rebuild_root / "lake").ensure()
    for path in sorted(layout.incoming.glob("*.csv")):
        shutil.copy(path, fresh.incoming / path.name)
    shutil.copy(layout.generated_manifest, fresh.generated_manifest)
    home = args.rebuild_root / "home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml", home / "dagster.yaml")
    rebuild_instance = dg.DagsterInstance.from_config(str(home))
    out["full_rebuild_s"], _ = timed_pipeline(build_definitions(str(fresh.root)), rebuild_instance, downstream=[])
    runs = file_runs(rebuild_instance)
    out["full_rebuild_rows"] = sum(e["rows_read"] for e in ingested(fresh).values())
    out["full_rebuild_files"] = len(runs)
    out["file_run_s"] = {ingested(fresh)[k]["file"]: s for k, s in runs.items()}
    write_json(args.json, out)


if __name__ == "__main__":
    main()
