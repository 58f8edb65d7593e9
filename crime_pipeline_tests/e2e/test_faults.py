"""Faults survived: a run killed at any point, a full disk or a read-only lake, then the next run
completes with nothing lost, no stray temporary file, and no killed run blocking it.

Crashes are real: `crime-pipeline run` in a subprocess, stopped by SIGKILL at a named point
(lib/lake/faults.py), on the project's own instance settings (pools, run monitoring).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from crime_pipeline.lib import synthetic
from crime_pipeline.lib.ingest.raw_csv import sha256_file
from crime_pipeline.lib.lake.faults import FAULT_ENV
from crime_pipeline.lib.lake.layout import LakeLayout
from crime_pipeline.lib.lake.ledger import ingested, record_generated, unvalidated_files
from crime_pipeline_tests.conftest import API_SAMPLE, REPO

ROWS = 2500


def stray_temp_files(lake: LakeLayout) -> list[Path]:
    return [p for p in lake.root.rglob("*") if p.name.endswith(".tmp") or ".staged." in p.name]


class CliLake:
    """A temporary lake and DAGSTER_HOME (with the project's dagster.yaml) driven through the CLI."""

    def __init__(self, tmp_path: Path):
        self.lake = LakeLayout(tmp_path / "lake").ensure()
        self.home = tmp_path / "home"
        self.home.mkdir()
        shutil.copy(REPO / ".dagster_home" / "dagster.yaml", self.home / "dagster.yaml")

    def generate(self, name: str, rows: int = ROWS, seed: int = 3) -> Path:
        path = synthetic.write_export_csv(synthetic.generate_incidents(rows, seed), self.lake.incoming / name)
        record_generated(
            self.lake,
            sha256_file(path),
            {"file": name, "rows": rows, "seed": seed, "generator_version": synthetic.GENERATOR_VERSION},
        )
        return path

    def run(self, fault: str | None = None, timeout: int = 400) -> subprocess.CompletedProcess:
        env = {
            **os.environ,
            "CRIME_PIPELINE_LAKE": str(self.lake.root),
            "DAGSTER_HOME": str(self.home),
            "CRIME_PIPELINE_SENSORS": "stopped",
            "OMP_NUM_THREADS": "1",
        }
        env.pop(FAULT_ENV, None)
        if fault:
            env[FAULT_ENV] = fault
        return subprocess.run(
            [sys.executable, "-m", "crime_pipeline.cli", "run"],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def quality(self) -> dict:
        return json.loads(self.lake.report_file("data_quality.json").read_text())


@pytest.fixture
def cli_lake(tmp_path) -> CliLake:
    return CliLake(tmp_path)


# Each run is killed at the next point, so each run must first recover from the previous kill:
# a file read but never validated, a half-written Parquet file, a merge staged but not published,
# a training step killed while holding the gpu pool's only slot, a report never written.
CRASH_POINTS = (
    "ingest:after_ledger",
    "write:*.staged.parquet",
    "publish:incidents.parquet",
    "mlp:epoch",
    "report:before_write",
)


def test_runs_killed_anywhere_are_recovered_by_the_next(cli_lake):
    path = cli_lake.generate("export.csv")
    with open(path, newline="") as fh:
        records = sum(1 for record in csv.reader(fh) if record) - 1  # counted here, not by the pipeline
    for point in CRASH_POINTS:
        crashed = cli_lake.run(fault=point)
        assert crashed.returncode == -signal.SIGKILL, f"{point}: {crashed.stdout}{crashed.stderr}"

    rerun = cli_lake.run()
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    quality = cli_lake.quality()
    totals = quality["totals"]
    assert totals["rows_read"] == records
    assert totals["valid"] + totals["quarantined"] + totals["superseded"] == records
    assert quality["pending_files"] == []
    assert stray_temp_files(cli_lake.lake) == []
    assert cli_lake.lake.report_file("report.html").exists()
    with dg.DagsterInstance.from_config(str(cli_lake.home)) as instance:
        runs = instance.get_runs()
        assert dg.DagsterRunStatus.STARTED not in [r.status for r in runs]  # killed runs were marked failed
        assert instance.event_log_storage.get_concurrency_run_ids() == set()  # and their pool slots freed
        reaped = [r for r in runs if r.status == dg.DagsterRunStatus.FAILURE]
        assert len(reaped) >= len(CRASH_POINTS)


def test_a_full_disk_or_a_read_only_lake_loses_nothing(cli_lake):
    cli_lake.generate("export.csv")
    for kind, message in (("enospc", "No space left on device"), ("erofs", "Read-only file system")):
        failed = cli_lake.run(fault=f"write:*.staged.parquet={kind}")
        assert failed.returncode == 1
        assert "FAILED export.csv" in failed.stdout and message in failed.stdout
        [entry] = unvalidated_files(cli_lake.lake).values()  # read, not validated: retried next time
        assert entry["file"] == "export.csv"
        assert stray_temp_files(cli_lake.lake) == []

    rerun = cli_lake.run()
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert cli_lake.quality()["totals"]["rows_read"] == entry["records_counted"]


def test_a_file_whose_validation_never_published_is_named_on_every_run(cli_lake):
    path = cli_lake.lake.incoming / "export.csv"
    path.write_bytes(API_SAMPLE.read_bytes())
    assert cli_lake.run(fault="ingest:after_ledger").returncode == -signal.SIGKILL
    path.unlink()  # the file is gone before any run could retry it
    for _ in range(2):
        result = cli_lake.run()
        assert result.returncode == 1
        assert "FAILED export.csv" in result.stdout and "validation is not published" in result.stdout


def test_stale_temporary_files_are_removed_and_live_ones_kept(pipeline, lake):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = lake.root / "lake" / f".incidents.parquet.pid{dead.pid}.abc123.tmp"
    live = lake.root / "models" / f".mlp.json.pid{os.getpid()}.def456.tmp"
    for path in (stale, live):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half a file")
    pipeline.drop("a.csv", API_SAMPLE)
    assert pipeline.run() == 0, pipeline.output
    assert not stale.exists() and live.exists()
    assert any("left half-written by a killed run" in line for line in pipeline.output)


def test_an_empty_file_does_not_stop_the_good_one_beside_it(pipeline, lake):
    from crime_pipeline.lib.ingest.limits import MAX_COLUMNS

    pipeline.drop("a_empty.csv", b"")
    wide = ",".join(["Case Number", "Incident Datetime", *(f"c{i}" for i in range(MAX_COLUMNS))])
    pipeline.drop("a_wide.csv", f"{wide}\n{',' * (MAX_COLUMNS + 1)}\n".encode())  # over the column limit
    pipeline.drop("b_good.csv", API_SAMPLE)
    assert pipeline.run() == 1
    assert any(line.startswith("FAILED a_empty.csv") and "empty" in line for line in pipeline.output)
    assert any(
        line.startswith("FAILED a_wide.csv") and f"over the limit of at most {MAX_COLUMNS:,}" in line
        for line in pipeline.output
    ), pipeline.output
    assert [e["file"] for e in ingested(lake).values()] == ["b_good.csv"]  # neither is left `read`
    quality = json.loads(lake.report_file("data_quality.json").read_text())
    assert quality["totals"]["rows_read"] == 200
    assert pipeline.run() == 1  # named again on every run until it is fixed or removed
    (lake.incoming / "a_empty.csv").unlink()
    (lake.incoming / "a_wide.csv").unlink()
    assert pipeline.run() == 0, pipeline.output
