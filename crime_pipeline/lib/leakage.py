"""Leakage detection: no single feature may predict the label almost perfectly on its own.

Honest time-and-place features each carry a few percent of the label's entropy. A column that
carries most of it (the primary type, the description, an id) is the label in disguise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MAX_BINS = 64
MI_RATIO_LIMIT = 0.5  # share of the label's entropy one feature may explain
PURITY_LIMIT = 0.9  # accuracy of predicting the label from one feature's bins alone


def _discretise(values: pd.Series) -> np.ndarray:
    """Integer codes: quantile bins for many-valued numbers, the values themselves otherwise."""
    if pd.api.types.is_numeric_dtype(values) and values.nunique() > MAX_BINS:
        return pd.qcut(values.rank(method="first"), MAX_BINS, labels=False).to_numpy()
    return pd.factorize(values)[0]


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def leakage_scores(features: pd.DataFrame, label: pd.Series) -> pd.DataFrame:
    """Per column: mutual information with the label over the label's entropy, and bin purity."""
    y = pd.factorize(label)[0]
    h_y = _entropy(np.bincount(y))
    rows = []
    for column in features.columns:
        x = _discretise(features[column])
        table = pd.crosstab(x, y).to_numpy()
        n = table.sum()
        h_y_given_x = sum(row.sum() / n * _entropy(row) for row in table)
        rows.append({
            "column": column,
            "mi_ratio": (h_y - h_y_given_x) / h_y if h_y > 0 else 0.0,
            "purity": table.max(axis=1).sum() / n,
        })
    scores = pd.DataFrame(rows).set_index("column")
    majority = np.bincount(y).max() / len(y)
    scores["leaky"] = (scores["mi_ratio"] >= MI_RATIO_LIMIT) | (
        (scores["purity"] >= PURITY_LIMIT) & (scores["purity"] > majority + 0.05)
    )
    return scores
