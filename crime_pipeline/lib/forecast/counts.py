"""Incidents per cell per period: the count matrix every method and score is built on."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from crime_pipeline.lib.forecast.events import countable
from crime_pipeline.lib.forecast.grid import Grid
from crime_pipeline.lib.forecast.periods import period_length


def count_matrix(events: pd.DataFrame, grid: Grid, starts: Sequence, period: str) -> np.ndarray:
    """float64 [len(starts), n_cells]: events in [start, start + period) per cell, for each start.

    `starts` are increasing period starts (not necessarily consecutive). Events outside the grid
    and, for shifts, events whose time of day is unknown are not counted.
    """
    starts = pd.DatetimeIndex(starts).as_unit("ns").asi8
    out = np.zeros((len(starts), grid.n_cells))
    if len(starts) == 0 or len(events) == 0:
        return out
    keep = countable(events, period)
    times = events["time"].to_numpy(dtype="datetime64[ns]").astype(np.int64)[keep]
    cells = grid.cell_of(events["lat"].to_numpy()[keep], events["lon"].to_numpy()[keep])
    idx = np.searchsorted(starts, times, side="right") - 1
    ok = (idx >= 0) & (cells >= 0)
    ok[ok] &= times[ok] < starts[idx[ok]] + period_length(period).value
    flat = np.bincount(idx[ok] * grid.n_cells + cells[ok], minlength=out.size)
    return flat.reshape(out.shape).astype(float)


def history_counts(
    history: pd.DataFrame, grid: Grid, issue_time: pd.Timestamp, period: str, n_periods: int | None = None
) -> np.ndarray:
    """Counts of the `n_periods` periods just before `issue_time`, oldest first.

    None: every period back to the one holding the earliest event (at least one row).
    """
    length = period_length(period)
    if n_periods is None:
        first = history["time"].min() if len(history) else issue_time - length
        n_periods = max(1, int(np.ceil((issue_time - first) / length)))
    starts = pd.DatetimeIndex([issue_time - length * k for k in range(n_periods, 0, -1)])
    return count_matrix(history, grid, starts, period)
