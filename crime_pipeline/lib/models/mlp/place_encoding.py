"""The counting and smoothing behind the MLP's place encoding (used by `InputEncoder`).

Grid cells are integer keys; per level, each cell's per-type counts are smoothed toward the level
above (`smooth`: Dirichlet or Gamma, strength chosen by out-of-fold likelihood from `STRENGTHS`);
`Chains` carries the running estimates from coarse to fine. Training rows are counted out of fold
(`training_folds`, `oof_counts`), so no row sees its own label.
"""

from __future__ import annotations

import numpy as np

from crime_pipeline.lib.models.mlp.settings import MLPSettings


def cell_keys(lat: np.ndarray, lon: np.ndarray, scale: float, shift: float = 0.0) -> np.ndarray:
    # Cells centred on multiples of the scale (plus `shift` cells): unshifted, a coordinate rounded
    # to 3 decimals stays in its cell.
    return (
        np.round(lat / scale - shift).astype(np.int64) * 10**8
        + np.round(lon / scale - shift).astype(np.int64)
        + 5 * 10**7
    )


STRENGTHS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0)
FAMILIES = ("dirichlet", "gamma")


def training_folds(n: int, settings: MLPSettings) -> np.ndarray:
    """The fold of each training row for out-of-fold target encoding (fixed by the seed)."""
    return np.random.default_rng(settings.seed).integers(0, settings.target_folds, n)


def at_repeated_point(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Rows whose exact (6-decimal) coordinates other rows share: a store, a bar, a block point."""
    _, inverse, counts = np.unique(cell_keys(lat, lon, 1e-6), return_inverse=True, return_counts=True)
    return counts[inverse] > 1


class Chains:
    """The running estimates while walking the levels: one per grid shift over the spread levels,
    then one over the all-rows levels, which starts from the mean of the spread chains."""

    def __init__(self, prior: np.ndarray):
        self.prior, self.spread, self.all_rows = prior, {}, None

    def _spread_mean(self) -> np.ndarray:
        return np.mean(list(self.spread.values()), axis=0) if self.spread else self.prior

    def parent(self, spread_only: bool, shift: float) -> np.ndarray:
        if spread_only:
            return self.spread.get(shift, self.prior)
        return self.all_rows if self.all_rows is not None else self._spread_mean()

    def update(self, spread_only: bool, shift: float, p: np.ndarray) -> None:
        if spread_only:
            self.spread[shift] = p
        else:
            self.all_rows = p

    def final(self) -> np.ndarray:
        return self.all_rows if self.all_rows is not None else self._spread_mean()


def smooth(counts: np.ndarray, parent: np.ndarray, strength: float, family: str = "dirichlet") -> np.ndarray:
    """P(type | cell) smoothed toward `parent`.

    dirichlet: the posterior mean under a Dirichlet(strength * parent) prior (one pseudo-count
    budget shared by all types). gamma: each type's rate multiplier relative to the parent gets its
    own Gamma(strength, strength) prior, so rare and common types are shrunk by the same relative
    amount (a place that attracts twice the expected assaults is as plausible as twice the thefts).
    """
    total = counts.sum(1, keepdims=True)
    if family == "dirichlet":
        return (counts + strength * parent) / (total + strength)
    p = parent * (counts + strength) / (total * parent + strength)
    return p / p.sum(1, keepdims=True)


def fold_counts(
    cell: np.ndarray, y: np.ndarray, folds: np.ndarray, n_folds: int, shape: tuple[int, int], use: np.ndarray
) -> np.ndarray:
    """Per row, the type counts its own fold's `use` rows put in its cell."""
    n_cells, n_classes = shape
    out = np.zeros((len(y), n_classes), dtype=np.int64)
    for f in range(n_folds):
        mask = folds == f
        table = np.zeros((n_cells, n_classes), dtype=np.int64)
        np.add.at(table, (cell[mask & use], y[mask & use]), 1)
        out[mask] = table[cell[mask]]
    return out


def oof_counts(cell, y, folds, n_folds, counts, use) -> np.ndarray:
    """Per training row, its cell's type counts without the rows of its own fold."""
    return counts[cell] - fold_counts(cell, y, folds, n_folds, counts.shape, use)
