"""A learned model of counts: gradient-boosted trees with a Poisson loss over lagged, neighbouring and seasonal counts.

One row per cell and target period; the features of period k use only the periods before k: the last
period's count, the mean of the last 4 and of the last 52, the same for the 8 neighbouring cells, the
long-run mean, the week of the year and (days, shifts) the period's place in the week. Trained on the
`gbdt_train_periods` target periods before the issue time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.ndimage import correlate
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from crime_pipeline.lib.forecast.base import Forecast, MethodSettings, history_before, latest_time
from crime_pipeline.lib.forecast.counts import history_counts
from crime_pipeline.lib.forecast.grid import Grid
from crime_pipeline.lib.forecast.periods import period_length

FEATURES = ("last", "mean_4", "mean_52", "nb_last", "nb_mean_4", "nb_mean_52", "long_run", "week_of_year", "phase")
_RING = np.array([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]]) / 8


class _Counts:
    """The counts of the last `tail` periods before the issue time, with prefix sums over all the history.

    Global period k = 0 is the first period of the history and k = n the one being forecast; only the
    tail is kept as a matrix (the long-run feature needs the sums before it, not every period).
    """

    def __init__(self, history: pd.DataFrame, grid: Grid, issue_time: pd.Timestamp, period: str, tail: int):
        length = period_length(period)
        first = history["time"].min() if len(history) else issue_time - length
        self.n = max(1, int(np.ceil((issue_time - first) / length)))
        tail = min(tail, self.n)
        self.offset = self.n - tail
        self.counts = history_counts(history, grid, issue_time, period, n_periods=tail)
        older = history[history["time"] < issue_time - length * tail]
        cells = grid.cell_of(older["lat"].to_numpy(), older["lon"].to_numpy())
        base = np.bincount(cells[cells >= 0], minlength=grid.n_cells).astype(float)
        self.cum = np.vstack([base, base + np.cumsum(self.counts, axis=0)])
        self.starts = pd.date_range(end=issue_time, periods=tail + 1, freq=length)

    def cum_at(self, k: int) -> np.ndarray:
        """Counts per cell over global periods 0..k-1."""
        return self.cum[max(k, self.offset) - self.offset]

    def count_at(self, k: int) -> np.ndarray:
        return self.counts[k - self.offset]


def _features(c: _Counts, k: int, grid: Grid, period: str) -> np.ndarray:
    """Feature rows [n_cells, len(FEATURES)] of global target period k, from periods before k only."""
    lagged = [(c.cum_at(k) - c.cum_at(max(k - w, 0))) / max(min(w, k), 1) for w in (1, 4, 52)]
    near = [correlate(x.reshape(grid.shape), _RING, mode="constant").ravel() for x in lagged]
    long_run = c.cum_at(k) / max(k, 1)
    start = c.starts[k - c.offset]
    week = np.full(grid.n_cells, start.isocalendar()[1], dtype=float)
    phase_value = 0 if period == "week" else start.day_of_week * (3 if period == "shift" else 1) + start.hour // 8
    phase = np.full(grid.n_cells, phase_value, dtype=float)
    return np.column_stack([*lagged, *near, long_run, week, phase])


def _training_rows(X: np.ndarray, y: np.ndarray, max_rows: int, rng: np.random.Generator):
    """About `max_rows` of one period's rows: every cell with an incident, then zero cells sampled by kind.

    Cells with incidents are rare and carry the signal, so all are kept; the zero cells are sampled,
    half from those with any recent count nearby and half from the rest, each kept row weighing 1 / its
    sampling rate, so the Poisson loss stays an unbiased estimate of the full one while the fit's cost
    no longer grows with the grid.
    """
    positive = y > 0
    active = ~positive & (X[:, :6].sum(axis=1) > 0)
    budget = max(max_rows - int(positive.sum()), 2)
    rows, weights = [np.flatnonzero(positive)], [np.ones(int(positive.sum()))]
    for group in (np.flatnonzero(active), np.flatnonzero(~positive & ~active)):
        rate = min(1.0, budget / 2 / max(len(group), 1))
        kept = group[rng.random(len(group)) < rate] if rate < 1 else group
        rows.append(kept)
        weights.append(np.full(len(kept), 1 / rate))
    return np.concatenate(rows), np.concatenate(weights)


def fit_gbdt(history: pd.DataFrame, grid: Grid, issue_time, period: str, settings: MethodSettings):
    """The model trained on the target periods strictly before `issue_time` (their counts are all in the history);
    None when they hold no period or no event."""
    c = _Counts(history, grid, pd.Timestamp(issue_time), period, tail=settings.gbdt_train_periods + 53)
    last = c.n  # the issue period: not a training target
    targets = np.arange(max(1, last - settings.gbdt_train_periods), last)
    if len(targets) == 0:
        return None
    rng, per_period = np.random.default_rng(settings.seed), max(1, settings.gbdt_max_rows // len(targets))
    blocks = []
    for k in targets:
        X, y = _features(c, k, grid, period), c.count_at(k)
        rows, weights = _training_rows(X, y, per_period, rng)
        blocks.append((X[rows], y[rows], weights))
    X, y, weights = (np.concatenate(part) for part in zip(*blocks, strict=True))
    if not y.any():  # no event in the training window (an old file forecast for this week): nothing to learn
        return None
    # Small leaves with a Poisson loss take huge Newton steps; min_samples_leaf and l2 keep the steps sane.
    model = HistGradientBoostingRegressor(
        loss="poisson",
        max_iter=settings.gbdt_max_iter,
        learning_rate=0.1,
        max_leaf_nodes=15,
        min_samples_leaf=50,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=settings.seed,
    )
    # One OpenMP thread: these fits are small, and on a shared 2-core machine spinning threads made one 10x slower.
    with threadpool_limits(limits=1, user_api="openmp"):
        return model.fit(X, y, sample_weight=weights)


def poisson_gbdt(
    history: pd.DataFrame, grid: Grid, issue_time, period: str, settings: MethodSettings, model=None, fitted_before=None
) -> Forecast:
    """The learned forecast; without `model`, one is trained on this history first."""
    issue_time = pd.Timestamp(issue_time)
    history = history_before(history, issue_time, period)
    if model is None:
        model, fitted_before = fit_gbdt(history, grid, issue_time, period, settings), issue_time
    elif issue_time < fitted_before:
        raise ValueError(f"poisson_gbdt was trained on events before {fitted_before}; it cannot forecast {issue_time}")
    c = _Counts(history, grid, issue_time, period, tail=53)
    if model is None:  # too little history to train, or none recent: the long-run mean
        expected = c.cum_at(c.n) / c.n
    else:
        with threadpool_limits(limits=1, user_api="openmp"):
            expected = model.predict(_features(c, c.n, grid, period))
        # The log link extrapolates without bound on features outside the training range (seen: 1e256 on
        # Chicago's grid); no cell is expected to exceed twice the most any cell held in a recent period.
        expected = np.minimum(expected, 2.0 * max(1.0, float(c.counts.max(initial=0.0))))
    params = {
        "trained_before": str(fitted_before),
        "train_periods": settings.gbdt_train_periods,
        "max_iter": settings.gbdt_max_iter,
        "max_rows": settings.gbdt_max_rows,
        "features": list(FEATURES),
    }
    if model is None:
        params["fallback"] = "the long-run mean: too little history, or no event in the training window"
    return Forecast("poisson_gbdt", issue_time, np.asarray(expected, float), latest_time(history), params)


def prepare_gbdt(history: pd.DataFrame, grid: Grid, issue_time, period: str, settings: MethodSettings):
    """The learned method trained once on the history before `issue_time` (the first one)."""
    issue_time = pd.Timestamp(issue_time)
    model = fit_gbdt(history_before(history, issue_time, period), grid, issue_time, period, settings)

    def trained_gbdt(history, grid, issue_time_, period, settings_=None):
        return poisson_gbdt(history, grid, issue_time_, period, settings, model=model, fitted_before=issue_time)

    return trained_gbdt
