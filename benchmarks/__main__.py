"""One benchmark command: the pipeline against its limits, every figure from this run on this machine.

    python -m benchmarks [--quick] [--rows 322000] [--out benchmarks/results/latest.json] [--workdir DIR]
    python -m benchmarks --render results.json    # the table again from saved measurements (e.g. after a new section)

Generates the default file (`crime-pipeline generate`'s data), then, one heavy process at a time:
  - `benchmarks.graph`: `crime-pipeline run` on a fresh lake, one new month dropped into it
    (ingestion + validation of its partition, the downstream refresh), a full rebuild of ingestion
    + validation of every file;
  - `benchmarks.forecast`: the forecast group through Dagster on the lake `benchmarks.graph` built
    (counts, the test window's weekly partitions, this week's, the backtest), time per method;
  - `benchmarks.direct`: the same lib/ functions called directly, without Dagster, on the same file;
  - `benchmarks/seed_script.py`: the seed project's approach as a plain script;
  - `pyarrow.csv.read_csv` of the default file and the MLP throughput, in this process.
Prints one table (ratios with their targets and PASS / MISS) and writes it with the machine, the
git commit and the raw measurements to --out, atomically. --quick: 3,000 rows, 1 seed epoch, a
small throughput run, the refresh after the new month limited to `incidents`, in about a minute
(a CI test runs it so the command cannot rot); it writes
benchmarks/results/quick.json unless --out says otherwise. The numbers of --quick mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow.csv as pacsv

from benchmarks.forecast import TARGET_S as FORECAST_TARGET_S
from benchmarks.ingestion import ALONE, PARTS, measure_parts
from benchmarks.report import REPO, Section, git_state, machine, table
from benchmarks.stages import run_stages
from crime_pipeline.lib import synthetic
from crime_pipeline.lib.ingest.raw_csv import sha256_file
from crime_pipeline.lib.lake.atomic import write_json
from crime_pipeline.lib.lake.layout import LakeLayout
from crime_pipeline.lib.lake.ledger import record_generated

RESULTS = Path(__file__).resolve().parent / "results"
# --quick keeps every code path but refreshes only `incidents` after the new month: a third pass
# over the whole graph would double its time, and its numbers mean nothing anyway.
# --quick measures the memory of the first two stages only (each stage is a fresh process: imports cost).
QUICK = {
    "rows": 3_000,
    "parse_repeats": 1,
    "seed_epochs": 1,
    "mlp": {"rows": 10_000, "epochs": 1, "rounds": 1},
    "refresh": "incidents",
    "stages": ["generate", "ingest+validate"],
    "forecast_weeks": 1,
}
FULL = {
    "rows": synthetic.DEFAULT_ROWS,
    "parse_repeats": 3,
    "seed_epochs": 15,
    "mlp": {"rows": 200_000, "epochs": 3, "rounds": 3},
    "refresh": None,
    "stages": None,
    "forecast_weeks": 26,
}
MONTH_ROWS_PER_FILE_ROW = 1.3  # generate 1.3x the default file's rows: its busiest recent month holds about 2,000


def generate(layout: LakeLayout, rows: int, seed: int) -> Path:
    """The default file, as `crime-pipeline generate` writes and records it."""
    path = layout.incoming / f"buffalo_synthetic_{rows}_seed{seed}.csv"
    synthetic.write_export_csv(synthetic.generate_incidents(rows, seed), path)
    record_generated(
        layout,
        sha256_file(path),
        {"file": path.name, "rows": rows, "seed": seed, "generator_version": synthetic.GENERATOR_VERSION},
    )
    return path


def new_month(folder: Path, rows: int, seed: int) -> tuple[Path, str, int]:
    """One month of new incidents: the busiest month of the latest year of another generated export.

    Its rows are the generator's own (a slice, nothing rewritten), so the Bayes limit still holds.
    """
    data = synthetic.generate_incidents(max(int(rows * MONTH_ROWS_PER_FILE_ROW), 1_000), seed + 1)
    when = pd.to_datetime(data.frame["Incident Datetime"], format=synthetic.DATETIME_FORMAT, errors="coerce")
    plausible = when.dt.year <= synthetic.YEARS.max()  # not the dirt dated 2099
    month = when.dt.to_period("M")
    latest = month[plausible & (when.dt.year == when[plausible].dt.year.max())]
    busiest = latest.value_counts().idxmax()
    frame = data.frame[month == busiest].reset_index(drop=True)
    path = synthetic.write_export_csv(frame, folder / f"incidents_{busiest}.csv")
    return path, str(busiest), len(frame)


def child(command: list[str], env: dict, log: Path) -> float:
    """Run one measured process (output to `log`); its wall seconds. Stops the benchmark if it fails."""
    started = time.perf_counter()
    with open(log, "wb") as out:
        code = subprocess.run(command, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - started
    if code != 0:
        tail = log.read_text(errors="replace")[-4000:]
        raise SystemExit(f"{' '.join(command[1:4])} ... failed (exit {code}); the end of {log}:\n{tail}")
    return seconds


def parse_seconds(path: Path, repeats: int) -> float:
    """Median wall seconds of pyarrow.csv.read_csv of the whole file (after one warm-up read)."""
    pacsv.read_csv(path)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        pacsv.read_csv(path)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(work: Path, rows: int, seed: int, plan: dict, echo) -> dict:
    """Every measurement; raw numbers only (sections are built from them)."""
    from benchmarks import mlp_throughput

    dagster_lake, direct_lake = (
        LakeLayout(work / "dagster" / "lake").ensure(),
        LakeLayout(work / "direct" / "lake").ensure(),
    )
    home = work / "dagster" / "home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    started = time.perf_counter()
    default = generate(dagster_lake, rows, seed)
    shutil.copy(default, direct_lake.incoming / default.name)
    shutil.copy(dagster_lake.generated_manifest, direct_lake.generated_manifest)
    month, month_name, month_rows = new_month(work, rows, seed)
    record_generated(
        dagster_lake,
        sha256_file(month),
        {"file": month.name, "rows": month_rows, "seed": seed + 1, "generator_version": synthetic.GENERATOR_VERSION},
    )
    out: dict = {
        "generate_s": time.perf_counter() - started,
        "rows": rows,
        "file": default.name,
        "file_mb": default.stat().st_size / 1e6,
        "month": {"month": month_name, "rows": month_rows},
    }
    echo(f"generated {rows:,} rows and a month of {month_rows:,} ({out['generate_s']:.0f} s)")

    out["pyarrow_read_csv_s"] = parse_seconds(default, 3)
    echo("ingestion + validation part by part, and the floor ...")
    out["ingestion_parts"] = measure_parts(default, plan["parse_repeats"])
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_PG_URL", "CRIME_PIPELINE_FAULT")}
    env.update(CRIME_PIPELINE_LAKE=str(dagster_lake.root), DAGSTER_HOME=str(home), CRIME_PIPELINE_SENSORS="stopped")
    echo("the graph through Dagster: crime-pipeline run, a new month, a rebuild of ingestion ...")
    child(
        [
            sys.executable,
            "-m",
            "benchmarks.graph",
            "--month",
            str(month),
            "--rebuild-root",
            str(work / "rebuild"),
            "--json",
            str(work / "graph.json"),
            "--launched-at",
            str(time.time()),
            *(["--refresh", plan["refresh"]] if plan["refresh"] else []),
        ],
        env,
        work / "graph.log",
    )
    out["refresh_limited_to"] = plan["refresh"]
    out["graph"] = json.loads((work / "graph.json").read_text())
    echo("the forecast group on the built lake: counts, the test window's weeks, this week's, the backtest ...")
    child(
        [
            sys.executable,
            "-m",
            "benchmarks.forecast",
            str(dagster_lake.root),
            "--json",
            str(work / "forecast.json"),
            "--weeks",
            str(plan["forecast_weeks"]),
        ],
        env,
        work / "forecast.log",
    )
    out["forecast"] = json.loads((work / "forecast.json").read_text())
    echo("the same lib/ functions called directly ...")
    child(
        [
            sys.executable,
            "-m",
            "benchmarks.direct",
            str(direct_lake.root),
            "--json",
            str(work / "direct.json"),
            "--launched-at",
            str(time.time()),
        ],
        env,
        work / "direct.log",
    )
    out["direct"] = json.loads((work / "direct.json").read_text())
    echo("the seed's approach as a plain script ...")
    seed_wall = child(
        [
            sys.executable,
            str(REPO / "benchmarks" / "seed_script.py"),
            str(default),
            "--epochs",
            str(plan["seed_epochs"]),
            "--json",
            str(work / "seed.json"),
        ],
        env,
        work / "seed.log",
    )
    out["seed_script"] = {**json.loads((work / "seed.json").read_text()), "wall_s": seed_wall}
    echo("MLP throughput ...")
    out["mlp_throughput"] = mlp_throughput.measure(**plan["mlp"])
    echo("peak memory per stage, each stage in a fresh process ...")
    out["stages"] = run_stages(work / "stages", rows, seed=seed, stages=plan["stages"], echo=lambda line: None)
    return out


def sections(m: dict) -> list[Section]:
    """The table: one section per question the issue asks, each ratio with its target."""
    g, d, s, t = m["graph"], m["direct"], m["seed_script"], m["mlp_throughput"]
    default_run = g["file_run_s"][m["file"]]

    ingestion = Section("ingestion", "Ingestion + validation of the default file")
    ingestion.add("rows in the file", m["rows"], "rows")
    ingestion.add("pyarrow.csv.read_csv of the file alone (median of 3)", m["pyarrow_read_csv_s"], "s")
    ingestion.add("raw_incidents + validate_file, one partition run through Dagster", default_run, "s")
    ingestion.add(
        "the same two steps' lib functions, called directly",
        d["seconds"]["raw_incidents"] + d["seconds"]["validate_file"],
        "s",
    )
    ingestion.ratio("ingestion + validation / pyarrow parse", default_run / m["pyarrow_read_csv_s"], target=("<=", 3.0))
    if m.get("ingestion_parts"):  # results saved before this breakdown existed render without it
        parts = m["ingestion_parts"]
        seconds = parts["seconds"]
        ingestion.add(
            "the floor: pyarrow alone parses every value as text, writes the raw table, reads it back, "
            "writes the valid table, checks nothing",
            seconds["floor"],
            "s",
        )
        ingestion.ratio("floor / pyarrow parse (best of the same repeats)", parts["floor_to_pyarrow"])
        for name, what in PARTS.items():
            ingestion.add(f"ours, part by part: {what}", seconds[name], "s")
        for name, what in ALONE.items():
            ingestion.add(f"for information: {what}", seconds[name], "s")
        ingestion.ratio("ours, sum of the parts / floor", parts["ratio_to_floor"])

    seed = Section("seed", "The seed's approach as a plain script")
    seed.add(
        f"seed script: {s['epochs']} epochs, batch {s['batch_size']}, DataLoader, {s['torch_threads']} torch threads",
        s["wall_s"],
        "s",
    )
    seed.add(f"seed script test accuracy (random 80/20 split, {s['test']:,} rows)", s["accuracy"], "accuracy")
    seed.add("seed script test log loss", s["log_loss"], "nats")
    seed.add("our whole `crime-pipeline run` (ingestion to report, 4 models)", g["wall_s"], "s")
    seed.ratio("our run / seed script, wall", g["wall_s"] / s["wall_s"])
    ev = g["evaluation"]
    seed.add(f"our MLP test accuracy ({ev['split']} split, {ev['n_test']:,} rows)", ev["accuracy"]["mlp"], "accuracy")
    seed.add("our MLP test log loss", ev["log_loss"]["mlp"], "nats")
    seed.ratio("our MLP / seed script, accuracy", ev["accuracy"]["mlp"] / s["accuracy"])
    if ev.get("bayes"):
        seed.add("Bayes limit on our test rows, accuracy (the best possible)", ev["bayes"]["accuracy"], "accuracy")

    mlp = Section("mlp", "MLP training throughput")
    mlp.add(
        f"our train_epoch ({t['rows']:,} rows, batch {t['batch_size']}, {t['threads']} thread(s), {t['device']})",
        t["ours"],
        "samples/s",
    )
    mlp.add("bare torch loop, same network and tensors", t["bare"], "samples/s")
    mlp.ratio("ours / bare", t["ratio"], target=(">=", 0.8))

    dagster = Section("dagster", "Dagster's overhead over the whole graph")
    dagster.add("`crime-pipeline run` through Dagster, process launch to exit of the run", g["wall_s"], "s")
    dagster.add("the same lib functions called directly, process launch to end", d["wall_s"], "s")
    dagster.add("of which imports: Dagster side", g["import_s"], "s")
    dagster.add("of which imports: direct side", d["import_s"], "s")
    dagster.add(
        "time inside the steps, Dagster side (sum of Dagster's step durations)", sum(g["steps_s"].values()), "s"
    )
    dagster.add("time inside the same steps, direct side", sum(d["seconds"].values()), "s")
    parity = max(abs(ev["accuracy"][k] - d["accuracy"][k]) for k in d["accuracy"])
    dagster.add("same work: largest test-accuracy difference between the two", parity, "accuracy")
    dagster.ratio(
        "overhead: (Dagster - direct) / Dagster",
        (g["wall_s"] - d["wall_s"]) / g["wall_s"],
        "fraction",
        target=("<=", 0.25),
    )

    incremental = Section("incremental", "Incremental refresh: one new month into the built lake")
    incremental.add(f"new month {m['month']['month']}", g["new_partition_rows"], "rows")
    incremental.add(
        "ingestion + validation of its partition (`run_pipeline`, nothing downstream)", g["new_partition_s"], "s"
    )
    incremental.add(
        f"full rebuild of ingestion + validation ({g['full_rebuild_files']} files, "
        f"{g['full_rebuild_rows']:,} rows, fresh lake)",
        g["full_rebuild_s"],
        "s",
    )
    incremental.ratio(
        "new partition / full rebuild", g["new_partition_s"] / g["full_rebuild_s"], "fraction", target=("<=", 0.10)
    )
    incremental.add(
        "of which the partition's own run (Dagster's record, run start to end)", g["new_partition_run_s"], "s"
    )
    limited = f", limited to {m['refresh_limited_to']}" if m.get("refresh_limited_to") else ""
    incremental.add(
        f"downstream refresh it triggers ({g['downstream_assets']} assets{limited}), for information",
        g["downstream_s"],
        "s",
    )
    found = [ingestion, seed, mlp, dagster, incremental]
    if m.get("stages"):  # results saved before this section existed render without it
        memory = Section("memory", "Peak resident memory per stage, each stage in a fresh process")
        for r in m["stages"]:
            memory.add(f"{r['stage']} ({r['rows']:,} rows, {r['wall_s']:.0f} s)", r["peak_rss_mb"], "MB")
        found.append(memory)
    if m.get("forecast"):
        found.append(forecast_section(m["forecast"]))
    return found


def forecast_section(f: dict) -> Section:
    """The forecast group's wall time against its limit, each method's fit time, PAI at 1%."""
    section = Section("forecast", "Hotspot forecasts: the whole forecast group through Dagster")
    section.ratio(
        f"counts + {f['weeks']} test weeks + this week + backtest ({f['events']:,} events, {f['cells']:,} cells)",
        f["wall_s"],
        "s",
        target=("<=", FORECAST_TARGET_S),
    )
    section.add("of which the weekly partition runs, all methods", f["week_runs_s"], "s")
    for method, seconds in sorted(f["method_fit_s"].items()):
        section.add(f"{method}: fit + forecast, summed over the {f['weeks']} weeks", seconds, "s")
    for method, value in sorted(f["pai_1pct"].items()):
        section.add(f"{method}: mean PAI at 1% of the area", value, "x")
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small version for CI (its numbers mean nothing)")
    parser.add_argument("--rows", type=int, help="rows of the default file (default: 322,000; 3,000 with --quick)")
    parser.add_argument("--seed", type=int, default=synthetic.DEFAULT_SEED)
    parser.add_argument(
        "--out", type=Path, help="the JSON to write (default: benchmarks/results/latest.json, quick.json with --quick)"
    )
    parser.add_argument(
        "--workdir", type=Path, help="keep the lakes and logs here (default: a temporary folder, removed)"
    )
    parser.add_argument(
        "--render", type=Path, help="measure nothing: rebuild the table of a saved JSON from its measurements"
    )
    args = parser.parse_args(argv)
    if args.render:
        doc = json.loads(args.render.read_text())
        found = sections(doc["measurements"])
        write_json(args.out or args.render, {**doc, "sections": [s.to_dict() for s in found]})
        print(table(found))
        return 0
    plan = QUICK if args.quick else FULL
    rows = args.rows or plan["rows"]
    out = args.out or RESULTS / ("quick.json" if args.quick else "latest.json")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="crime_bench_"))
    work.mkdir(parents=True, exist_ok=True)

    import torch

    host, git = machine(torch.get_num_threads()), git_state()  # the code as it was when the run started
    started = time.perf_counter()
    echo = lambda message: print(f"[{time.perf_counter() - started:6.0f} s] {message}", flush=True)  # noqa: E731
    try:
        measured = measure(work, rows, args.seed, plan, echo)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    found = sections(measured)
    host["load_average_1m_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    doc = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m benchmarks" + (" --quick" if args.quick else ""),
        "quick": args.quick,
        "rows": rows,
        "wall_s": round(time.perf_counter() - started, 1),
        "git": git,
        "machine": {
            **host,
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "mlp_threads": measured["mlp_throughput"]["threads"],
            "seed_script_threads": measured["seed_script"]["torch_threads"],
        },
        "sections": [s.to_dict() for s in found],
        "measurements": measured,
    }
    write_json(out, doc)
    print()
    print(table(found))
    print(
        f"\n{host['cpu_model']}, {host['cores_usable']} cores, torch {host['torch_threads_default']} threads; "
        f"commit {(doc['git']['commit'] or 'unknown')[:12]}{' (dirty)' if doc['git']['dirty'] else ''}; "
        f"{doc['wall_s']:.0f} s in all -> {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
