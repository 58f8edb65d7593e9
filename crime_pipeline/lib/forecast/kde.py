"""Time-decayed kernel density: recent incidents weigh more, spread over nearby cells by a Gaussian kernel.

Each event before the issue time gets weight exp(-age / decay); the weights are binned on the grid and
smoothed by a Gaussian of the chosen bandwidth; dividing by the weights' integral over the history
gives a decay-weighted rate, times the period's length the expected count. The bandwidth and the decay
are chosen on a validation window of periods before the first issue time (`tune_kde`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter

from crime_pipeline.lib.forecast.base import Forecast, MethodSettings, history_before, latest_time
from crime_pipeline.lib.forecast.counts import count_matrix
from crime_pipeline.lib.forecast.grid import Grid
from crime_pipeline.lib.forecast.metrics import AREA_SHARES, flagged_cells, pai, poisson_deviance
from crime_pipeline.lib.forecast.periods import period_days, period_length

DAY = pd.Timedelta(days=1)


def _weights(ages_days: np.ndarray, cells: np.ndarray, n_cells: int, decay_days: float) -> np.ndarray:
    return np.bincount(cells, np.exp(-ages_days / decay_days), minlength=n_cells)


def _surface(binned: np.ndarray, grid: Grid, bandwidth_m: float, decay_days: float, span_days: float, days: float):
    smooth = gaussian_filter(binned.reshape(grid.shape), sigma=bandwidth_m / grid.cell_m, mode="constant", truncate=3)
    integral = decay_days * -np.expm1(-max(span_days, days) / decay_days)  # integral of the decay over the history
    return smooth.ravel() / integral * days


def _located(history: pd.DataFrame, grid: Grid):
    cells = grid.cell_of(history["lat"].to_numpy(), history["lon"].to_numpy())
    keep = cells >= 0
    return history["time"].to_numpy()[keep], cells[keep]


def kde(history: pd.DataFrame, grid: Grid, issue_time, period: str, settings: MethodSettings) -> Forecast:
    """Time-decayed KDE; a bandwidth or decay left None in `settings` is chosen first on this history."""
    issue_time = pd.Timestamp(issue_time)
    history = history_before(history, issue_time, period)
    if settings.kde_bandwidth_m is None or settings.kde_decay_days is None:
        settings = tune_kde(history, grid, issue_time, period, settings)
    times, cells = _located(history, grid)
    ages = (np.datetime64(issue_time) - times) / np.timedelta64(1, "D")
    span = float(ages.max()) if len(ages) else 0.0
    binned = _weights(ages, cells, grid.n_cells, settings.kde_decay_days)
    expected = _surface(binned, grid, settings.kde_bandwidth_m, settings.kde_decay_days, span, period_days(period))
    params = {"bandwidth_m": settings.kde_bandwidth_m, "decay_days": settings.kde_decay_days}
    return Forecast("kde", issue_time, expected, latest_time(history), params)


def tune_kde(history: pd.DataFrame, grid: Grid, issue_time, period: str, settings: MethodSettings) -> MethodSettings:
    """Settings with the bandwidth and decay that scored best on the `validation_periods` periods before issue_time.

    Each validation period is forecast from the events before it, as in the backtest; the score is the
    mean PAI at 1/2/5% (higher is better) or the Poisson deviance (lower), per `kde_criterion`.
    """
    issue_time = pd.Timestamp(issue_time)
    history = history_before(history, issue_time, period)
    length, days = period_length(period), period_days(period)
    starts = pd.DatetimeIndex([issue_time - length * k for k in range(settings.validation_periods, 0, -1)])
    actual = count_matrix(history, grid, starts, period)
    times, cells = _located(history, grid)
    bandwidths = [settings.kde_bandwidth_m] if settings.kde_bandwidth_m else list(settings.kde_bandwidths_m)
    decays = [settings.kde_decay_days] if settings.kde_decay_days else list(settings.kde_decays_days)
    scores = np.zeros((len(bandwidths), len(decays)))
    for start, y in zip(starts, actual, strict=True):
        before = times < np.datetime64(start)
        if not before.any() or y.sum() == 0:
            continue
        ages = (np.datetime64(start) - times[before]) / np.timedelta64(1, "D")
        for j, decay in enumerate(decays):
            binned = _weights(ages, cells[before], grid.n_cells, decay)
            for i, bandwidth in enumerate(bandwidths):
                expected = _surface(binned, grid, bandwidth, decay, float(ages.max()), days)
                if settings.kde_criterion == "deviance":
                    scores[i, j] -= poisson_deviance(expected, y)
                else:
                    scores[i, j] += np.mean([pai(flagged_cells(expected, s), y) for s in AREA_SHARES])
    i, j = np.unravel_index(np.argmax(scores), scores.shape)  # ties: the first (narrowest, fastest-decaying)
    return replace(settings, kde_bandwidth_m=float(bandwidths[i]), kde_decay_days=float(decays[j]))


def prepare_kde(history: pd.DataFrame, grid: Grid, issue_time, period: str, settings: MethodSettings):
    """The kde method with its bandwidth and decay fixed on the history before `issue_time` (the first one)."""
    tuned = tune_kde(history, grid, issue_time, period, settings)
    fitted_before = pd.Timestamp(issue_time)

    def tuned_kde(history, grid, issue_time, period, settings=None):
        if pd.Timestamp(issue_time) < fitted_before:
            raise ValueError(f"kde was tuned on events before {fitted_before}; it cannot forecast from {issue_time}")
        forecast = kde(history, grid, issue_time, period, tuned)
        forecast.params["tuned_before"] = str(fitted_before)
        return forecast

    return tuned_kde
