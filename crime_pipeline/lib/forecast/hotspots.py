"""Significant hotspots, descriptively: the Getis-Ord Gi* statistic per cell.

Written with numpy/scipy on the grid rather than with PySAL's esda (the well-kept library for this):
esda pulls libpysal, geopandas, shapely and pyproj, a heavy stack for one statistic on a regular grid.
Weights are binary queen contiguity within `distance_cells`, the cell itself included (the "star");
Gi* is Getis & Ord (1992) / Ord & Getis (1995) in its z-score form, so it is already standard normal
under the null of no spatial association; p is two-sided. No multiple-testing correction: read the
map as description, not as thousands of independent tests.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.ndimage import correlate
from scipy.stats import norm

from crime_pipeline.lib.forecast.grid import Grid


def gi_star(counts: np.ndarray, grid: Grid, distance_cells: int = 1, alpha: float = 0.05) -> pd.DataFrame:
    """DataFrame[cell, z, p, hot, cold]: Gi* z-score, two-sided p, and whether p < alpha with z > 0 (< 0)."""
    x = np.asarray(counts, dtype=float).reshape(grid.shape)
    n = x.size
    window = np.ones((2 * distance_cells + 1,) * 2)
    local_sum = correlate(x, window, mode="constant").ravel()
    weight_sum = correlate(np.ones_like(x), window, mode="constant").ravel()  # binary: sum w = sum w^2
    mean = x.mean()
    s = np.sqrt(max((x**2).mean() - mean**2, 0.0))
    denom = s * np.sqrt((n * weight_sum - weight_sum**2) / (n - 1)) if n > 1 else np.zeros(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(denom > 0, (local_sum - mean * weight_sum) / denom, 0.0)
    p = 2 * norm.sf(np.abs(z))
    return pd.DataFrame(
        {"cell": np.arange(n), "z": z, "p": p, "hot": (p < alpha) & (z > 0), "cold": (p < alpha) & (z < 0)}
    )
