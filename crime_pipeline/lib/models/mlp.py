"""The seed project's MLP, trained on tensors that stay on the device for the whole run.

Trunk (the seed's): input -> 128 ReLU Dropout(0.3) -> 64 ReLU Dropout(0.3) -> 32 ReLU -> one logit
per class (softmax at inference). In front of it (`InputEncoder`, fitted on training rows only):
one-hot hour, weekday and month, Fourier features of the coordinates, learned embeddings of
grid cells at several scales (cells seen fewer than `cell_min_count` times share one rare-cell
bucket), and a target encoding of place: per level, log P(type | cell) from training counts,
smoothed toward the level above (family and strength chosen by out-of-fold likelihood), first
over the spread-out rows (those at no exact point another row shares) from 0.04 down to 0.0025
degrees on 4 grids shifted by a quarter cell (their estimates averaged), then over all rows at
0.001 degrees, where cells holding a repeated point (a store, a bar) are smoothed apart from the
rest: such a place has its own type mix, a cell of spread-out rows barely differs from its
neighbourhood. Training rows get it out of fold (5 folds), so no row sees its own label; once the
model is selected, the saved encoding also counts the validation rows (more rows per place). The
finest level's log-probabilities are also added to the trunk's logits (an offset, as in a GLM):
the trunk learns what time and place add to them instead of carrying them through dropout.
`members` > 1 trains that many trunks side by side and averages their probabilities (off by
default: 3 members gained 0.0006 nats for 2.5 times the training time). Training: Adam with a one-cycle learning-rate schedule, cross-entropy (optionally
class-weighted), early stopping on validation log loss (weighted alike) with the best epoch's weights restored,
then one temperature fitted on validation. The balanced variant (`prior_correction`) divides the
calibrated probabilities by each type's training share, the decision that maximises mean recall. Batches are slices of a permutation of in-memory
tensors: no per-sample DataLoader, no host copies inside an epoch.

The encoder reads the same scaled feature matrix every other model gets (it undoes the MinMax
scaling for the columns it needs), so callers and `predict` hand the MLP exactly what they hand
the others; its fitted state is plain JSON saved beside the state_dict.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from torch import nn


def select_device(requested: str = "auto", cuda_available: bool | None = None) -> str:
    """'auto' picks CUDA when present, else the CPU; an explicit 'cuda' without a GPU is an error."""
    available = torch.cuda.is_available() if cuda_available is None else cuda_available
    if requested == "auto":
        return "cuda" if available else "cpu"
    if requested.startswith("cuda") and not available:
        raise RuntimeError(f"device {requested!r} requested but CUDA is not available")
    if requested != "cpu" and not requested.startswith("cuda"):
        raise ValueError(f"unknown device {requested!r}: use 'auto', 'cpu' or 'cuda[:N]'")
    return requested


@dataclass(frozen=True)
class MLPSettings:
    # Defaults are the best row of benchmarks/mlp_ablation.py at 322,000 rows: the smoothed place
    # encoding replaces the Fourier features and the cell embeddings, which then add nothing; point
    # cells, shifted grids and the recount take it within 0.015 nats of the Bayes limit.
    epochs: int = 20
    batch_size: int = 1024
    learning_rate: float = 1e-3  # the one-cycle peak (or the constant rate)
    dropout: float = 0.3
    patience: int = 6
    class_weighted: bool = False
    bf16_autocast: bool = False
    seed: int = 0
    one_hot_time: bool = True
    fourier: int = 0
    cell_scales: tuple[float, ...] = ()
    cell_min_count: int = 5
    embed_dim: int = 8
    # Target encoding: smoothed, out-of-fold log P(type | cell), coarse to fine; the spread levels
    # count only rows at no repeated exact point and come first, the target levels count all rows.
    spread_scales: tuple[float, ...] = (0.04, 0.02, 0.01, 0.005, 0.0025)
    target_scales: tuple[float, ...] = (0.001,)
    # Spread levels repeated on this many grids shifted by 1/n of a cell, their estimates averaged
    # (averaged shifted histograms: a smoother map than one grid's blocks).
    spread_shifts: int = 4
    # All-rows levels smooth cells holding a repeated exact point (a block point: its own type mix)
    # with their own strength, apart from the cells of spread-out rows only.
    point_cells: bool = True
    target_folds: int = 5
    target_offset: bool = True  # add the finest level's log P(type | cell) to the logits
    # After model selection, count the validation rows too in the place encoding the model is saved
    # with (test split, `predict`); validation metrics are taken before, on training counts only.
    recount_with_validation: bool = True
    members: int = 1  # trunks trained side by side from different initialisations; probabilities averaged
    schedule: str = "onecycle"  # or "constant"
    temperature_scaling: bool = True
    prior_correction: bool = False  # divide probabilities by the training shares: decisions optimal for balanced accuracy
    cpu_threads: int = 1  # the net is too small for intra-op threads to pay; on a busy machine they spin-wait

    def to_dict(self) -> dict:
        return {**asdict(self), "cell_scales": list(self.cell_scales), "target_scales": list(self.target_scales),
                "spread_scales": list(self.spread_scales)}


def _cell_keys(lat: np.ndarray, lon: np.ndarray, scale: float, shift: float = 0.0) -> np.ndarray:
    # Cells centred on multiples of the scale (plus `shift` cells): unshifted, a coordinate rounded
    # to 3 decimals stays in its cell.
    return (np.round(lat / scale - shift).astype(np.int64) * 10**8 + np.round(lon / scale - shift).astype(np.int64)
            + 5 * 10**7)


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
    target_family: list[str] = field(default_factory=list)  # how each level is smoothed (see _smooth)
    target_shift: list[float] = field(default_factory=list)  # grid offset of each level, in cells
    # Per level (empty lists: no split): sorted keys of cells holding a repeated point, and their smoothing.
    target_point_keys: list[list[int]] = field(default_factory=list)
    target_point_strength: list[float] = field(default_factory=list)
    target_point_family: list[str] = field(default_factory=list)
    class_counts: list[int] = field(default_factory=list)
    target_offset: bool = False  # append log P(type | finest cell) as the logits' offset columns

    @classmethod
    def fit(cls, x_train: np.ndarray, features: list[str], scaler: dict, settings: MLPSettings,
            y_train: np.ndarray | None = None, n_classes: int | None = None) -> InputEncoder:
        enc = cls(list(features), dict(scaler), settings.one_hot_time, settings.fourier, list(settings.cell_scales), [])
        if enc.scales:
            lat, lon = enc._raw(x_train, "latitude"), enc._raw(x_train, "longitude")
            for scale in enc.scales:
                keys, counts = np.unique(_cell_keys(lat, lon, scale), return_counts=True)
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
        folds, at_point = training_folds(len(y), settings), _at_repeated_point(lat, lon)
        chains = _Chains(np.broadcast_to(self._prior(), (len(y), n_classes)))
        for scale, spread_only, shift in zip(self.target_scales, self.target_spread, self.target_shift):
            use = ~at_point if spread_only else np.ones(len(y), dtype=bool)
            inverse, counts = self._count_level(lat, lon, y, scale, use, n_classes, shift)
            own = _oof_counts(inverse, y, folds, settings.target_folds, counts, use)
            parent = chains.parent(spread_only, shift)
            split = settings.point_cells and not spread_only
            points = np.unique(_cell_keys(lat, lon, scale, shift)[at_point]) if split else np.empty(0, np.int64)
            self.target_point_keys.append(points.tolist())
            flag = np.isin(_cell_keys(lat, lon, scale, shift), points)
            chosen = []
            for rows in (~flag, flag):  # cells without and with a repeated point, each its best smoothing
                chosen.append(max(((f, m) for f in _FAMILIES for m in _STRENGTHS), key=lambda fm: np.log(
                    _smooth(own[rows], parent[rows], fm[1], fm[0])[np.arange(rows.sum()), y[rows]]).sum())
                    if rows.any() else ("gamma", 1.0))
            (family, best), (point_family, point_best) = chosen
            self.target_strength.append(float(best))
            self.target_family.append(family)
            self.target_point_strength.append(float(point_best))
            self.target_point_family.append(point_family)
            chains.update(spread_only, shift, self._smooth_level(own, parent, len(self.target_strength) - 1, flag))

    def _smooth_level(self, counts, parent, level: int, flag: np.ndarray) -> np.ndarray:
        """One level's estimate: cells with a repeated point use their own smoothing."""
        p = _smooth(counts, parent, self.target_strength[level], self.target_family[level])
        if not self.target_point_strength or not flag.any():
            return p
        q = _smooth(counts, parent, self.target_point_strength[level], self.target_point_family[level])
        return np.where(flag[:, None], q, p)

    def _count_level(self, lat, lon, y, scale, use, n_classes, shift=0.0) -> tuple[np.ndarray, np.ndarray]:
        """Append one level's cells with their type counts (of the `use` rows); return each row's cell and all counts."""
        keys, inverse = np.unique(_cell_keys(lat, lon, scale, shift), return_inverse=True)
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
        out = InputEncoder.from_dict({**self.to_dict(), "target_keys": [], "target_counts": [],
                                      "target_point_keys": []})
        y = np.asarray(y)
        out.class_counts = np.bincount(y, minlength=len(self.class_counts)).tolist()
        lat, lon = out._raw(x, "latitude"), out._raw(x, "longitude")
        at_point = _at_repeated_point(lat, lon)
        for i, (scale, spread_only, shift) in enumerate(zip(self.target_scales, self.target_spread, self._shifts())):
            out._count_level(lat, lon, y, scale, ~at_point if spread_only else np.ones(len(y), dtype=bool),
                             len(self.class_counts), shift)
            if self.target_point_keys:
                split = bool(self.target_point_keys[i])
                cells = _cell_keys(lat, lon, scale, shift)[at_point] if split else np.empty(0, np.int64)
                out.target_point_keys.append(np.unique(cells).tolist())
        return out

    def _shifts(self) -> list[float]:
        return self.target_shift or [0.0] * len(self.target_scales)  # saved before grid shifts existed

    def _prior(self) -> np.ndarray:
        prior = np.asarray(self.class_counts, dtype=np.float64) + 0.5  # a type training lacks keeps a finite log
        return prior / prior.sum()

    def _target_features(self, x: np.ndarray, y: np.ndarray | None, folds: np.ndarray | None,
                         n_folds: int) -> np.ndarray:
        """Per level, log(smoothed P(type | cell) / P(type)) and log(1 + cell count) / 5 (for the
        spread levels averaged over the grid shifts of the same scale); out of fold when y is given."""
        lat, lon = self._raw(x, "latitude"), self._raw(x, "longitude")
        prior = self._prior()
        chains = _Chains(np.broadcast_to(prior, (len(x), len(prior))))
        at_point = _at_repeated_point(lat, lon) if y is not None else None
        # Per (spread, scale): the sum over its grid shifts and how many (a running sum, not one
        # array per shift: 21 levels of (rows x 10) float64 would be 1.7 GB a million rows).
        features: dict[tuple[bool, float], list] = {}
        for level, (scale, spread_only, shift, keys, counts) in enumerate(zip(
                self.target_scales, self.target_spread, self._shifts(), self.target_keys, self.target_counts)):
            known = np.asarray(keys, dtype=np.int64)
            table = np.asarray(counts, dtype=np.int64).reshape(len(known), len(prior))
            cell = _cell_keys(lat, lon, scale, shift)
            pos = np.searchsorted(known, cell).clip(max=max(len(known) - 1, 0))
            seen = (known[pos] == cell)[:, None] if len(known) else np.zeros((len(x), 1), dtype=bool)
            rows = table[pos] * seen if len(known) else np.zeros((len(x), len(prior)), dtype=np.int64)
            if y is not None:  # the training rows themselves: leave out the counts of the row's own fold
                use = ~at_point if spread_only else np.ones(len(y), dtype=bool)
                rows = rows - _fold_counts(pos, np.asarray(y), folds, n_folds, table.shape, use) * seen
            flag = np.isin(cell, np.asarray(self.target_point_keys[level], dtype=np.int64)) if self.target_point_keys \
                else np.zeros(len(x), dtype=bool)
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

    def encode(self, x: np.ndarray, y: np.ndarray | None = None, folds: np.ndarray | None = None,
               n_folds: int = 0) -> np.ndarray:
        """[scaled features, one-hots, Fourier features, target encodings, cell ids] as one float32 matrix.

        Pass the training labels and fold ids when encoding the training rows themselves: their
        target encodings then come from the other folds only, so no row sees its own label.
        """
        parts = [np.asarray(x, dtype=np.float32)]
        if self.one_hot_time:
            for name, n, first in (("hour", 24, 0), ("weekday", 7, 0), ("month", 12, 1)):
                value = np.round(self._raw(x, name)).astype(int) - first
                parts.append(np.eye(n, dtype=np.float32)[np.clip(value, 0, n - 1)])
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
                    keys = _cell_keys(lat, lon, scale)
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
            out[start:start + chunk] = self.encode(x[start:start + chunk])
        return out

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> InputEncoder:
        return cls(**data)


_STRENGTHS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0)
_FAMILIES = ("dirichlet", "gamma")


def training_folds(n: int, settings: MLPSettings) -> np.ndarray:
    """The fold of each training row for out-of-fold target encoding (fixed by the seed)."""
    return np.random.default_rng(settings.seed).integers(0, settings.target_folds, n)


def _at_repeated_point(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Rows whose exact (6-decimal) coordinates other rows share: a store, a bar, a block point."""
    _, inverse, counts = np.unique(_cell_keys(lat, lon, 1e-6), return_inverse=True, return_counts=True)
    return counts[inverse] > 1


class _Chains:
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


def _smooth(counts: np.ndarray, parent: np.ndarray, strength: float, family: str = "dirichlet") -> np.ndarray:
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


def _fold_counts(cell: np.ndarray, y: np.ndarray, folds: np.ndarray, n_folds: int, shape: tuple[int, int],
                 use: np.ndarray) -> np.ndarray:
    """Per row, the type counts its own fold's `use` rows put in its cell."""
    n_cells, n_classes = shape
    out = np.zeros((len(y), n_classes), dtype=np.int64)
    for f in range(n_folds):
        mask = folds == f
        table = np.zeros((n_cells, n_classes), dtype=np.int64)
        np.add.at(table, (cell[mask & use], y[mask & use]), 1)
        out[mask] = table[cell[mask]]
    return out


def _oof_counts(cell, y, folds, n_folds, counts, use) -> np.ndarray:
    """Per training row, its cell's type counts without the rows of its own fold."""
    return counts[cell] - _fold_counts(cell, y, folds, n_folds, counts.shape, use)


def _trunk(n_inputs: int, n_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(n_inputs, 128), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(128, 64), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(64, 32), nn.ReLU(),
        nn.Linear(32, n_classes),
    )


class CrimeMLP(nn.Module):
    """The trunk, with optional cell embeddings in front and an optional fixed offset behind.

    The last `len(vocab_sizes)` input columns are cell ids (0 = rare or unseen cell), carried as
    floats so one tensor holds a batch; each is looked up in its scale's embedding table. The
    `n_offset` columns before them (a log-probability per class) are added to the trunk's logits,
    so the trunk learns what time and place add to that estimate rather than carrying it through
    two dropout layers. With `members` > 1, that many trunks (`net`, then `more`) see the same
    inputs; each is trained on its own loss and the output is the log of their mean probability.
    """

    def __init__(self, n_features: int, n_classes: int, dropout: float = 0.3,
                 vocab_sizes: tuple[int, ...] | list[int] = (), embed_dim: int = 8, n_offset: int = 0,
                 members: int = 1):
        super().__init__()
        self.n_offset = n_offset
        self.n_dense = n_features - len(vocab_sizes) - n_offset
        self.embeddings = nn.ModuleList(nn.Embedding(size + 1, embed_dim) for size in vocab_sizes)
        n_inputs = self.n_dense + embed_dim * len(vocab_sizes)
        self.net = _trunk(n_inputs, n_classes, dropout)
        self.more = nn.ModuleList(_trunk(n_inputs, n_classes, dropout) for _ in range(members - 1))
        self.encoder: InputEncoder | None = None  # set when trained on named features
        self.selection_encoder: InputEncoder | None = None  # training counts only, for validation scores; not saved
        self.temperature = 1.0
        self.logit_offset: list[float] | None = None  # added to logits / T (prior correction)

    def member_logits(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each member's logits (offset included)."""
        if not len(self.embeddings) and not self.n_offset:
            return [net(x) for net in (self.net, *self.more)]
        cells = x[:, self.n_dense + self.n_offset:].long()
        parts = [x[:, :self.n_dense]] + [emb(cells[:, i]) for i, emb in enumerate(self.embeddings)]
        inputs = torch.cat(parts, dim=1)
        offset = x[:, self.n_dense:self.n_dense + self.n_offset] if self.n_offset else 0.0
        return [net(inputs) + offset for net in (self.net, *self.more)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return combine(self.member_logits(x))

    def artifact_meta(self) -> dict:
        """Everything besides the state_dict needed to rebuild and apply the model (plain JSON)."""
        return {"n_inputs": self.n_dense + self.n_offset + len(self.embeddings), "n_offset": self.n_offset,
                "vocab_sizes": [e.num_embeddings - 1 for e in self.embeddings], "members": 1 + len(self.more),
                "embed_dim": self.embeddings[0].embedding_dim if len(self.embeddings) else 0,
                "input_encoder": self.encoder.to_dict() if self.encoder else None, "temperature": self.temperature,
                "logit_offset": self.logit_offset}

    @classmethod
    def from_artifact_meta(cls, meta: dict, n_classes: int, dropout: float) -> CrimeMLP:
        spec = meta.get("mlp") or {"n_inputs": len(meta["features"]), "vocab_sizes": [], "embed_dim": 0,
                                   "input_encoder": None, "temperature": 1.0}
        model = cls(spec["n_inputs"], n_classes, dropout, spec["vocab_sizes"], spec["embed_dim"] or 8,
                    spec.get("n_offset", 0), spec.get("members", 1))
        model.encoder = InputEncoder.from_dict(spec["input_encoder"]) if spec["input_encoder"] else None
        model.temperature = float(spec["temperature"])
        model.logit_offset = spec.get("logit_offset")
        return model


def combine(logits: list[torch.Tensor]) -> torch.Tensor:
    """One member's logits as they are; several: the log of their mean probability (a valid logit vector)."""
    if len(logits) == 1:
        return logits[0]
    return torch.logsumexp(torch.stack([z.log_softmax(1) for z in logits]), 0) - math.log(len(logits))


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """'balanced' weights n / (k * count), with absent classes given weight 0."""
    counts = np.bincount(y, minlength=n_classes).astype(float)
    return np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0)


def _logits(model: nn.Module, x: torch.Tensor, batch: int) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return torch.cat([model(x[start:start + batch]).float() for start in range(0, len(x), batch)])


def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int, weight=None) -> tuple[float, float]:
    """Validation loss (of the training objective: class-weighted for the weighted variant) and accuracy."""
    logits = _logits(model, x, batch)
    loss = nn.functional.cross_entropy(logits, y, weight=weight).item() if len(x) else 0.0
    return loss, (logits.argmax(1) == y).float().mean().item() if len(x) else 0.0


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The single temperature T minimising validation log loss of softmax(logits / T)."""
    if len(y) == 0:
        return 1.0
    z = torch.as_tensor(logits, dtype=torch.float64)
    t = torch.as_tensor(y, dtype=torch.long)

    def loss(log_t: float) -> float:
        return nn.functional.cross_entropy(z / np.exp(log_t), t).item()

    return float(np.exp(minimize_scalar(loss, bounds=(-1.5, 1.5), method="bounded").x))


def train_epoch(model, optimizer, loss_fn, x, y, batch_size: int, generator, autocast,
                scheduler=None) -> tuple[float, float]:
    """One pass over (x, y) in shuffled mini-batches; returns mean loss and accuracy."""
    model.train()
    order = torch.randperm(len(x), device=x.device, generator=generator)
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        xb, yb = x[idx], y[idx]
        with autocast():  # each member learns on its own loss (the mixture's would tie them together)
            members = model.member_logits(xb) if isinstance(model, CrimeMLP) else [model(xb)]
            loss = sum(loss_fn(z.float(), yb) for z in members)
            logits = combine(members).detach()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        with torch.no_grad():  # running sums stay on the device: no sync per batch
            loss_sum.add_(loss.detach(), alpha=len(idx) / len(members))
            correct.add_((logits.argmax(1) == yb).sum())
    return loss_sum.item() / len(x), correct.item() / len(x)  # one device sync per epoch


def train_mlp(
    x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, n_classes: int,
    settings: MLPSettings, device: str = "cpu", log: Callable[[str], None] = print,
    features: list[str] | None = None, scaler: dict | None = None,
) -> tuple[CrimeMLP, list[dict]]:
    """Train with early stopping; return the best model (on the CPU) and the per-epoch history.

    With `features` and `scaler` (the columns of x and their MinMax state) the input encoder is
    fitted on x_train and travels with the model; without them x goes into the trunk as it is.
    """
    threads = torch.get_num_threads()
    if device == "cpu":
        torch.set_num_threads(settings.cpu_threads)
    try:
        return _train(x_train, y_train, x_val, y_val, n_classes, settings, device, log, features, scaler)
    finally:
        torch.set_num_threads(threads)


def _train(x_train, y_train, x_val, y_val, n_classes, settings, device, log, features, scaler):
    torch.manual_seed(settings.seed)
    generator = torch.Generator(device=device).manual_seed(settings.seed)
    encoder, raw = None, (x_train, y_train, x_val, y_val)
    if features is not None:
        encoder = InputEncoder.fit(x_train, features, scaler, settings, y_train, n_classes)
        folds = training_folds(len(y_train), settings)
        x_train, x_val = encoder.encode(x_train, y_train, folds, settings.target_folds), encoder.encode_rows(x_val)
    vocab = encoder.vocab_sizes if encoder else []
    model = CrimeMLP(x_train.shape[1], n_classes, settings.dropout, vocab, settings.embed_dim,
                     encoder.n_offset if encoder else 0, settings.members).to(device)
    xt = torch.as_tensor(x_train, dtype=torch.float32, device=device)
    yt = torch.as_tensor(y_train, dtype=torch.long, device=device)
    xv = torch.as_tensor(x_val, dtype=torch.float32, device=device)
    yv = torch.as_tensor(y_val, dtype=torch.long, device=device)
    weight = None
    if settings.class_weighted:
        weight = torch.as_tensor(class_weights(y_train, n_classes), dtype=torch.float32, device=device)
    loss_fn = nn.CrossEntropyLoss(weight=weight)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    scheduler = None
    if settings.schedule == "onecycle":
        steps = settings.epochs * -(-len(xt) // settings.batch_size)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, settings.learning_rate, total_steps=max(steps, 1))
    elif settings.schedule != "constant":
        raise ValueError(f"unknown schedule {settings.schedule!r}: use 'onecycle' or 'constant'")
    use_bf16 = settings.bf16_autocast and device.startswith("cuda")

    def autocast():
        if use_bf16:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    history: list[dict] = []
    best_loss, best_state, stale = float("inf"), copy.deepcopy(model.state_dict()), 0
    for epoch in range(1, settings.epochs + 1):
        started = time.perf_counter()
        train_loss, train_acc = train_epoch(model, optimizer, loss_fn, xt, yt, settings.batch_size, generator,
                                            autocast, scheduler)
        val_loss, val_acc = _evaluate(model, xv, yv, 8192, weight)
        seconds = time.perf_counter() - started
        history.append({"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_acc,
                        "val_loss": val_loss, "val_accuracy": val_acc, "seconds": seconds})
        log(f"epoch {epoch}/{settings.epochs}: train loss {train_loss:.4f} acc {train_acc:.4f} | "
            f"val loss {val_loss:.4f} acc {val_acc:.4f} | {len(xt) / seconds:,.0f} samples/s")
        if val_loss < best_loss - 1e-4:
            best_loss, best_state, stale = val_loss, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
            if stale >= settings.patience:
                log(f"early stop after epoch {epoch}: no validation improvement for {stale} epochs")
                break
    model.load_state_dict(best_state)
    model.encoder = encoder
    if settings.temperature_scaling:
        model.temperature = fit_temperature(_logits(model, xv, 8192).cpu().numpy(), y_val)
        log(f"temperature {model.temperature:.3f} fitted on validation")
    if settings.prior_correction:  # p(type | x) / p(type): the posterior as if every type were equally common
        counts = np.bincount(y_train, minlength=n_classes).astype(float)
        model.logit_offset = (-np.log(np.maximum(counts, 1) / len(y_train))).tolist()
    if encoder is not None and settings.recount_with_validation and len(y_val):
        model.selection_encoder = encoder
        model.encoder = encoder.recount(np.concatenate([raw[0], raw[2]]), np.concatenate([raw[1], raw[3]]))
        log(f"place encoding recounted on {len(raw[1]) + len(raw[3]):,} training and validation rows")
    return model.cpu().eval(), history


def predict_proba(model: CrimeMLP, x: np.ndarray, batch: int = 65536,
                  encoder: InputEncoder | None = None) -> np.ndarray:
    """Softmax probabilities of the scaled feature matrix x, computed on the CPU in batches.

    `encoder` replaces the model's own (validation rows are scored with `selection_encoder`, the
    encoding their model was selected with, never with one that counted their own labels).
    """
    model = model.cpu().eval()
    encoder = encoder or model.encoder
    out = []
    with torch.no_grad():
        for start in range(0, len(x), batch):
            chunk = x[start:start + batch]
            if encoder is not None:
                chunk = encoder.encode(chunk)
            logits = model(torch.as_tensor(chunk, dtype=torch.float32)) / model.temperature
            if model.logit_offset is not None:
                logits = logits + torch.as_tensor(model.logit_offset, dtype=logits.dtype)
            out.append(torch.softmax(logits, 1).numpy())
    return np.concatenate(out) if out else np.empty((0, model.net[-1].out_features), dtype=np.float32)
