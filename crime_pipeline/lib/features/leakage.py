"""Leakage detection: no feature, alone or combined with others, may predict the label almost perfectly.

Honest time-and-place features each carry a few percent of the label's entropy. A column that
carries most of it (the primary type, the description) is the label in disguise. Both scores are
corrected for small samples, where any many-valued column looks predictive in-sample: mutual
information minus its value against a shuffled label, and purity measured out of sample (bins'
majority labels learnt on one half, scored on the other). Columns that are innocent one by one
can still spell the label together, so a shallow decision tree on all features is also scored out
of sample: honest time and place stay near the majority rate, a leaky combination approaches 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MAX_BINS = 64
MIN_ROWS_PER_BIN = 50
MI_RATIO_LIMIT = 0.5  # share of the label's entropy one feature may explain
PURITY_LIMIT = 0.9  # out-of-sample accuracy of predicting the label from one feature alone
COMBINATION_LIMIT = 0.9  # out-of-sample accuracy of a shallow tree on all features together
COMBINATION_SAMPLE = 20_000


def _discretise(values: pd.Series) -> np.ndarray:
    """Integer codes: quantile bins for many-valued numbers, the values themselves otherwise."""
    bins = int(min(MAX_BINS, max(2, len(values) // MIN_ROWS_PER_BIN)))
    if pd.api.types.is_numeric_dtype(values) and values.nunique() > bins:
        return pd.qcut(values.rank(method="first"), bins, labels=False).to_numpy()
    return pd.factorize(values)[0]


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def _mutual_information(x: np.ndarray, y: np.ndarray) -> float:
    table = pd.crosstab(x, y).to_numpy()
    n = table.sum()
    return _entropy(table.sum(axis=0)) - sum(row.sum() / n * _entropy(row) for row in table)


def _out_of_sample_purity(x: np.ndarray, y: np.ndarray, half: np.ndarray) -> float:
    correct = 0
    for learn, score in ((half, ~half), (~half, half)):
        frame = pd.DataFrame({"x": x[learn], "y": y[learn]})
        majority = frame.groupby("x")["y"].agg(lambda s: s.value_counts().index[0])
        fallback = np.bincount(y[learn]).argmax() if learn.any() else 0
        guess = pd.Series(x[score]).map(majority).fillna(fallback).to_numpy()
        correct += int((guess == y[score]).sum())
    return correct / len(x)


def leakage_scores(features: pd.DataFrame, label: pd.Series, seed: int = 0) -> pd.DataFrame:
    """Per column: corrected mutual information over the label's entropy, and out-of-sample purity."""
    rng = np.random.default_rng(seed)
    y = pd.factorize(label)[0]
    shuffled = rng.permutation(y)
    half = rng.random(len(y)) < 0.5
    h_y = _entropy(np.bincount(y))
    rows = []
    for column in features.columns:
        x = _discretise(features[column])
        mi = _mutual_information(x, y) - _mutual_information(x, shuffled)
        rows.append(
            {
                "column": column,
                "mi_ratio": max(mi, 0.0) / h_y if h_y > 0 else 0.0,
                "purity": _out_of_sample_purity(x, y, half),
            }
        )
    scores = pd.DataFrame(rows).set_index("column")
    majority = np.bincount(y).max() / len(y)
    scores["leaky"] = (scores["mi_ratio"] >= MI_RATIO_LIMIT) | (
        (scores["purity"] >= PURITY_LIMIT) & (scores["purity"] > majority + 0.05)
    )
    return scores


def combination_accuracy(features: pd.DataFrame, label: pd.Series, seed: int = 0) -> dict:
    """Out-of-sample accuracy of a depth-8 decision tree on every feature together (2-fold, on a
    sample), against the majority rate; `leaky` when it is near-perfect."""
    from sklearn.model_selection import cross_val_score
    from sklearn.tree import DecisionTreeClassifier

    sample = features.sample(min(len(features), COMBINATION_SAMPLE), random_state=seed)
    y = pd.factorize(label.loc[sample.index])[0]
    majority = float(np.bincount(y).max() / len(y)) if len(y) else 0.0
    if len(y) < 20 or len(np.unique(y)) < 2:
        return {"accuracy": None, "majority": majority, "leaky": False, "rows": int(len(y))}
    x = sample.apply(lambda c: pd.factorize(c)[0] if not pd.api.types.is_numeric_dtype(c) else c).to_numpy(dtype=float)
    tree = DecisionTreeClassifier(max_depth=8, min_samples_leaf=5, random_state=seed)
    accuracy = float(cross_val_score(tree, np.nan_to_num(x), y, cv=2).mean())
    return {
        "accuracy": accuracy,
        "majority": majority,
        "rows": int(len(y)),
        "leaky": accuracy >= COMBINATION_LIMIT and accuracy > majority + 0.05,
    }


def disguise_scores(incidents: pd.DataFrame, disguises: dict[str, list[str]], seed: int = 0) -> dict:
    """Per city, the same single-column scores for the columns its profile names as the label's
    disguises (those present): evidence that the check would refuse them as features."""
    out = {}
    for city, columns in disguises.items():
        rows = incidents[incidents["city"] == city] if "city" in incidents else incidents
        present = [c for c in columns if c in rows]
        if not present or len(rows) == 0:
            out[city] = {}
            continue
        scores = leakage_scores(rows[present].astype("string").fillna(""), rows["label"], seed)
        out[city] = {
            c: {"mi_ratio": float(v["mi_ratio"]), "purity": float(v["purity"]), "leaky": bool(v["leaky"])}
            for c, v in scores.to_dict(orient="index").items()
        }
    return out
