"""A rolling-origin backtest that cannot peek: each forecast sees only the events before its issue time.

For every issue time each method gets `events[time < issue_time]` and is scored on the period that
starts there: hit rate, PAI and PEI at each area share, and the Poisson deviance per cell. Methods with
hyper-parameters fit them once on the events before the first issue time (methods.prepare). Each
forecast records the latest event it used; `leaks` lists those at or after their issue time, or later
than the latest event the backtest gave it (a method that read data from elsewhere): the evidence a
blocking gate checks. Intervals are percentile bootstraps over issue times (seeded).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crime_pipeline.lib.forecast.base import MethodSettings
from crime_pipeline.lib.forecast.counts import count_matrix
from crime_pipeline.lib.forecast.grid import Grid
from crime_pipeline.lib.forecast.methods import prepare
from crime_pipeline.lib.forecast.metrics import AREA_SHARES, flagged_cells, hit_rate, pai, pei, poisson_deviance

ORACLE = "oracle"
SCORE_COLUMNS = (
    "issue_time",
    "method",
    "area_share",
    "hit_rate",
    "pai",
    "pei",
    "deviance",
    "n_incidents",
    "latest_event_used",
    "latest_event_given",
)
METRICS = ("pai", "pei", "hit_rate", "deviance")


@dataclass
class BacktestResult:
    scores: pd.DataFrame  # one row per issue time x method x area share (SCORE_COLUMNS)
    summary: pd.DataFrame  # per method x area share: mean and 95% bootstrap interval of each metric
    params: dict = field(default_factory=dict)  # method -> the params of its last forecast
    seconds: dict = field(default_factory=dict)  # method -> seconds spent preparing and forecasting


def score_rows(method, issue_time, expected, actual, latest_used, latest_given, shares=AREA_SHARES) -> list[dict]:
    deviance = poisson_deviance(expected, actual)
    rows = []
    for share in shares:
        flagged = flagged_cells(expected, share)
        rows.append(
            {
                "issue_time": issue_time,
                "method": method,
                "area_share": share,
                "hit_rate": hit_rate(flagged, actual),
                "pai": pai(flagged, actual),
                "pei": pei(flagged, actual),
                "deviance": deviance,
                "n_incidents": int(actual.sum()),
                "latest_event_used": latest_used,
                "latest_event_given": latest_given,
            }
        )
    return rows


def backtest(
    events: pd.DataFrame,
    grid: Grid,
    issue_times,
    period: str,
    methods: dict,
    settings: MethodSettings | None = None,
    oracle=None,
    log: logging.Logger | None = None,
) -> BacktestResult:
    """Score every method at every issue time.

    `oracle(issue_time, period, history) -> (expected, latest_event_used)` adds the oracle's rows (on
    generated data: the generator's exact expected counts given the history before the issue time).
    """
    settings = settings or MethodSettings()
    log = log or logging.getLogger(__name__)
    issue_times = pd.DatetimeIndex(issue_times).sort_values()
    events = events.sort_values("time", kind="stable").reset_index(drop=True)
    actual = count_matrix(events, grid, issue_times, period)
    times = events["time"].to_numpy()
    rows, params, seconds = [], {}, {}
    for name, method in methods.items():
        started = time.perf_counter()
        method = prepare(name, method, events, grid, issue_times[0], period, settings)
        for issue_time, y in zip(issue_times, actual, strict=True):
            history = events.iloc[: int(np.searchsorted(times, np.datetime64(issue_time), side="left"))]
            given = pd.Timestamp(history["time"].iloc[-1]) if len(history) else None
            forecast = method(history, grid, issue_time, period, settings)
            if np.shape(forecast.expected) != (grid.n_cells,):
                raise ValueError(
                    f"{name} returned {np.shape(forecast.expected)} expected counts, not ({grid.n_cells},)"
                )
            rows += score_rows(name, issue_time, forecast.expected, y, forecast.latest_event_used, given)
            params[name] = forecast.params
        seconds[name] = time.perf_counter() - started
        log.info(f"backtest: {name} over {len(issue_times)} {period}s in {seconds[name]:.1f}s")
    if oracle is not None:
        started = time.perf_counter()
        for issue_time, y in zip(issue_times, actual, strict=True):
            history = events.iloc[: int(np.searchsorted(times, np.datetime64(issue_time), side="left"))]
            given = pd.Timestamp(history["time"].iloc[-1]) if len(history) else None
            expected, latest = oracle(issue_time, period, history)
            rows += score_rows(ORACLE, issue_time, np.asarray(expected, float), y, latest, given)
        seconds[ORACLE] = time.perf_counter() - started
    scores = pd.DataFrame(rows, columns=list(SCORE_COLUMNS))
    return BacktestResult(scores, summarise(scores, settings.seed, settings.n_bootstrap), params, seconds)


def leaks(scores: pd.DataFrame) -> pd.DataFrame:
    """Forecasts whose recorded latest event is at or after their issue time, or later than any event given them."""
    used = pd.to_datetime(scores["latest_event_used"])
    given = pd.to_datetime(scores["latest_event_given"])
    bad = used.notna() & ((used >= pd.to_datetime(scores["issue_time"])) | given.isna() | (used > given))
    return scores.loc[bad, ["issue_time", "method", "latest_event_used", "latest_event_given"]].drop_duplicates()


def bootstrap_interval(values: np.ndarray, seed: int = 0, n_bootstrap: int = 1000) -> tuple[float, float, float]:
    """(mean, 2.5%, 97.5%) of the mean over periods, resampling periods with replacement; NaN periods dropped."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan"), float("nan")
    picks = np.random.default_rng(seed).integers(0, len(values), size=(n_bootstrap, len(values)))
    means = values[picks].mean(axis=1)
    return float(values.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def summarise(scores: pd.DataFrame, seed: int = 0, n_bootstrap: int = 1000) -> pd.DataFrame:
    """Per method x area share: each metric's mean over issue times with its 95% bootstrap interval."""
    rows = []
    for (method, share), group in scores.groupby(["method", "area_share"], sort=False):
        row = {"method": method, "area_share": share, "n_periods": len(group)}
        for metric in METRICS:
            mean, low, high = bootstrap_interval(group[metric].to_numpy(), seed, n_bootstrap)
            row |= {metric: mean, f"{metric}_low": low, f"{metric}_high": high}
        rows.append(row)
    return pd.DataFrame(rows)


def lead_interval(scores: pd.DataFrame, method: str, other: str, share: float, metric: str = "pai", seed: int = 0):
    """(mean difference method - other, 2.5%, 97.5%) over the issue times both were scored: a paired bootstrap."""
    at = scores[scores["area_share"] == share].pivot_table(index="issue_time", columns="method", values=metric)
    return bootstrap_interval((at[method] - at[other]).to_numpy(), seed)
