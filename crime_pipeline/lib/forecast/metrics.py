"""How good a hotspot forecast is: hit rate, PAI and PEI of its flagged cells, and the Poisson deviance.

PAI (predictive accuracy index) = (share of incidents in the flagged cells) / (share of area flagged);
PEI (predictive efficiency index) = incidents caught / the most any same number of cells could have
caught (NIJ Real-Time Crime Forecasting Challenge, 2017). Cells are equal in area, so area is cell count.
"""

from __future__ import annotations

import numpy as np

AREA_SHARES = (0.01, 0.02, 0.05)
EPSILON = 1e-6  # expected counts are floored here for the deviance: a forecast of 0 with an incident is not -inf


def n_flagged(n_cells: int, share: float) -> int:
    """Cells flagged for an area share: the nearest whole number of cells, at least one."""
    return int(min(n_cells, max(1, round(share * n_cells))))


def flagged_cells(expected: np.ndarray, share: float) -> np.ndarray:
    """bool [n_cells]: the cells with the highest expected counts covering `share` of the cells.

    Ties are broken by cell index (the lower first), so the same forecast always flags the same cells.
    """
    expected = np.nan_to_num(np.asarray(expected, dtype=float), nan=-np.inf)
    order = np.argsort(-expected, kind="stable")
    out = np.zeros(len(expected), dtype=bool)
    out[order[: n_flagged(len(expected), share)]] = True
    return out


def hit_rate(flagged: np.ndarray, actual: np.ndarray) -> float:
    """Share of the period's incidents that fell in the flagged cells (NaN when there were none)."""
    total = float(np.sum(actual))
    return float(np.sum(actual[flagged])) / total if total > 0 else float("nan")


def pai(flagged: np.ndarray, actual: np.ndarray) -> float:
    return hit_rate(flagged, actual) / (np.count_nonzero(flagged) / len(flagged))


def pei(flagged: np.ndarray, actual: np.ndarray) -> float:
    """Incidents caught / the most that the same number of cells could have caught (NaN when none happened)."""
    best = float(np.sort(np.asarray(actual, dtype=float))[::-1][: np.count_nonzero(flagged)].sum())
    return float(np.sum(actual[flagged])) / best if best > 0 else float("nan")


def poisson_deviance(expected: np.ndarray, actual: np.ndarray) -> float:
    """Mean Poisson deviance per cell: 2 * mean(y log(y / mu) - (y - mu)), mu floored at EPSILON. Lower is better."""
    mu = np.maximum(np.asarray(expected, dtype=float), EPSILON)
    y = np.asarray(actual, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(y / mu), 0.0)
    return float(2 * np.mean(term - (y - mu)))


def pai_curve(expected: np.ndarray, actual: np.ndarray, shares) -> np.ndarray:
    """PAI at each area share in `shares` (for PAI-vs-area curves)."""
    return np.array([pai(flagged_cells(expected, s), actual) for s in shares])
