"""Train / validation / test splits and the scaler fitted on the training part only."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

SPLITS = ("train", "validation", "test")


def temporal_split(table: pd.DataFrame, validation_fraction: float, test_fraction: float) -> pd.Series:
    """Oldest incidents train, the next period validates, the most recent test.

    Cut points are instants: every incident at or after a cut goes to the later part, so no test
    incident is ever older than a training one. One row per case number is assumed (the merged
    incidents table guarantees it) and checked.
    """
    if not table["case_number"].is_unique:
        raise ValueError("temporal_split needs one row per case number (de-duplicate first)")
    when = table["incident_datetime"]
    ranked = when.sort_values(kind="stable").to_numpy()
    n = len(ranked)
    t_validation = ranked[int(n * (1 - validation_fraction - test_fraction))]
    t_test = ranked[int(n * (1 - test_fraction))]
    split = np.where(when >= t_test, "test", np.where(when >= t_validation, "validation", "train"))
    return pd.Series(split, index=table.index, name="split")


def random_split(table: pd.DataFrame, validation_fraction: float, test_fraction: float, seed: int) -> pd.Series:
    """Stratified random split, for comparison with the seed project's (leaky) numbers."""
    if not table["case_number"].is_unique:
        raise ValueError("random_split needs one row per case number (de-duplicate first)")
    index = table.index.to_numpy()
    stratify = table["label_id"].to_numpy()
    counts = np.bincount(stratify)
    can_stratify = counts[counts > 0].min() >= 3
    rest, test = train_test_split(index, test_size=test_fraction, random_state=seed,
                                  stratify=stratify if can_stratify else None)
    train, validation = train_test_split(
        rest, test_size=validation_fraction / (1 - test_fraction), random_state=seed,
        stratify=table.loc[rest, "label_id"].to_numpy() if can_stratify else None,
    )
    split = pd.Series("train", index=table.index, name="split")
    split.loc[validation] = "validation"
    split.loc[test] = "test"
    return split


def fit_minmax(train: pd.DataFrame, columns: tuple[str, ...] | list[str]) -> dict[str, list[float]]:
    """Min and max of each column on the training rows: the scaler's whole state, as JSON-able lists."""
    return {c: [float(train[c].min()), float(train[c].max())] for c in columns}


def apply_minmax(frame: pd.DataFrame, scaler: dict[str, list[float]]) -> np.ndarray:
    """Scale columns to [0, 1] by training min/max (values outside training range go beyond)."""
    out = np.empty((len(frame), len(scaler)), dtype=np.float32)
    for j, (column, (low, high)) in enumerate(scaler.items()):
        span = high - low if high > low else 1.0
        out[:, j] = (frame[column].to_numpy(dtype=float) - low) / span
    return out
