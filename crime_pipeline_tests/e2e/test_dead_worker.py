"""A run whose worker dies is marked failed and frees its pool slot, whoever launched it.

The run is launched by a real `dagster-daemon` (a sensor's run request through the run queue, the
path the UI and schedules take too), on an instance with the project's own dagster.yaml. Runs of
`crime-pipeline run` are reaped by the CLI: defs/test_sensor.py and e2e/test_faults.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

from crime_pipeline.defs.dead_runs import REAP_INTERVAL_SECONDS
from crime_pipeline_tests.conftest import REPO

DAEMON = Path(sys.executable).with_name("dagster-daemon")
LOCATION = Path(__file__).with_name("dead_worker_location.py")


def wait_for(what: str, predicate, seconds: float):
    """Poll until `predicate()` is truthy; return (its value, seconds waited) or fail naming `what`."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        value = predicate()
        if value:
            return value, time.monotonic() - start
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {seconds} s")


def test_a_daemon_launched_run_whose_worker_dies_is_failed_and_frees_its_slot(tmp_path):
    home, pids = tmp_path / "home", tmp_path / "pids"
    home.mkdir(), pids.mkdir()
    shutil.copy(REPO / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")  # the settings users get
    (tmp_path / "workspace.yaml").write_text(
        f"load_from:\n  - python_file:\n      relative_path: {LOCATION}\n      working_directory: {REPO}\n"
    )
    env = {**os.environ, "DAGSTER_HOME": str(home), "DEAD_WORKER_PIDS": str(pids)}
    daemons: list[subprocess.Popen] = []

    def start_daemon() -> None:
        log = open(tmp_path / f"daemon{len(daemons)}.log", "wb")  # noqa: SIM115 (the daemon holds it)
        daemons.append(
            subprocess.Popen(
                [str(DAEMON), "run", "-w", str(tmp_path / "workspace.yaml")],
                cwd=tmp_path,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def worker(run_id: str) -> tuple[int, int] | None:
        written = (pids / run_id).read_text() if (pids / run_id).exists() else ""
        return tuple(map(int, written.split())) if written else None

    def status(run_id: str) -> dg.DagsterRunStatus:
        return instance.get_run_by_id(run_id).status

    def holds_slot(run_id: str) -> bool:
        return run_id in {s.run_id for s in instance.event_log_storage.get_concurrency_info("gpu").claimed_slots}

    with dg.DagsterInstance.from_config(str(home)) as instance:
        try:
            start_daemon()
            first, _ = wait_for("the sensor's run started", lambda: next(iter(os.listdir(pids)), None), 120)
            assert holds_slot(first)
            # 1. The worker dies, its code server lives: Dagster's server fails the run, the reaper frees the slot.
            os.kill(worker(first)[0], signal.SIGKILL)
            _, failed_after = wait_for("run failed", lambda: status(first) == dg.DagsterRunStatus.FAILURE, 15)
            _, freed_after = wait_for("slot freed", lambda: not holds_slot(first), REAP_INTERVAL_SECONDS + 20)
            # 2. The worker dies with its code server and the daemon (`dg dev` killed): nothing is left to
            # report it, so the run stays STARTED holding the slot until the reaper of the next daemon runs.
            retry, _ = wait_for(
                "the automatic retry started", lambda: next((r for r in os.listdir(pids) if r != first), None), 60
            )
            wait_for("the retry holds the slot", lambda: holds_slot(retry), 30)
            os.killpg(daemons[0].pid, signal.SIGKILL)
            daemons[0].wait()
            wait_for("the worker is gone", lambda: not Path(f"/proc/{worker(retry)[0]}").exists(), 10)
            time.sleep(2)  # nothing reports it: still STARTED
            assert status(retry) == dg.DagsterRunStatus.STARTED and holds_slot(retry)
            start_daemon()
            _, reaped_after = wait_for("reaped", lambda: status(retry) == dg.DagsterRunStatus.FAILURE, 60)
            assert not holds_slot(retry)
        finally:
            for daemon in daemons:
                if daemon.poll() is None:
                    os.killpg(daemon.pid, signal.SIGKILL)
                    daemon.wait()
    print(
        f"failed {failed_after:.1f} s and slot freed {freed_after:.1f} s after the kill; "
        f"after the restart: failed and freed {reaped_after:.1f} s after the daemon started"
    )
