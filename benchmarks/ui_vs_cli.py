"""A downstream refresh launched by the daemon (as from the UI) against `crime-pipeline run --force`,
side by side on the same lake and machine.

    python benchmarks/ui_vs_cli.py [--rows 322000] [--executors in_process,multiprocess]

Builds a temporary lake of generated incidents, times `crime-pipeline run --force` (everything below
ingestion, in-process), then starts `crime-pipeline ui` (`dg dev`: webserver and daemon) and times
the same assets launched through GraphQL, queued and launched by the daemon, once per executor.
Prints each run's seconds (from the run's own start and end) and its ratio to the CLI.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from crime_pipeline.definitions import build_definitions  # noqa: E402
from crime_pipeline.lib import synthetic  # noqa: E402
from crime_pipeline.lib.ingest.raw_csv import sha256_file  # noqa: E402
from crime_pipeline.lib.lake.layout import LakeLayout  # noqa: E402
from crime_pipeline.lib.lake.ledger import record_generated
from crime_pipeline.orchestrate import downstream_keys  # noqa: E402
from crime_pipeline_tests.ui_client import UI, free_port  # noqa: E402


def cli(env: dict, *args: str) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "crime_pipeline.cli", *args], env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"crime-pipeline {' '.join(args)} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return time.perf_counter() - started


def ui_refresh(env: dict, executor: str, assets: list[str], log: Path) -> float:
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "crime_pipeline.cli", "ui", "--port", str(port)],
            env={**env, "CRIME_PIPELINE_EXECUTOR": executor},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        ui = UI(port)
        ui.wait_until_serving(proc, log, timeout=300)
        run = ui.launch(assets)
        status = ui.wait_for_run(run, timeout=3600)
        if status != "SUCCESS":
            raise SystemExit(f"the {executor} run ended {status}; see {log}")
        start, end = ui.run_times(run)
        return end - start
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # dg dev ignores SIGTERM in the background
        proc.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=synthetic.DEFAULT_ROWS)
    parser.add_argument("--executors", default="in_process,multiprocess")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ui_vs_cli_"))
    try:
        lake = LakeLayout(root / "lake").ensure()
        home = root / "home"
        home.mkdir()
        shutil.copy(REPO / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
        path = synthetic.write_export_csv(
            synthetic.generate_incidents(args.rows, synthetic.DEFAULT_SEED), lake.incoming / "export.csv"
        )
        record_generated(
            lake,
            sha256_file(path),
            {
                "file": path.name,
                "rows": args.rows,
                "seed": synthetic.DEFAULT_SEED,
                "generator_version": synthetic.GENERATOR_VERSION,
            },
        )
        env = {
            **os.environ,
            "CRIME_PIPELINE_LAKE": str(lake.root),
            "DAGSTER_HOME": str(home),
            "CRIME_PIPELINE_SENSORS": "stopped",
        }
        print(f"{args.rows:,} rows; first build: {cli(env, 'run'):.1f}s")
        seconds = {"crime-pipeline run --force": cli(env, "run", "--force")}
        assets = [k.to_user_string() for k in downstream_keys(build_definitions(str(lake.root)))]
        for executor in args.executors.split(","):
            seconds[f"daemon-launched refresh, {executor} executor"] = ui_refresh(
                env, executor, assets, root / f"ui_{executor}.log"
            )
        base = seconds["crime-pipeline run --force"]
        print(f"\n{'':48s} {'seconds':>8s} {'ratio':>6s}")
        for name, value in seconds.items():
            print(f"{name:48s} {value:8.1f} {value / base:6.2f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
