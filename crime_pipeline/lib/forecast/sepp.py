"""A self-exciting point process (ETAS-like): background plus near-repeat triggering, fitted by EM.

The model of Mohler et al. (JASA 2011, "Self-exciting point process modeling of crime"; the 2015 field
trial): intensity(t, cell) = mu(cell) + sum over earlier events j of theta * k(t - t_j) * g(cell - cell_j),
with k exponential in time and g Gaussian in space, theta the branching ratio (offspring per event).

Made fast by binning: events are counted per day and cell over the `sepp_train_days` before the
issue time; the background is a binned kernel density of the (probabilistically) background events,
each spread by its distance to its k-th nearest neighbour (Mohler's variable bandwidth);
triggering is truncated to `sepp_window_days` (the lag kernel is geometric over lags of 1..W days,
so offspring on their parent's own day are not modelled) and to `sepp_cutoff_cells` cells. The pairs
of event cell-days that can be parent and child are listed once; an EM iteration is a few vector passes
over them (about a million for a year of Buffalo's ~20,000 incidents on 150 m cells). The forecast
(`sepp_expected`) integrates the fitted exponential over the period in continuous time, from each
event's age in days: for week-long periods the difference from the fitted whole-day lags is a
fraction of one day's mass; for day and shift periods it is larger and not corrected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.ndimage import correlate, gaussian_filter
from scipy.optimize import brentq
from scipy.spatial import cKDTree

from crime_pipeline.lib.forecast.base import Forecast, MethodSettings, history_before, latest_time
from crime_pipeline.lib.forecast.grid import Grid
from crime_pipeline.lib.forecast.periods import period_days


@dataclass
class SeppFit:
    theta: float  # branching ratio: expected offspring per event
    q: float  # daily decay of the lag kernel, exp(-omega)
    sigma_m: float  # spatial spread of offspring
    mu: np.ndarray  # background events per day, per cell
    fitted_before: pd.Timestamp
    n_events: int
    iterations: int

    @property
    def omega(self) -> float:
        return float(-np.log(self.q))

    def params(self, settings: MethodSettings) -> dict:
        return {
            "mu_total_per_day": float(self.mu.sum()),
            "theta": float(self.theta),
            "omega_per_day": self.omega,
            "sigma_m": float(self.sigma_m),
            "n_events": int(self.n_events),
            "em_iterations": int(self.iterations),
            "train_days": settings.sepp_train_days,
            "window_days": settings.sepp_window_days,
            "cutoff_cells": settings.sepp_cutoff_cells,
            "background_k": settings.sepp_background_k,
            "fitted_before": str(self.fitted_before),
        }


def _kernels(sigma_m: float, grid: Grid, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """The truncated Gaussian over cell offsets (sums to 1) and its squared distances (m^2)."""
    k = np.arange(-radius, radius + 1) * grid.cell_m
    r2 = k[:, None] ** 2 + k[None, :] ** 2
    g = np.exp(-r2 / (2 * sigma_m**2))
    return g / g.sum(), r2


def _lag_mean(q: float, window: int) -> float:
    lags = np.arange(1, window + 1)
    p = q ** (lags - 1.0)
    return float((lags * p).sum() / p.sum())


def _q_for_mean(mean_lag: float, window: int) -> float:
    hi = _lag_mean(1 - 1e-9, window)
    if mean_lag >= hi - 1e-6:
        return 1 - 1e-9
    if mean_lag <= 1 + 1e-6:
        return 1e-6
    return float(brentq(lambda q: _lag_mean(q, window) - mean_lag, 1e-6, 1 - 1e-9, xtol=1e-8))


class _Window:
    """Event counts per day and cell over the training window, and every (child, parent) pair of cell-days.

    A pair is a parent cell-day 1..W days before its child's and within the cutoff in rows and columns;
    the pairs do not depend on the parameters, so each EM iteration is a few passes over them.
    """

    def __init__(self, history: pd.DataFrame, grid: Grid, issue_time: pd.Timestamp, settings: MethodSettings):
        start_day = issue_time.normalize() - pd.Timedelta(days=settings.sepp_train_days)
        recent = history[history["time"] >= start_day]
        cells = grid.cell_of(recent["lat"].to_numpy(), recent["lon"].to_numpy())
        day = ((recent["time"] - start_day) // pd.Timedelta(days=1)).to_numpy()
        keep = cells >= 0
        self.grid, self.days = grid, settings.sepp_train_days + 1  # the issue day holds events before it
        self.window, R = int(round(settings.sepp_window_days)), settings.sepp_cutoff_cells
        key, inverse, n = np.unique(day[keep] * grid.n_cells + cells[keep], return_inverse=True, return_counts=True)
        self.bandwidth = _bandwidth_class(recent[keep], inverse, len(key), grid, settings.sepp_background_k)
        self.day, self.cell, self.n = key // grid.n_cells, key % grid.n_cells, n.astype(float)
        self.total = float(self.n.sum())
        self.child, parent, self.lag, self.offset = self._pairs(R)
        self.n_parent = self.n[parent]
        k = np.arange(-R, R + 1)
        self.offset_r2 = ((k[:, None] ** 2 + k[None, :] ** 2) * grid.cell_m**2).ravel()
        self.pair_r2 = self.offset_r2[self.offset]

    def _pairs(self, R: int):
        grid, D, W = self.grid, self.days, self.window
        row, col = self.cell // grid.n_cols, self.cell % grid.n_cols
        order = np.lexsort((self.day, self.cell))
        keys = (self.cell * D + self.day)[order]
        children, parents, offsets = [], [], []
        for o, (dr, dc) in enumerate((dr, dc) for dr in range(-R, R + 1) for dc in range(-R, R + 1)):
            pr, pc = row + dr, col + dc
            i = np.flatnonzero((pr >= 0) & (pr < grid.n_rows) & (pc >= 0) & (pc < grid.n_cols))
            base = (pr[i] * grid.n_cols + pc[i]) * D
            lo = np.searchsorted(keys, base + np.maximum(self.day[i] - W, 0), "left")
            hi = np.searchsorted(keys, base + self.day[i] - 1, "right")
            count = np.maximum(hi - lo, 0)
            first = np.repeat(lo - (np.cumsum(count) - count), count)
            children.append(np.repeat(i, count))
            parents.append(order[first + np.arange(count.sum())])
            offsets.append(np.full(count.sum(), o))
        child, parent = np.concatenate(children), np.concatenate(parents)
        return child, parent, self.day[child] - self.day[parent], np.concatenate(offsets)


BANDWIDTH_CELLS = 2.0 ** np.arange(-2, 5)  # 0.25 .. 16 cells: the background's kernel widths, by powers of 2


def _bandwidth_class(events: pd.DataFrame, inverse: np.ndarray, n_keys: int, grid: Grid, k: int) -> np.ndarray:
    """Per cell-day, the index in BANDWIDTH_CELLS nearest the distance from its events to their k-th neighbour.

    Mohler et al.'s variable bandwidth: narrow where incidents crowd (a busy address keeps its own steady
    rate, instead of lending its repeats to the triggering kernel), wide where they are sparse (an isolated
    incident does not explain itself as background).
    """
    if len(events) <= 1:
        return np.zeros(n_keys, dtype=int)
    in_cells = np.column_stack([events["lat"].to_numpy(), events["lon"].to_numpy()]) / [grid.dlat, grid.dlon]
    distance, _ = cKDTree(in_cells).query(in_cells, k=min(k, len(events) - 1) + 1)
    kth = np.bincount(inverse, distance[:, -1], n_keys) / np.bincount(inverse, minlength=n_keys)
    level = np.log2(np.maximum(kth, BANDWIDTH_CELLS[0]))
    return np.clip(np.rint(level - np.log2(BANDWIDTH_CELLS[0])), 0, len(BANDWIDTH_CELLS) - 1).astype(int)


def _smooth_background(win, weights: np.ndarray) -> np.ndarray:
    """Background events per day per cell: each cell-day's weight spread by its own bandwidth."""
    grid, out = win.grid, np.zeros(win.grid.shape)
    for level in np.unique(win.bandwidth):
        at = win.bandwidth == level
        binned = np.bincount(win.cell[at], weights[at], grid.n_cells).reshape(grid.shape)
        out += gaussian_filter(binned, sigma=BANDWIDTH_CELLS[level], mode="reflect", truncate=3)
    return out.ravel() / win.days


def _e_step(win: _Window, mu: np.ndarray, theta: float, q: float, sigma_m: float):
    """Each pair's share of its child's intensity, and each cell-day's background share, weighted by counts."""
    g = np.exp(-win.offset_r2 / (2 * sigma_m**2))
    g /= g.sum()
    lag_kernel = (1 - q) * q ** np.arange(-1.0, win.window) / (1 - q**win.window)  # by lag 0..W (0 unused)
    a = (theta * lag_kernel)[win.lag] * g[win.offset] * win.n_parent
    trig = np.bincount(win.child, a, minlength=len(win.n))
    lam = np.maximum(mu[win.cell] + trig, 1e-12)
    pair_w = a * (win.n / lam)[win.child]  # expected offspring-parent links
    return pair_w, win.n * mu[win.cell] / lam  # background weight per cell-day


def fit_sepp(history: pd.DataFrame, grid: Grid, issue_time, settings: MethodSettings, start: SeppFit | None = None):
    """EM on the events of the `sepp_train_days` before `issue_time`; returns the SeppFit.

    With `start`, the kernel (theta, decay, sigma) is kept and only the background is refitted on this
    window (three EM steps): how a forecast at a later issue time conditions on the newer history.
    """
    issue_time = pd.Timestamp(issue_time)
    win = _Window(history, grid, issue_time, settings)
    if start is not None:
        theta, q, sigma, mu, steps = start.theta, start.q, start.sigma_m, start.mu.copy(), 3
    else:
        theta, q, sigma, steps = 0.2, float(np.exp(-1 / 7)), grid.cell_m, settings.sepp_iterations
        mu = 0.5 * _smooth_background(win, win.n)
    if win.total == 0:
        return SeppFit(theta, q, sigma, np.zeros(grid.n_cells), issue_time, 0, 0)
    iterations = 0
    for _ in range(steps):
        iterations += 1
        pair_w, background = _e_step(win, mu, theta, q, sigma)
        mu = _smooth_background(win, background)
        if start is not None:
            continue  # the kernel stays as fitted; only the background follows the newer history
        old = (theta, q, sigma)
        P = max(float(pair_w.sum()), 1e-9)
        theta = min(P / win.total, 0.95)
        q = _q_for_mean(float(pair_w @ win.lag.astype(float)) / P, win.window)
        r2 = float(pair_w @ win.pair_r2) / P
        cutoff = settings.sepp_cutoff_cells * grid.cell_m
        sigma = float(np.clip(np.sqrt(r2 / 2), grid.cell_m / 4, cutoff))
        if max(abs(a - b) / max(abs(b), 1e-9) for a, b in zip((theta, q, sigma), old, strict=True)) < 1e-3:
            break
    if start is not None:  # report when and how the kernel was fitted, not this background refit
        return SeppFit(theta, q, sigma, mu, start.fitted_before, start.n_events, start.iterations)
    return SeppFit(theta, q, sigma, mu, issue_time, int(win.total), iterations)


def sepp_expected(history: pd.DataFrame, grid: Grid, issue_time, period: str, fit: SeppFit, settings) -> np.ndarray:
    """Background plus the offspring expected in [issue_time, +period) from events of the last W days."""
    issue_time = pd.Timestamp(issue_time)
    days = period_days(period)
    recent = history[history["time"] >= issue_time - pd.Timedelta(days=settings.sepp_window_days)]
    cells = grid.cell_of(recent["lat"].to_numpy(), recent["lon"].to_numpy())
    age = ((issue_time - recent["time"]) / pd.Timedelta(days=1)).to_numpy()[cells >= 0]
    W, omega = settings.sepp_window_days, fit.omega
    mass = (np.exp(-omega * age) - np.exp(-omega * np.minimum(age + days, W))) / -np.expm1(-omega * W)
    sources = np.bincount(cells[cells >= 0], fit.theta * mass, minlength=grid.n_cells).reshape(grid.shape)
    g, _ = _kernels(fit.sigma_m, grid, settings.sepp_cutoff_cells)
    return fit.mu * days + correlate(sources, g, mode="constant").ravel()


def sepp(history: pd.DataFrame, grid: Grid, issue_time, period: str, settings: MethodSettings, fit=None) -> Forecast:
    """The self-exciting forecast; without `fit`, EM fits the kernel on this history first."""
    issue_time = pd.Timestamp(issue_time)
    history = history_before(history, issue_time, period)
    if fit is None:
        fit = fit_sepp(history, grid, issue_time, settings)
    else:
        if issue_time < fit.fitted_before:
            raise ValueError(f"sepp was fitted on events before {fit.fitted_before}; it cannot forecast {issue_time}")
        fit = fit_sepp(history, grid, issue_time, settings, start=fit)
    expected = sepp_expected(history, grid, issue_time, period, fit, settings)
    used = history[history["time"] >= issue_time.normalize() - pd.Timedelta(days=settings.sepp_train_days)]
    return Forecast("sepp", issue_time, expected, latest_time(used), fit.params(settings))


def prepare_sepp(history: pd.DataFrame, grid: Grid, issue_time, period: str, settings: MethodSettings):
    """The sepp method with its kernel fitted once on the history before `issue_time` (the first one)."""
    issue_time = pd.Timestamp(issue_time)
    fit = fit_sepp(history_before(history, issue_time, period), grid, issue_time, settings)

    def fitted_sepp(history, grid, issue_time, period, settings_=None):
        return sepp(history, grid, issue_time, period, settings, fit=fit)

    return fitted_sepp
