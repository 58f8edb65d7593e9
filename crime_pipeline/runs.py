"""Run bookkeeping shared by `crime-pipeline run` and the sensors: the tags a run carries, which run
statuses mean a process is (or was) running it, and reaping the runs a killed process left behind,
whoever launched them (the CLI, the UI, a sensor or a schedule).

It sits below both (it imports only Dagster's public API and lib), so the sensor in defs/ never
imports the CLI's orchestration.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from crime_pipeline.lib.lake.atomic import pid_alive

PID_TAG, HOST_TAG = "crime_pipeline/pid", "crime_pipeline/host"  # on every CLI run: who runs it, where
SOURCE_FILE_TAG = "crime_pipeline/source_file"  # set by the sensor and the CLI: where to look first
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
# Runs the UI, a sensor or a schedule launched: Dagster's DefaultRunLauncher tags each with the code
# server it went to, and the run worker that server starts logs this engine event with its pid.
GRPC_INFO_TAG = ".dagster/grpc_info"  # Dagster's own tag (a test checks it still matches)
WORKER_STARTED = "Started process for run (pid: "
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}

# A process is running (or was, if it was killed) a run in one of these; Dagster's own grouping,
# spelled with the public enum (a test checks they still match Dagster's).
IN_PROGRESS_STATUSES = (
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
    dg.DagsterRunStatus.SUSPENDED,
)
FINISHED_STATUSES = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


def process_tags() -> dict[str, str]:
    """The tags that let a later run tell whether this process is still alive."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def launched_worker(instance: dg.DagsterInstance, run: dg.DagsterRun) -> tuple[int, float] | None:
    """(pid, start time) of the worker of a run the default run launcher started on this machine (from
    the UI, a sensor or a schedule), or None when the run went elsewhere or its worker has not started.
    The code server starts the worker and logs "Started process for run (pid: N)." as it does."""
    if not isinstance(instance.run_launcher, dg.DefaultRunLauncher) or GRPC_INFO_TAG not in run.tags:
        return None
    server = json.loads(run.tags[GRPC_INFO_TAG])
    if not server.get("socket") and server.get("host") not in LOCAL_HOSTS | {socket.gethostname()}:
        return None  # a code server on another machine: its pids are not ours to judge
    for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        if event and (event.message or "").startswith(WORKER_STARTED):
            pid = event.engine_event_data.metadata.get("pid")
            return (int(pid.value), entry.timestamp) if pid is not None else None
    return None


def worker_alive(pid: int, started_by: float) -> bool:
    """Whether process `pid` is still the one that logged its start at `started_by`: a zombie, or a
    process started later under a reused pid, is not (Linux /proc; elsewhere, whether the pid exists)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line[:5] == "btime"
        )
    except (OSError, StopIteration):
        return pid_alive(pid)
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    started = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return fields[0] != "Z" and started <= started_by + 2  # btime and clock ticks are whole seconds


def reap_dead_runs(instance: dg.DagsterInstance, echo: Callable[[str], None] = print) -> list[str]:
    """Mark failed the in-progress runs on this host whose process is gone (killed): the CLI's (tagged
    with their pid) and those the UI, a sensor or a schedule launched (their worker's pid from its start
    event); then free every pool slot still held by a finished run, so a killed run never blocks the
    next. Returns the run ids reaped."""
    reaped = []
    here = socket.gethostname()
    for run in (
        r.dagster_run for r in instance.get_run_records(filters=dg.RunsFilter(statuses=list(IN_PROGRESS_STATUSES)))
    ):
        if PID_TAG in run.tags:  # a CLI run: the CLI's own process runs it
            pid = int(run.tags[PID_TAG]) if run.tags.get(HOST_TAG) == here else 0
            dead = bool(pid) and pid != os.getpid() and not pid_alive(pid)
        else:  # a suspended run has no worker by design; the others had one if it logged its start
            worker = None if run.status == dg.DagsterRunStatus.SUSPENDED else launched_worker(instance, run)
            pid = worker[0] if worker else 0
            dead = worker is not None and not worker_alive(*worker)
        if dead:  # slots first: whoever sees the run failed never sees it still holding a slot
            if instance.event_log_storage.supports_global_concurrency_limits:
                instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            instance.report_run_failed(run, f"the process running it (pid {pid}) is gone: it was killed")
            reaped.append(run.run_id)
            echo(f"run {run.run_id[:8]} was left running by a killed process; marked failed")
    # Pool slots: Dagster has no public API for them; these are the instance's own storage methods.
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        holders = storage.get_concurrency_run_ids()
        if holders:
            finished = dg.RunsFilter(run_ids=list(holders), statuses=list(FINISHED_STATUSES))
            for record in instance.get_run_records(filters=finished):
                storage.free_concurrency_slots_for_run(record.dagster_run.run_id)
    return reaped
