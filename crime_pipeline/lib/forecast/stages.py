"""The forecast stages: counts on a grid, the forecast issued at a week's start, and its backtest.

`build_forecast_counts` turns the events (the `incidents` table, or one-class XYT files) into a grid
and a count matrix and records the settings, grid and test window in `forecast/setup.json`, which
the other two stages read, so all three agree. `issue_forecast` fits every method on the events
before the issue time only, writes the week's forecast staged, audits the leak evidence the fitting
recorded (latest event used vs issue time) on the file read back, and publishes it only when no
method used an event at or after the issue time. `score_backtest` (lib/forecast/weekly_scores.py)
scores the published weeks of the test window against the counts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from crime_pipeline.lib import synthetic
from crime_pipeline.lib.cities.profiles import DEFAULT_CITY, get_profile
from crime_pipeline.lib.forecast import methods as forecast_methods
from crime_pipeline.lib.forecast.backtest import leaks
from crime_pipeline.lib.forecast.base import MethodSettings
from crime_pipeline.lib.forecast.counts import count_matrix
from crime_pipeline.lib.forecast.events import events_from_incidents, events_from_xyt
from crime_pipeline.lib.forecast.grid import Grid, grid_for_box
from crime_pipeline.lib.forecast.kde import tune_kde
from crime_pipeline.lib.forecast.metrics import AREA_SHARES, flagged_cells
from crime_pipeline.lib.forecast.oracle import oracle_for_grid
from crime_pipeline.lib.forecast.periods import issue_times, period_start
from crime_pipeline.lib.forecast.settings import XYT_FOLDER, ForecastSettings
from crime_pipeline.lib.lake import storage
from crime_pipeline.lib.lake.atomic import publish, reject, staged_path, write_json
from crime_pipeline.lib.lake.errors import StageError
from crime_pipeline.lib.lake.parquet import read_parquet, write_parquet
from crime_pipeline.lib.lake.reads import DeclaredReads

ORACLE = "oracle"
FLAG_COLUMNS = {share: f"flagged_{round(share * 100)}" for share in AREA_SHARES}  # flagged_1, _2, _5
XYT_NAME = re.compile(r".*_(\d{4})_xyt\.csv$")
WEEK = pd.Timedelta(weeks=1)
DEFAULT_SETTINGS = ForecastSettings()
_log = logging.getLogger(__name__)


def week_key(issue_time: pd.Timestamp) -> str:
    """The partition key of the week starting at `issue_time` (Dagster's weekly key format)."""
    return pd.Timestamp(issue_time).strftime("%Y-%m-%d")


def complete_weeks(first_event: pd.Timestamp, last_event: pd.Timestamp, settings: ForecastSettings) -> list[str]:
    """The test window: weeks after the first event's week that end by the end of the last event's day
    (the last `test_weeks`, or every one from `test_from` on)."""
    end = last_event.normalize() + pd.Timedelta(days=1)
    first = period_start(first_event, "week") + WEEK  # at least a week of history
    last = period_start(end, "week") - WEEK  # the last week that ends by `end`
    if last < first:
        return []
    weeks = list(issue_times(first, last, "week"))
    if settings.test_from:
        start = period_start(pd.Timestamp(settings.test_from), "week")
        return [week_key(w) for w in weeks if w >= start]
    return [week_key(w) for w in weeks[-settings.test_weeks :]]


@dataclass
class CountsBuilt:
    """The events counted on the grid, and what setup.json records."""

    setup: dict
    events: int
    outside: int  # events outside the grid's box, left out
    periods: int
    nonzero: pd.DataFrame  # period_start, cell, count (non-zero cell-periods)


def _xyt_events(reads: DeclaredReads) -> pd.DataFrame:
    folder = reads.layout.root / XYT_FOLDER
    files = sorted(p for p in storage.glob(folder, "*_xyt.csv") if XYT_NAME.match(Path(str(p)).name))
    if not files:
        raise StageError(f"events_source is xyt but {folder} holds no <name>_<year>_xyt.csv file")
    frames = []
    for path in files:
        year = int(XYT_NAME.match(Path(str(path)).name).group(1))
        with storage.local_copy(reads.path(path)) as local:
            frames.append(events_from_xyt(local, year))
    return pd.concat(frames, ignore_index=True)


def _incident_events(reads: DeclaredReads, settings: ForecastSettings) -> tuple[pd.DataFrame, str, dict | None]:
    """Events from `incidents`, the city, and (when every file of the city came from the current
    generator) what the oracle needs: the generator version and the city's incidents of all types."""
    path = reads.layout.table("incidents")
    names = set(reads.parquet_schema(path).names)
    wanted = ["incident_datetime", "latitude", "longitude", "label", "time_defaulted_noon", "date_is_first_of_month"]
    frame = reads.parquet(path, columns=[c for c in [*wanted, "city"] if c in names])
    city = settings.city or (str(frame["city"].mode().iloc[0]) if "city" in frame and len(frame) else DEFAULT_CITY)
    if "city" in frame:
        frame = frame[frame["city"].fillna(DEFAULT_CITY) == city]
    quality = reads.json(reads.layout.report_file("data_quality.json"), default={})
    versions = quality.get("generator_versions", {})
    mine = {k: v for k, v in versions.items() if quality.get("file_cities", {}).get(k, DEFAULT_CITY) == city}
    version = synthetic.generated_by(mine.values(), city, reads.layout.root)
    oracle = {"generator_version": version, "n_incidents": len(frame)} if version else None
    return events_from_incidents(frame, labels=list(settings.labels) or None), city, oracle


def build_forecast_counts(
    reads: DeclaredReads, settings: ForecastSettings = DEFAULT_SETTINGS, log: logging.Logger = _log
) -> CountsBuilt:
    """Events per grid cell per period, the grid, and the test window, written under forecast/.

    Events with an unknown time of day (the export's default noon) count in their day and week,
    never in a shift (lib/validate/unknown_time.py; events_from_incidents flags them).
    """
    layout = reads.layout
    if settings.test_weeks < 1:
        raise StageError(f"test_weeks is {settings.test_weeks}: the backtest needs at least one week")
    if settings.events_source == "xyt":
        events, city, oracle = _xyt_events(reads), settings.city or DEFAULT_CITY, None
    else:
        events, city, oracle = _incident_events(reads, settings)
    if events.empty:
        raise StageError(f"no events to forecast from ({settings.events_source}, labels {list(settings.labels)})")
    grid = grid_for_box(get_profile(city, lake_root=layout.root).box, cell_m=settings.cell_m)
    inside = grid.cell_of(events["lat"].to_numpy(), events["lon"].to_numpy()) >= 0
    outside = int((~inside).sum())
    events = events[inside].sort_values("time", kind="stable").reset_index(drop=True)
    first, last = events["time"].min(), events["time"].max()
    starts = list(
        issue_times(period_start(first, settings.period), period_start(last, settings.period), settings.period)
    )
    matrix = np.asarray(count_matrix(events, grid, starts, settings.period))
    period_idx, cells = np.nonzero(matrix)
    nonzero = pd.DataFrame(
        {"period_start": pd.DatetimeIndex(starts)[period_idx], "cell": cells, "count": matrix[period_idx, cells]}
    )
    test_weeks = complete_weeks(first, last, settings)
    setup = {
        "setup_id": setup_id(settings, city, grid),
        "settings": asdict(settings),
        "city": city,
        "grid": asdict(grid),
        "cells": int(grid.n_cells),
        "cell_area_sq_km": float(grid.cell_area_sq_km),
        "events": len(events),
        "events_outside_grid": outside,
        "time_unknown": int((~events["time_known"]).sum()),
        "first_event": str(first),
        "last_event": str(last),
        "periods": len(starts),
        "test_weeks": test_weeks,
        "generated": oracle is not None,
        "oracle": oracle,  # on generated data: the generator version and the incidents it wrote
        "method_settings": tuned_method_settings(events, grid, test_weeks, settings),
    }
    write_parquet(layout.path("forecast_events"), events)
    write_parquet(layout.path("forecast_counts"), nonzero)
    write_json(layout.path("forecast_setup"), setup)
    log.info(
        f"{len(events):,} events ({outside:,} outside the grid left out) on {grid.n_cells:,} cells of "
        f"{settings.cell_m:g} m, {len(starts)} {settings.period}s; test window {len(setup['test_weeks'])} weeks"
    )
    return CountsBuilt(setup=setup, events=len(events), outside=outside, periods=len(starts), nonzero=nonzero)


def setup_id(settings: ForecastSettings, city: str, grid: Grid) -> str:
    """What a week's forecast must share with the counts it is scored on: the city, grid, events and
    period. Each week's file records it, so a week forecast on another grid or set of types is never
    scored against these counts (the backtest names it and leaves it out until issued again)."""
    key = {
        "city": city,
        "grid": asdict(grid),
        "events_source": settings.events_source,
        "labels": sorted(settings.labels),
        "period": settings.period,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def tuned_method_settings(events: pd.DataFrame, grid: Grid, test_weeks: list[str], settings: ForecastSettings) -> dict:
    """The methods' settings, with kde's bandwidth and decay chosen on the periods before the first test
    week (so no test week informs them); every weekly forecast from that week on uses them."""
    chosen = MethodSettings()
    if test_weeks and "kde" in (settings.methods or forecast_methods.METHODS):
        first = pd.Timestamp(test_weeks[0])
        chosen = tune_kde(history_before(events, first), grid, first, settings.period, chosen)
    return {**asdict(chosen), "tuned_before": test_weeks[0] if test_weeks else None}


def method_settings_for(setup: dict, issue_time: pd.Timestamp) -> MethodSettings:
    """The recorded settings; for a week before the tuning's cut-off, kde tunes itself on its own history."""
    recorded = dict(setup["method_settings"])
    tuned_before = recorded.pop("tuned_before")
    chosen = MethodSettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in recorded.items()})
    if tuned_before is None or issue_time < pd.Timestamp(tuned_before):
        chosen = replace(chosen, kde_bandwidth_m=None, kde_decay_days=None)
    return chosen


def read_setup(reads: DeclaredReads) -> tuple[dict, Grid, ForecastSettings]:
    setup = reads.json(reads.layout.path("forecast_setup"))
    raw = setup["settings"]
    settings = ForecastSettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})
    return setup, Grid(**setup["grid"]), settings


def history_before(events: pd.DataFrame, issue_time: pd.Timestamp) -> pd.DataFrame:
    """What a forecast issued at `issue_time` may see: the events strictly before it."""
    return events[events["time"] < issue_time]


def chosen_methods(settings: ForecastSettings) -> dict:
    unknown = sorted(set(settings.methods) - set(forecast_methods.METHODS))
    if unknown:
        raise StageError(f"unknown forecast methods {unknown}; known: {sorted(forecast_methods.METHODS)}")
    names = settings.methods or tuple(forecast_methods.METHODS)
    return {name: forecast_methods.METHODS[name] for name in names}


@dataclass
class ForecastIssued:
    """One week's forecast: the file, the leak audit, and each method's fit time and parameters."""

    week: str
    path: Path
    frame: pd.DataFrame
    leaks: list[dict]  # methods whose latest event used is at or after the issue time
    seconds: dict[str, float]
    params: dict[str, dict]
    history: int
    published: bool
    evidence: dict[str, str | None] = field(default_factory=dict)  # method -> latest event used


def forecast_rows(
    name: str, expected: np.ndarray, issue_time, latest, params: dict, seconds: float, given=None
) -> pd.DataFrame:
    """One method's rows of a week's file: every cell's expected count, rank (1 = highest) and flags."""
    expected = np.asarray(expected, dtype="float64")
    order = np.lexsort((np.arange(len(expected)), -expected))  # highest first, ties by cell index
    rank = np.empty(len(expected), dtype="int64")
    rank[order] = np.arange(1, len(expected) + 1)
    frame = pd.DataFrame({"cell": np.arange(len(expected)), "method": name, "expected": expected, "rank": rank})
    for share, column in FLAG_COLUMNS.items():
        frame[column] = flagged_cells(expected, share)
    frame["issue_time"] = pd.Timestamp(issue_time)
    frame["latest_event_used"] = pd.Timestamp(latest) if latest is not None else pd.NaT
    frame["latest_event_given"] = pd.Timestamp(given) if given is not None else pd.NaT  # the history's last event
    frame["params"] = json.dumps(params, default=str, sort_keys=True)
    frame["fit_seconds"] = seconds
    return frame


def leak_evidence(frame: pd.DataFrame) -> list[dict]:
    """Every method whose recorded latest event used is at or after the file's issue time, or later
    than the latest event its history held (it read events from elsewhere): backtest.leaks' rule."""
    per_method = frame.groupby("method", sort=True)[["issue_time", "latest_event_used", "latest_event_given"]].first()
    bad = leaks(per_method.reset_index())
    return [
        {"method": r.method, "latest_event_used": str(r.latest_event_used), "issue_time": str(r.issue_time)}
        for r in bad.itertuples(index=False)
    ]


def issue_forecast(
    reads: DeclaredReads, week: str, oracle=None, log: logging.Logger = _log, methods: dict | None = None
) -> ForecastIssued:
    """The forecast issued at the start of `week` (a Monday, local time): every method fitted on the
    events before it, plus the oracle's expected counts when `oracle` (issue_time, period, history)
    is given. Staged, audited for leaks on the file read back, published only when none leaked."""
    setup, grid, settings = read_setup(reads)
    issue_time = pd.Timestamp(week)
    if issue_time != period_start(issue_time, "week"):
        raise StageError(f"week {week} does not start on a Monday at 00:00; forecasts are issued at a week's start")
    events = reads.parquet(reads.layout.path("forecast_events"))
    history = history_before(events, issue_time)
    if history.empty:
        raise StageError(
            f"no events before {week} in forecast/events.parquet (the first is {setup['first_event']}); "
            f"a forecast needs history"
        )
    frames, seconds, params = [], {}, {}
    given = history["time"].max()
    method_settings = method_settings_for(setup, issue_time)
    for name, method in (methods or chosen_methods(settings)).items():
        started = time.perf_counter()
        fitted = method(history, grid, issue_time, settings.period, method_settings)
        seconds[name] = time.perf_counter() - started
        params[name] = fitted.params
        frames.append(
            forecast_rows(
                name, fitted.expected, issue_time, fitted.latest_event_used, fitted.params, seconds[name], given
            )
        )
        log.info(f"{week}: {name} fitted in {seconds[name]:.2f}s on {len(history):,} events")
    if oracle is not None:
        started = time.perf_counter()
        expected, latest = oracle(issue_time, settings.period, history)
        seconds[ORACLE] = time.perf_counter() - started
        frames.append(forecast_rows(ORACLE, expected, issue_time, latest, {}, seconds[ORACLE], given))
    target = reads.layout.path("hotspot_forecast", week=week)
    write_parquet(staged_path(target), pd.concat(frames, ignore_index=True).assign(setup_id=setup["setup_id"]))
    written = read_parquet(staged_path(target))  # audit what was written, not what was meant
    leaks = leak_evidence(written)
    (reject if leaks else publish)(target)
    for leak in leaks:
        log.error(f"{week}: {leak['method']} used an event at {leak['latest_event_used']}, at or after the issue time")
    evidence = written.groupby("method")["latest_event_used"].first().astype(str).to_dict()
    return ForecastIssued(week, target, written, leaks, seconds, params, len(history), not leaks, evidence)


def oracle_for(reads: DeclaredReads):
    """On generated data, the generator's exact expected counts as a callable (issue_time, period,
    history) -> (expected per cell, latest event used) (lib/forecast/oracle.py); None on real data
    or for a subset of types (the oracle of all types together is the one that stays exact)."""
    setup, grid, settings = read_setup(reads)
    if not setup["generated"] or settings.labels:
        return None
    return oracle_for_grid(
        grid,
        setup["city"],
        reads.layout.root,
        n_incidents=setup["oracle"]["n_incidents"],
        version=setup["oracle"]["generator_version"],
    )
