"""Run bookkeeping shared by `crime-pipeline run` and the new-file sensor: the tags a run carries, which
run statuses mean a process is (or was) running it, and reaping the runs a killed process left behind.

It sits below both (it imports only Dagster's public API and lib), so the sensor in defs/ never
imports the CLI's orchestration.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import dagster as dg

from crime_pipeline.lib.lake.atomic import pid_alive

PID_TAG, HOST_TAG = "crime_pipeline/pid", "crime_pipeline/host"  # on every CLI run: who runs it, where
SOURCE_FILE_TAG = "crime_pipeline/source_file"  # set by the sensor and the CLI: where to look first
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}

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


def reap_dead_runs(instance: dg.DagsterInstance, echo: Callable[[str], None] = print) -> list[str]:
    """Mark failed the CLI runs on this host whose process is gone (killed), and free every pool slot
    still held by a finished run, so a killed run never blocks the next. Returns the run ids reaped."""
    reaped = []
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=list(IN_PROGRESS_STATUSES), tags={HOST_TAG: socket.gethostname()})
    )
    for run in (record.dagster_run for record in records):
        pid = int(run.tags.get(PID_TAG, "0"))
        if pid and pid != os.getpid() and not pid_alive(pid):
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
