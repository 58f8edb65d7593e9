"""`crime-pipeline forecast`: the forecast group in process, as `crime-pipeline run` runs the rest.

Counts first (`forecast_counts`, with the settings given), then the weekly forecasts: this week's
(the latest partition of the weekly partitions, in the city's time zone), and with `backfill` every
week of the test window recorded in forecast/setup.json (or its last `weeks`), one run per partition
as a Dagster backfill launches them; then `forecast_backtest` scores what is published, and the
report, when one was built, is refreshed with the forecast section. Runs go to
the instance (DAGSTER_HOME), so they show in the UI as a backfill from there would.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import date

import dagster as dg

from crime_pipeline.defs.forecasts import WEEKLY, methods_table
from crime_pipeline.lib.lake.storage import read_bytes
from crime_pipeline.orchestrate import failure_messages
from crime_pipeline.runs import QUIET_LOGS, process_tags

STALE_WEEKS = 2  # this week's forecast from events older than this gets a note: the file may be historical


def backfill_weeks(setup: dict, weeks: int | None) -> list[str]:
    """The test window's weeks to forecast: all of them, or the last `weeks`."""
    test = list(setup["test_weeks"])
    return test if weeks is None else test[-weeks:] if weeks > 0 else []


def run_forecasts(
    defs: dg.Definitions | None = None,
    instance: dg.DagsterInstance | None = None,
    backfill: bool = False,
    weeks: int | None = None,
    settings: dict | None = None,
    this_week: bool = True,
    echo: Callable[[str], None] = print,
    refresh_report: bool = True,
) -> int:
    """Counts, this week's forecast, the backfill of the test window (when asked), the backtest, and
    (`refresh_report`) the report when one was built. 0 = success."""
    from crime_pipeline.definitions import build_definitions

    defs = defs or build_definitions()
    instance = instance or dg.DagsterInstance.get()
    layout = defs.resources["lake"].layout
    assets = [*defs.assets, *(defs.asset_checks or [])]
    tags, started = process_tags(), time.perf_counter()

    def materialize(selection: list[str], partition: str | None = None, config: dict | None = None) -> list[str]:
        run_config = {**QUIET_LOGS, **({"ops": {"forecast_counts": {"config": config}}} if config else {})}
        result = dg.materialize(
            assets,
            selection=selection,
            partition_key=partition,
            instance=instance,
            resources=defs.resources,
            tags=tags,
            raise_on_error=False,
            run_config=run_config,
        )
        return [] if result.success else failure_messages(result)

    failures = materialize(["forecast_counts"], config=settings)
    if failures:
        for message in failures:
            echo(f"FAILED {message}")
        return 1
    setup = json.loads(read_bytes(layout.path("forecast_setup")))
    echo(
        f"forecast_counts: {setup['events']:,} events on {setup['cells']:,} cells, "
        f"{setup['first_event']} .. {setup['last_event']}; test window {len(setup['test_weeks'])} weeks"
    )
    chosen = backfill_weeks(setup, weeks) if backfill else []
    if this_week:
        current = WEEKLY.get_last_partition_key()
        chosen.append(current)
        behind = (date.fromisoformat(current) - date.fromisoformat(setup["last_event"][:10])).days // 7
        if behind > STALE_WEEKS:
            echo(
                f"note: the latest event is {setup['last_event'][:10]}, {behind} weeks before this week "
                f"({current}): this week's forecast rests on old data"
            )
    for week in dict.fromkeys(chosen):
        week_started = time.perf_counter()
        messages = materialize(["hotspot_forecast"], partition=week)
        failures += [f"hotspot_forecast[{week}]: {m}" for m in messages]
        echo(
            f"hotspot_forecast[{week}]: {'FAILED' if messages else 'published'} "
            f"in {time.perf_counter() - week_started:.1f}s"
        )
    failures += materialize(["forecast_backtest"])
    backtest = layout.path("forecast_backtest")
    if not failures:
        import pandas as pd

        doc = json.loads(read_bytes(backtest))
        echo(
            f"forecast_backtest: {len(doc['weeks_scored'])} weeks scored, {len(doc['weeks_missing'])} not yet forecast"
        )
        echo(methods_table(pd.DataFrame(doc["summary"]), setup["generated"]))
        # The report shows the backtest: refresh it when it exists, so the two never disagree.
        if refresh_report and instance.get_latest_materialization_event(dg.AssetKey("crime_report")) is not None:
            messages = materialize(["crime_report"])
            failures += messages
            echo(f"crime_report: {'FAILED' if messages else 'refreshed with the forecast section'}")
    for message in dict.fromkeys(failures):
        echo(f"FAILED {message}")
    echo(f"done in {time.perf_counter() - started:.1f}s; forecasts: {layout.root / 'forecast'}")
    return 1 if failures else 0
