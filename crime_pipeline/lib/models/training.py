"""Model matrices from the split table, and the scikit-learn models."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from crime_pipeline.lib.features.splits import MIN_TRAIN_CLASSES, apply_minmax


@dataclass(frozen=True)
class Matrices:
    """Scaled features and label ids of one split."""

    x: np.ndarray
    y: np.ndarray


def matrices(splits: pd.DataFrame, scaler: dict[str, list[float]], part: str) -> Matrices:
    rows = splits[splits["split"] == part]
    if rows.empty:  # dataset_splits refuses this; a stale or hand-made table must not reach a model
        raise ValueError(
            f"the {part} part of dataset_splits is empty ({len(splits)} incidents in all): rematerialize dataset_splits"
        )
    return Matrices(apply_minmax(rows, scaler), np.array(rows["label_id"], dtype=np.int64))  # writable copy


# Models train on at most this many training rows, drawn so that each type keeps its share; above
# it, more rows cost minutes and add little (README, "Scale": the cost measured at 3 million rows).
DEFAULT_MAX_TRAIN_ROWS = 1_000_000


def stratified_sample(labels: np.ndarray, max_rows: int, seed: int = 0) -> np.ndarray:
    """Sorted positions of at most about `max_rows` rows, each label keeping its share (every row of
    a label is kept when its share rounds to none: at least one per label). 0 = every row."""
    n = len(labels)
    if max_rows <= 0 or n <= max_rows:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    picked = []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        take = min(len(rows), max(1, int(round(len(rows) * max_rows / n))))
        picked.append(rng.choice(rows, size=take, replace=False))
    return np.sort(np.concatenate(picked))


def require_classes(data: Matrices) -> None:
    """A classifier needs at least two incident types to tell apart."""
    types = len(np.unique(data.y))
    if types < MIN_TRAIN_CLASSES:
        raise ValueError(
            f"the training part's {len(data.y)} incidents hold {types} incident type(s); "
            f"at least {MIN_TRAIN_CLASSES} are needed to train a classifier"
        )


def train_logistic_regression(
    data: Matrices, class_weighted: bool, c: float = 1.0, max_iter: int = 500, seed: int = 0
) -> LogisticRegression:
    """Multinomial logistic regression with lbfgs, optionally with balanced class weights."""
    require_classes(data)
    model = LogisticRegression(
        solver="lbfgs", C=c, max_iter=max_iter, random_state=seed, class_weight="balanced" if class_weighted else None
    )
    return model.fit(data.x, data.y)


def train_gbdt(
    data: Matrices,
    class_weighted: bool,
    max_iter: int = 150,
    learning_rate: float = 0.1,
    max_leaf_nodes: int = 31,
    seed: int = 0,
) -> HistGradientBoostingClassifier:
    """Histogram gradient-boosted trees, early-stopped on an internal stratified 10% hold-out.

    Without early stopping, small data overfits badly (log loss far above the prior's); it is only
    skipped when the hold-out cannot be stratified (a class with a single training row).
    """
    require_classes(data)
    counts = np.bincount(data.y)
    can_hold_out = len(data.y) >= 200 and counts[counts > 0].min() >= 2
    model = HistGradientBoostingClassifier(
        max_iter=max_iter,
        learning_rate=learning_rate,
        max_leaf_nodes=max_leaf_nodes,
        early_stopping=can_hold_out,
        validation_fraction=0.1,
        n_iter_no_change=10,
        random_state=seed,
        class_weight="balanced" if class_weighted else None,
    )
    return model.fit(data.x, data.y)
