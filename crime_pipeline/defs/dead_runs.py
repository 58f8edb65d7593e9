"""The dead-run reaper: runs whose worker process died are marked failed and give back their pool slots.

Its own module, importing nothing but the run bookkeeping, so it loads fast in every code server.
"""

import dagster as dg

from crime_pipeline.runs import reap_dead_runs

REAP_INTERVAL_SECONDS = 10


@dg.sensor(minimum_interval_seconds=REAP_INTERVAL_SECONDS, default_status=dg.DefaultSensorStatus.RUNNING)
def dead_run_reaper(context: dg.SensorEvaluationContext):
    """Marks failed every run whose worker process died (SIGKILL, out of memory) and frees its pool slots.

    Whoever launched it: the UI, a sensor, a schedule or `crime-pipeline run`. Dagster's code server
    fails a run whose worker dies while the server lives; this catches the rest (the worker died with
    its code server, or `dg dev` was killed and restarted), within about 30 s of the daemon running
    again. Running even with CRIME_PIPELINE_SENSORS=stopped: it launches nothing.
    """
    reaped = reap_dead_runs(context.instance, echo=context.log.warning)
    return dg.SkipReason(f"marked {len(reaped)} dead run(s) failed" if reaped else "no dead run")
