"""The forecast group's time on a built lake: counts, the test window's weekly forecasts, this week's, the backtest.

    python -m benchmarks.forecast LAKE --json OUT.json [--weeks 26]

Runs `crime-pipeline forecast --backfill`'s logic (forecast_runs.run_forecasts) through Dagster in the
instance DAGSTER_HOME names, on a lake whose `incidents` is built (`benchmarks.graph` leaves one),
and reports the wall time of each part and each method's fit time summed over the weeks (from the
`fit_seconds` every week's file records), with the backtest's PAI at 1% per method.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import dagster as dg
import pandas as pd

from crime_pipeline.lib.lake.atomic import write_json

TARGET_S = 120.0  # the limit for the whole forecast group on the default data, 2 cores


def measure(lake_root: Path, weeks: int) -> dict:
    from crime_pipeline.definitions import build_definitions
    from crime_pipeline.forecast_runs import run_forecasts

    defs = build_definitions(str(lake_root))
    layout = defs.resources["lake"].layout
    lines: list[str] = []
    started = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        code = run_forecasts(
            defs,
            instance,
            backfill=True,
            settings={"test_weeks": weeks},
            echo=lambda line: lines.append(line),
            refresh_report=False,  # the forecast group's own time
        )
    wall = time.perf_counter() - started
    if code != 0:
        raise SystemExit("the forecast group failed:\n" + "\n".join(lines[-20:]))
    setup = json.loads(layout.path("forecast_setup").read_text())
    backtest = json.loads(layout.path("forecast_backtest").read_text())
    fits = pd.concat(
        pd.read_parquet(layout.path("hotspot_forecast", week=w), columns=["method", "fit_seconds"]).drop_duplicates()
        for w in backtest["weeks_scored"]
    )
    week_lines = [line for line in lines if line.startswith("hotspot_forecast[")]
    summary = pd.DataFrame(backtest["summary"])
    at_1 = summary[summary["area_share"] == 0.01].set_index("method")
    return {
        "wall_s": wall,
        "weeks": len(backtest["weeks_scored"]),
        "events": setup["events"],
        "cells": setup["cells"],
        "week_runs_s": sum(float(line.rsplit(" in ", 1)[1].rstrip("s")) for line in week_lines),
        "method_fit_s": fits.groupby("method")["fit_seconds"].sum().to_dict(),
        "pai_1pct": at_1["pai"].to_dict(),
        "pei_1pct": at_1["pei"].to_dict(),
        "lead": backtest["lead"],
        "generated": setup["generated"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.forecast", description=__doc__.splitlines()[0])
    parser.add_argument("lake", type=Path)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--weeks", type=int, default=26)
    args = parser.parse_args(argv)
    result = measure(args.lake, args.weeks)
    write_json(args.json, result)
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
