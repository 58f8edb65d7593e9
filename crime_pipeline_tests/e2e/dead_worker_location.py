"""A code location for e2e/test_dead_worker.py: one step that takes the `gpu` pool's slot and waits to be
killed, a sensor that launches it once, and the project's own dead-run reaper sensor."""

import os
import time
from pathlib import Path

import dagster as dg

from crime_pipeline.defs.dead_runs import dead_run_reaper


@dg.asset(pool="gpu")
def hold_gpu_slot(context: dg.AssetExecutionContext) -> None:
    """Records its run worker's pid (and the code server's, its parent), then holds the slot."""
    folder = Path(os.environ["DEAD_WORKER_PIDS"])
    (folder / context.run_id).write_text(f"{os.getpid()} {os.getppid()}")
    time.sleep(600)


hold_job = dg.define_asset_job("hold_gpu_slot_job", selection=["hold_gpu_slot"], executor_def=dg.in_process_executor)


@dg.sensor(job=hold_job, minimum_interval_seconds=1, default_status=dg.DefaultSensorStatus.RUNNING)
def launch_once(context: dg.SensorEvaluationContext):
    """Launches one run, as the UI or any sensor would: through the daemon's run queue."""
    if not context.cursor:
        context.update_cursor("launched")
        yield dg.RunRequest(run_key="the-one-run")


defs = dg.Definitions(assets=[hold_gpu_slot], jobs=[hold_job], sensors=[launch_once, dead_run_reaper])
