"""The forecast methods, each fitted only on incidents recorded before the issue time.

Every method is `(history, grid, issue_time, period, settings) -> Forecast` (see base.py); it refuses
history at or after the issue time and records the latest event it used. `METHODS` names them;
`PREPARERS` fit a method's hyper-parameters once on the history before the first issue time of a
backtest, returning the method with those fixed (parameters fitted before the first issue time
cannot leak into any later forecast); a method with none is used as it is.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from crime_pipeline.lib.forecast.base import Forecast, MethodSettings, history_before, latest_time
from crime_pipeline.lib.forecast.counts import history_counts
from crime_pipeline.lib.forecast.grid import Grid
from crime_pipeline.lib.forecast.kde import kde, prepare_kde
from crime_pipeline.lib.forecast.learned import poisson_gbdt, prepare_gbdt
from crime_pipeline.lib.forecast.periods import period_length
from crime_pipeline.lib.forecast.sepp import prepare_sepp, sepp

Method = Callable[..., Forecast]


def last_period(history: pd.DataFrame, grid: Grid, issue_time, period: str, settings: MethodSettings) -> Forecast:
    """Next period's count = the last period's count, cell by cell."""
    issue_time = pd.Timestamp(issue_time)
    history = history_before(history, issue_time, period)
    expected = history_counts(history, grid, issue_time, period, n_periods=1)[0]
    used = history[history["time"] >= issue_time - period_length(period)]
    return Forecast("last_period", issue_time, expected, latest_time(used), {})


def long_run(history: pd.DataFrame, grid: Grid, issue_time, period: str, settings: MethodSettings) -> Forecast:
    """Next period's count = the mean count per period over all the history ("the usual hotspots")."""
    issue_time = pd.Timestamp(issue_time)
    history = history_before(history, issue_time, period)
    counts = history_counts(history, grid, issue_time, period)
    params = {"periods": int(len(counts)), "since": str(history["time"].min()) if len(history) else None}
    return Forecast("long_run", issue_time, counts.mean(axis=0), latest_time(history), params)


METHODS: dict[str, Method] = {
    "last_period": last_period,
    "long_run": long_run,
    "kde": kde,
    "sepp": sepp,
    "poisson_gbdt": poisson_gbdt,
}
PREPARERS: dict[str, Callable[..., Method]] = {"kde": prepare_kde, "sepp": prepare_sepp, "poisson_gbdt": prepare_gbdt}


def default_settings(name: str | None = None) -> MethodSettings:
    """The settings a method runs with by default (one MethodSettings serves every method)."""
    if name is not None and name not in METHODS:
        raise KeyError(f"unknown forecast method {name!r}; known: {sorted(METHODS)}")
    return MethodSettings()


def prepare(
    name: str, method: Method, events: pd.DataFrame, grid: Grid, first_issue, period: str, settings: MethodSettings
) -> Method:
    """`method` with its hyper-parameters fitted on the events before `first_issue` (a built-in method only)."""
    first_issue = pd.Timestamp(first_issue)
    preparer = PREPARERS.get(name)
    if preparer is None or METHODS.get(name) is not method:
        return method
    before = events[events["time"] < first_issue]
    return preparer(before, grid, first_issue, period, settings)


__all__ = [
    "METHODS",
    "PREPARERS",
    "Forecast",
    "MethodSettings",
    "default_settings",
    "last_period",
    "long_run",
    "prepare",
]
