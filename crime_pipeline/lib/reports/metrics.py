"""Class-aware metrics, the trivial baselines, and the comparison with the Bayes limit."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, precision_recall_fscore_support

EPS = 1e-15
ECE_BINS = 15


def expected_calibration_error(y: np.ndarray, proba: np.ndarray, bins: int = ECE_BINS) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins of the top class, weighted by size."""
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


def per_row_log_loss(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    return -np.log(np.clip(proba[np.arange(len(y)), y], EPS, 1))


def classification_metrics(y: np.ndarray, proba: np.ndarray, classes: list[str], probabilistic: bool = True) -> dict:
    """Every metric the evaluation reports, for true class ids `y` and class probabilities `proba`."""
    labels = list(range(len(classes)))
    pred = proba.argmax(axis=1)
    precision, recall, _, support = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    top3 = np.argsort(-proba, axis=1)[:, :3]
    return {
        "n": int(len(y)),
        "accuracy": float(accuracy_score(y, pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred))
        if len(set(y)) > 1
        else float(accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, labels=labels, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(y, pred, labels=labels, average="weighted", zero_division=0)),
        "log_loss": float(per_row_log_loss(y, proba).mean()) if probabilistic else None,
        "top3_accuracy": float((top3 == y[:, None]).any(axis=1).mean()),
        "ece": expected_calibration_error(y, proba) if probabilistic else None,
        "per_class_precision": {c: float(p) for c, p in zip(classes, precision)},
        "per_class_recall": {c: float(r) for c, r in zip(classes, recall)},
        "per_class_support": {c: int(s) for c, s in zip(classes, support)},
    }


def baseline_probabilities(train_y: np.ndarray, n_rows: int, n_classes: int) -> dict[str, np.ndarray]:
    """'majority' always says the commonest training class; 'prior' says the training class shares."""
    prior = np.bincount(train_y, minlength=n_classes) / max(len(train_y), 1)
    majority = np.zeros(n_classes)
    majority[prior.argmax()] = 1.0
    return {"majority": np.tile(majority, (n_rows, 1)), "prior": np.tile(prior, (n_rows, 1))}


def beats_bayes_by_more_than_noise(
    y: np.ndarray, model_proba: np.ndarray, bayes_proba: np.ndarray, z: float = 3.0
) -> dict:
    """Paired test: does a model do better than the true posterior beyond z standard errors?

    Nothing can beat the Bayes posterior in expectation, so a significant win means the model saw
    something the generator's features do not contain: a leak.
    """
    n = len(y)
    acc_diff = (model_proba.argmax(1) == y).astype(float) - (bayes_proba.argmax(1) == y).astype(float)
    loss_diff = per_row_log_loss(y, bayes_proba) - per_row_log_loss(y, model_proba)  # > 0: model better
    out = {}
    for name, diff in (("accuracy", acc_diff), ("log_loss", loss_diff)):
        se = diff.std(ddof=1) / np.sqrt(n) if n > 1 else np.inf
        out[name] = {
            "advantage": float(diff.mean()),
            "standard_error": float(se),
            "significant": bool(diff.mean() > z * se + 1e-12),
        }
    out["beats_bayes"] = out["accuracy"]["significant"] or out["log_loss"]["significant"]
    return out
