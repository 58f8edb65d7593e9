"""What goes in front of the MLP's trunk: `InputEncoder`, fitted on training rows, saved as plain JSON.

One-hot hour, weekday and month, Fourier features of the coordinates, learned embeddings of grid
cells at several scales, and the smoothed place (target) encoding whose counting lives in
place_encoding.py. The encoder reads the same scaled feature matrix every other model gets (it
undoes the MinMax scaling for the columns it needs).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from crime_pipeline.lib.models.mlp.place_encoding import (
    FAMILIES,
    STRENGTHS,
    Chains,
    at_repeated_point,
    cell_keys,
    fold_counts,
    oof_counts,
    smooth,
    training_folds,
)
from crime_pipeline.lib.models.mlp.settings import MLPSettings


@dataclass
class InputEncoder:
    """What goes in front of the trunk; fitted on training rows, saved as plain JSON."""

    features: list[str]
    scaler: dict[str, list[float]]
    one_hot_time: bool
    fourier: int  # frequencies per coordinate (0 = none): 1, 2, 4, ... cycles over the training range
    scales: list[float]  # grid-cell sizes in degrees
    vocab: list[list[int]]  # per scale: sorted keys of cells seen often enough in training
    # Target encoding (empty = none): per level, coarse to fine, the cell size, the sorted keys of
    # training cells with counts, their per-type counts and the smoothing; plus the type counts.
    target_scales: list[float] = field(default_factory=list)
    target_keys: list[list[int]] = field(default_factory=list)
    target_counts: list[list[list[int]]] = field(default_factory=list)
    target_spread: list[bool] = field(default_factory=list)  # level counts only rows at no repeated point
    target_strength: list[float] = field(default_factory=list)
    target_family: list[str] = field(default_factory=list)  # how each level is smoothed (see place_encoding.smooth)
    target_shift: list[float] = field(default_factory=list)  # grid offset of each level, in cells
    # Per level (empty lists: no split): sorted keys of cells holding a repeated point, and their smoothing.
    target_point_keys: list[list[int]] = field(default_factory=list)
    target_point_strength: list[float] = field(default_factory=list)
    target_point_family: list[str] = field(default_factory=list)
    class_counts: list[int] = field(default_factory=list)
    target_offset: bool = False  # append log P(type | finest cell) as the logits' offset columns

    @classmethod
    def fit(
        cls,
        x_train: np.ndarray,
        features: list[str],
        scaler: dict,
        settings: MLPSettings,
        y_train: np.ndarray | None = None,
        n_classes: int | None = None,
    ) -> InputEncoder:
        enc = cls(list(features), dict(scaler), settings.one_hot_time, settings.fourier, list(settings.cell_scales), [])
        if enc.scales:
            lat, lon = enc._raw(x_train, "latitude"), enc._raw(x_train, "longitude")
            for scale in enc.scales:
                keys, counts = np.unique(cell_keys(lat, lon, scale), return_counts=True)
                enc.vocab.append(keys[counts >= settings.cell_min_count].tolist())
        if settings.target_scales or settings.spread_scales:
            if y_train is None or n_classes is None:
                raise ValueError("target encoding needs the training labels and the number of classes")
            enc._fit_targets(x_train, np.asarray(y_train), n_classes, settings)
        return enc

    def _fit_targets(self, x: np.ndarray, y: np.ndarray, n_classes: int, settings: MLPSettings) -> None:
        """Counts per cell and, per level, the smoothing that maximises the out-of-fold likelihood.

        Levels run coarse to fine, first over the rows at no repeated exact point (the spread-out
        incidents: a smooth map of types; one chain per grid shift), then over all rows, each
        smoothed toward the one before (the first all-rows level toward the chains' mean).
        """
        spread = sorted(settings.spread_scales, reverse=True)
        shifts = [i / settings.spread_shifts for i in range(settings.spread_shifts)] if spread else []
        self.target_scales = spread * len(shifts) + sorted(settings.target_scales, reverse=True)
        self.target_spread = [True] * len(spread) * len(shifts) + [False] * len(settings.target_scales)
        self.target_shift = [sh for sh in shifts for _ in spread] + [0.0] * len(settings.target_scales)
        self.target_offset = settings.target_offset
        self.class_counts = np.bincount(y, minlength=n_classes).tolist()
        lat, lon = self._raw(x, "latitude"), self._raw(x, "longitude")
        folds, at_point = training_folds(len(y), settings), at_repeated_point(lat, lon)
        chains = Chains(np.broadcast_to(self._prior(), (len(y), n_classes)))
        for scale, spread_only, shift in zip(self.target_scales, self.target_spread, self.target_shift):
            use = ~at_point if spread_only else np.ones(len(y), dtype=bool)
            inverse, counts = self._count_level(lat, lon, y, scale, use, n_classes, shift)
            own = oof_counts(inverse, y, folds, settings.target_folds, counts, use)
            parent = chains.parent(spread_only, shift)
            split = settings.point_cells and not spread_only
            points = np.unique(cell_keys(lat, lon, scale, shift)[at_point]) if split else np.empty(0, np.int64)
            self.target_point_keys.append(points.tolist())
            flag = np.isin(cell_keys(lat, lon, scale, shift), points)
            chosen = []
            for rows in (~flag, flag):  # cells without and with a repeated point, each its best smoothing
                chosen.append(
                    max(
                        ((f, m) for f in FAMILIES for m in STRENGTHS),
                        key=lambda fm: np.log(
                            smooth(own[rows], parent[rows], fm[1], fm[0])[np.arange(rows.sum()), y[rows]]
                        ).sum(),
                    )
                    if rows.any()
                    else ("gamma", 1.0)
                )
            (family, best), (point_family, point_best) = chosen
            self.target_strength.append(float(best))
            self.target_family.append(family)
            self.target_point_strength.append(float(point_best))
            self.target_point_family.append(point_family)
            chains.update(spread_only, shift, self._smooth_level(own, parent, len(self.target_strength) - 1, flag))

    def _smooth_level(self, counts, parent, level: int, flag: np.ndarray) -> np.ndarray:
        """One level's estimate: cells with a repeated point use their own smoothing."""
        p = smooth(counts, parent, self.target_strength[level], self.target_family[level])
        if not self.target_point_strength or not flag.any():
            return p
        q = smooth(counts, parent, self.target_point_strength[level], self.target_point_family[level])
        return np.where(flag[:, None], q, p)

    def _count_level(self, lat, lon, y, scale, use, n_classes, shift=0.0) -> tuple[np.ndarray, np.ndarray]:
        """Append one level's cells with their type counts (of the `use` rows); return each row's cell
        and all counts."""
        keys, inverse = np.unique(cell_keys(lat, lon, scale, shift), return_inverse=True)
        counts = np.zeros((len(keys), n_classes), dtype=np.int64)
        np.add.at(counts, (inverse[use], y[use]), 1)
        self.target_keys.append(keys[counts.sum(1) > 0].tolist())
        self.target_counts.append(counts[counts.sum(1) > 0].tolist())
        return inverse, counts

    def recount(self, x: np.ndarray, y: np.ndarray) -> InputEncoder:
        """The same levels and smoothing with the counts of (x, y): more rows per place, nothing re-tuned.

        Used after model selection to count the validation rows too (for the test split and
        `predict`): the estimation error of a place's type mix falls with its row count.
        """
        if not self.target_scales:
            return self
        out = InputEncoder.from_dict(
            {**self.to_dict(), "target_keys": [], "target_counts": [], "target_point_keys": []}
        )
        y = np.asarray(y)
        out.class_counts = np.bincount(y, minlength=len(self.class_counts)).tolist()
        lat, lon = out._raw(x, "latitude"), out._raw(x, "longitude")
        at_point = at_repeated_point(lat, lon)
        for i, (scale, spread_only, shift) in enumerate(zip(self.target_scales, self.target_spread, self._shifts())):
            out._count_level(
                lat,
                lon,
                y,
                scale,
                ~at_point if spread_only else np.ones(len(y), dtype=bool),
                len(self.class_counts),
                shift,
            )
            if self.target_point_keys:
                split = bool(self.target_point_keys[i])
                cells = cell_keys(lat, lon, scale, shift)[at_point] if split else np.empty(0, np.int64)
                out.target_point_keys.append(np.unique(cells).tolist())
        return out

    def _shifts(self) -> list[float]:
        return self.target_shift or [0.0] * len(self.target_scales)  # saved before grid shifts existed

    def _prior(self) -> np.ndarray:
        prior = np.asarray(self.class_counts, dtype=np.float64) + 0.5  # a type training lacks keeps a finite log
        return prior / prior.sum()

    def _target_features(
        self, x: np.ndarray, y: np.ndarray | None, folds: np.ndarray | None, n_folds: int
    ) -> np.ndarray:
        """Per level, log(smoothed P(type | cell) / P(type)) and log(1 + cell count) / 5 (for the
        spread levels averaged over the grid shifts of the same scale); out of fold when y is given."""
        lat, lon = self._raw(x, "latitude"), self._raw(x, "longitude")
        prior = self._prior()
        chains = Chains(np.broadcast_to(prior, (len(x), len(prior))))
        at_point = at_repeated_point(lat, lon) if y is not None else None
        # Per (spread, scale): the sum over its grid shifts and how many (a running sum, not one
        # array per shift: 21 levels of (rows x 10) float64 would be 1.7 GB a million rows).
        features: dict[tuple[bool, float], list] = {}
        for level, (scale, spread_only, shift, keys, counts) in enumerate(
            zip(self.target_scales, self.target_spread, self._shifts(), self.target_keys, self.target_counts)
        ):
            known = np.asarray(keys, dtype=np.int64)
            table = np.asarray(counts, dtype=np.int64).reshape(len(known), len(prior))
            cell = cell_keys(lat, lon, scale, shift)
            pos = np.searchsorted(known, cell).clip(max=max(len(known) - 1, 0))
            seen = (known[pos] == cell)[:, None] if len(known) else np.zeros((len(x), 1), dtype=bool)
            rows = table[pos] * seen if len(known) else np.zeros((len(x), len(prior)), dtype=np.int64)
            if y is not None:  # the training rows themselves: leave out the counts of the row's own fold
                use = ~at_point if spread_only else np.ones(len(y), dtype=bool)
                rows = rows - fold_counts(pos, np.asarray(y), folds, n_folds, table.shape, use) * seen
            flag = (
                np.isin(cell, np.asarray(self.target_point_keys[level], dtype=np.int64))
                if self.target_point_keys
                else np.zeros(len(x), dtype=bool)
            )
            p = self._smooth_level(rows, chains.parent(spread_only, shift), level, flag)
            chains.update(spread_only, shift, p)
            block = np.concatenate([np.log(p / prior), np.log1p(rows.sum(1, keepdims=True)) / 5.0], axis=1)
            total = features.setdefault((spread_only, scale), [None, 0])
            total[0] = block if total[0] is None else np.add(total[0], block, out=total[0])
            total[1] += 1
            del rows, block  # before the next level's are made
        parts = [(total / n).astype(np.float32) for total, n in features.values()]
        if self.target_offset:
            parts.append(np.log(chains.final()).astype(np.float32))
        return np.concatenate(parts, axis=1)

    def _raw(self, x: np.ndarray, name: str) -> np.ndarray:
        low, high = self.scaler[name]
        return x[:, self.features.index(name)].astype(np.float64) * (high - low if high > low else 1.0) + low

    @property
    def n_offset(self) -> int:
        return len(self.class_counts) if self.target_scales and self.target_offset else 0

    @property
    def vocab_sizes(self) -> list[int]:
        return [len(v) for v in self.vocab]

    def encode(
        self, x: np.ndarray, y: np.ndarray | None = None, folds: np.ndarray | None = None, n_folds: int = 0
    ) -> np.ndarray:
        """[scaled features, one-hots, Fourier features, target encodings, cell ids] as one float32 matrix.

        Pass the training labels and fold ids when encoding the training rows themselves: their
        target encodings then come from the other folds only, so no row sees its own label.
        """
        parts = [np.asarray(x, dtype=np.float32)]
        if self.one_hot_time:
            for name, n, first in (("hour", 24, 0), ("weekday", 7, 0), ("month", 12, 1)):
                value = np.round(self._raw(x, name)).astype(int) - first
                known = ((value >= 0) & (value < n))[:, None]  # an unknown hour/weekday (-1) is no hour at all
                parts.append(np.eye(n, dtype=np.float32)[np.clip(value, 0, n - 1)] * known)
        if self.fourier:
            freq = 2 * np.pi * 2.0 ** np.arange(self.fourier)
            for name in ("latitude", "longitude"):
                angle = x[:, self.features.index(name), None].astype(np.float64) * freq
                parts += [np.sin(angle).astype(np.float32), np.cos(angle).astype(np.float32)]
        if self.target_scales:
            parts.append(self._target_features(x, y, folds, n_folds))
        if self.scales:
            lat, lon = self._raw(x, "latitude"), self._raw(x, "longitude")
            cells = np.zeros((len(x), len(self.scales)), dtype=np.float32)
            for i, (scale, vocab) in enumerate(zip(self.scales, self.vocab)):
                known = np.asarray(vocab, dtype=np.int64)
                if len(known):
                    keys = cell_keys(lat, lon, scale)
                    pos = np.searchsorted(known, keys).clip(max=len(known) - 1)
                    cells[:, i] = np.where(known[pos] == keys, pos + 1, 0)
            parts.append(cells)
        return np.concatenate(parts, axis=1)

    def encode_rows(self, x: np.ndarray, chunk: int = 1 << 18) -> np.ndarray:
        """encode(x) of rows that are not the training rows, a chunk at a time into one matrix: their
        encoding is row by row, so the temporaries (about 2 KB a row) stay one chunk's."""
        if len(x) <= chunk:
            return self.encode(x)
        first = self.encode(x[:chunk])
        out = np.empty((len(x), first.shape[1]), dtype=first.dtype)
        out[:chunk] = first
        for start in range(chunk, len(x), chunk):
            out[start : start + chunk] = self.encode(x[start : start + chunk])
        return out

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> InputEncoder:
        return cls(**data)
