"""Tiny grids and planted events with a known answer, shared by the forecast library's tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crime_pipeline.lib.forecast.grid import METRES_PER_DEGREE_LAT, Grid

CELL_M = 100.0


def square_grid(n: int, cell_m: float = CELL_M) -> Grid:
    """An n x n grid at the equator (cells are squares of cell_m to within a part in 10^8)."""
    side = n * cell_m / METRES_PER_DEGREE_LAT
    return Grid(0.0, side, 0.0, side * (1 - 1e-9), cell_m)


def point_in(grid: Grid, cell: int, rng: np.random.Generator, size: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """`size` uniform points inside `cell`."""
    row, col = divmod(cell, grid.n_cols)
    lat = grid.lat_min + grid.dlat * (row + rng.uniform(0.05, 0.95, size))
    lon = grid.lon_min + grid.dlon * (col + rng.uniform(0.05, 0.95, size))
    return lat, lon


def events_frame(times, lat, lon, known=None) -> pd.DataFrame:
    times = pd.to_datetime(np.asarray(times))
    known = np.ones(len(times), bool) if known is None else np.asarray(known, bool)
    frame = pd.DataFrame({"time": times, "lat": lat, "lon": lon, "time_known": known, "label": "event"})
    return frame.sort_values("time", kind="stable").reset_index(drop=True)


def planted(
    grid: Grid, start: str, days: int, rng: np.random.Generator, per_day: dict[int, float], background_per_day: float
) -> pd.DataFrame:
    """Poisson events: `per_day[cell]` a day at those cells, plus `background_per_day` spread uniformly."""
    parts_t, parts_lat, parts_lon = [], [], []
    origin = pd.Timestamp(start)
    for cell, rate in [*per_day.items(), *((None, background_per_day),)]:
        n = rng.poisson(rate * days)
        when = origin + pd.to_timedelta(rng.uniform(0, days, n), unit="D")
        cells = rng.integers(0, grid.n_cells, n) if cell is None else np.full(n, cell)
        lat, lon = zip(*(point_in(grid, int(c), rng) for c in cells), strict=True) if n else ((), ())
        parts_t.append(when)
        parts_lat.append(np.ravel(lat))
        parts_lon.append(np.ravel(lon))
    return events_frame(np.concatenate(parts_t), np.concatenate(parts_lat), np.concatenate(parts_lon))


def hawkes(
    grid: Grid,
    start: str,
    days: int,
    rng: np.random.Generator,
    background_per_day: float,
    theta: float,
    mean_lag_days: float,
    sigma_m: float,
) -> pd.DataFrame:
    """A self-exciting process on the grid: uniform Poisson background, each event begetting Poisson(theta)
    offspring after an exponential lag (mean `mean_lag_days`) at a Gaussian offset (sd `sigma_m`)."""
    n = rng.poisson(background_per_day * days)
    t = rng.uniform(0, days, n)
    lat = rng.uniform(grid.lat_min, grid.lat_max, n)
    lon = rng.uniform(grid.lon_min, grid.lon_max, n)
    all_t, all_lat, all_lon = [t], [lat], [lon]
    while len(t):
        kids = rng.poisson(theta, len(t))
        t = np.repeat(t, kids) + rng.exponential(mean_lag_days, kids.sum())
        lat = np.repeat(lat, kids) + rng.normal(0, sigma_m, kids.sum()) / METRES_PER_DEGREE_LAT
        lon = np.repeat(lon, kids) + rng.normal(0, sigma_m, kids.sum()) / METRES_PER_DEGREE_LAT
        keep = t < days
        t, lat, lon = t[keep], lat[keep], lon[keep]
        all_t.append(t), all_lat.append(lat), all_lon.append(lon)
    when = pd.Timestamp(start) + pd.to_timedelta(np.concatenate(all_t), unit="D")
    return events_frame(when, np.concatenate(all_lat), np.concatenate(all_lon))
