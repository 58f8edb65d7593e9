"""Figure captions and report notes computed from the data shown, never fixed text about what the
generator happens to do: a real export with other classes or other hotspots gets other words."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crime_pipeline.lib.reports.plots import time_band_panels
from crime_pipeline.lib.validate.unknown_time import time_left_out

CELL_DEG = 0.005  # about 550 m x 400 m: the size of a place a reader can find on a map


def _densest_cell(frame: pd.DataFrame) -> tuple[float, float, float]:
    """(lat, lon, share) of the grid cell holding the largest share of `frame`'s incidents."""
    cells = pd.DataFrame(
        {"lat": np.floor(frame["latitude"] / CELL_DEG), "lon": np.floor(frame["longitude"] / CELL_DEG)}
    )
    counts = cells.value_counts()
    (lat, lon), top = counts.index[0], counts.iloc[0]
    return (lat + 0.5) * CELL_DEG, (lon + 0.5) * CELL_DEG, float(top / len(frame))


def class_distribution(labels: pd.Series) -> str:
    counts = labels.value_counts()
    if counts.empty:
        return "Class distribution: no incidents."
    return (
        f"Class distribution: {counts.index[0]} is the largest class, {counts.iloc[0] / counts.sum():.1%} of "
        f"{counts.sum():,} incidents, and the smallest ({counts.index[-1]}) is {counts.iloc[-1] / counts.sum():.2%}; "
        "read every accuracy against this imbalance."
    )


def hotspots_by_time_band(incidents: pd.DataFrame) -> str:
    """The report's and the notebook's sentence: incidents of unknown time are in no band, and it says how many."""
    found = [(name, *_densest_cell(band)) for name, band in time_band_panels(incidents).items() if len(band)]
    left_out = time_left_out(incidents)
    if not found:
        return " ".join(filter(None, ("Density by time band: no incidents with a known time.", left_out)))
    name, lat, lon, share = max(found, key=lambda f: f[3])
    others = ", ".join(f"{n.split(' (')[0].lower()} {s:.1%}" for n, _, _, s in found if n != name)
    text = (
        f"Density by time band: the most concentrated band is {name.split(' (')[0].lower()}, with {share:.1%} "
        f"of its incidents in one ~0.5 km cell around ({lat:.3f}, {lon:.3f}); the densest cell's share in the "
        f"other bands: {others}."
    )
    return f"{text} {left_out}" if left_out else text


def hotspots_by_type(incidents: pd.DataFrame, classes: list[str] | None = None) -> str:
    counts = incidents["label"].value_counts()
    classes = list(classes) if classes is not None else list(counts.index)
    counts = counts.reindex(classes, fill_value=0)
    rarest = counts.sort_values().index[0] if len(counts) else None
    drawn = (
        f"All {len(classes)} types are drawn, the rarest ({rarest}, {counts[rarest]:,} incidents) included"
        + (f"; {', '.join(c for c in classes if counts[c] == 0)} had none" if (counts == 0).any() else "")
        + ". "
        if classes
        else ""
    )
    found = [(label, *_densest_cell(group)) for label, group in incidents.groupby("label") if len(group) >= 50]
    if not found:
        return f"Density by type: {drawn}Too few incidents per type to compare places."
    label, lat, lon, share = max(found, key=lambda f: f[3])
    return (
        f"Density by type: {drawn}{label} is the most concentrated type with at least 50 incidents, {share:.1%} of "
        f"its incidents in one ~0.5 km cell around ({lat:.3f}, {lon:.3f}); where the panels differ, place carries "
        "information about the type. Panels with few incidents are noisy: read them as where, not how much."
    )


def reliability(bins_by_model: dict[str, dict]) -> str:
    """Per model, which way its probabilities lean: stated above how often it is right (overconfident),
    below (underconfident), or close (within 1 point on average)."""
    if not bins_by_model:
        return "Calibration: no models."
    parts = []
    for kind, bins in bins_by_model.items():
        count = np.asarray(bins["count"], dtype=float)
        if count.sum() == 0:
            parts.append(f"{kind}: no test incidents")
            continue
        lean = float(np.sum(count * (np.asarray(bins["confidence"]) - np.asarray(bins["accuracy"]))) / count.sum())
        way = (
            "well calibrated on average"
            if abs(lean) < 0.01
            else f"overconfident (it states {lean:.1%} more than it gets right)"
            if lean > 0
            else f"underconfident (it gets {-lean:.1%} more right than it states)"
        )
        parts.append(f"{kind} is {way}, ECE {bins['ece']:.3f}")
    return "Calibration: " + "; ".join(parts) + ". Points on the diagonal are calibrated."


def training_curves(history: list[dict]) -> str:
    if not history:
        return "MLP training curves: no training history."
    losses = [h["val_loss"] for h in history]
    best = int(np.argmin(losses))
    after = losses[best + 1 :]
    trend = (
        f"then rose to {after[-1]:.4f} (overfitting; the best epoch's weights were kept)"
        if after and after[-1] > losses[best] + 1e-3
        else "and had stopped improving"
        if after
        else "and was still falling when training stopped: more epochs might help"
    )
    return (
        f"MLP training curves: validation loss reached its minimum {losses[best]:.4f} at epoch "
        f"{history[best]['epoch']} of {len(history)}, {trend}."
    )


def per_class_recall(recalls: dict[str, dict[str, float]]) -> str:
    if not recalls:
        return "Per-class recall: no models."
    classes = list(next(iter(recalls.values())))
    never = [c for c in classes if all(r.get(c, 0.0) == 0.0 for r in recalls.values())]
    macro = {k: float(np.mean(list(r.values()))) for k, r in recalls.items()}
    best = max(macro, key=macro.get)
    missed = f"no model finds {', '.join(never)} at all" if never else "every type is found by some model"
    return f"Per-class recall: {best} has the highest mean recall ({macro[best]:.3f}); {missed}."


def _shares(values: np.ndarray, n_classes: int) -> np.ndarray:
    return np.bincount(values, minlength=n_classes) / max(len(values), 1)


SAME_SHARE = 0.005  # half a point: closer than this, a type is predicted about as often as it occurs


def confusion(kind: str, y: np.ndarray, pred: np.ndarray, classes: list[str]) -> str:
    """Which way the model's predictions lean: the type it predicts most, whether that is more or less
    often than the type occurs, and the type predicted most above its true share (where mass drifts)."""
    if len(pred) == 0:
        return f"{kind}: no test incidents."
    predicted, true = _shares(pred, len(classes)), _shares(y, len(classes))
    top = int(predicted.argmax())
    lean = predicted[top] - true[top]
    verdict = (
        "about as often as it occurs"
        if abs(lean) < SAME_SHARE
        else f"so it over-predicts {classes[top]}"
        if lean > 0
        else f"so it under-predicts {classes[top]}"
    )
    excess = predicted - true
    drift = int(excess.argmax())
    where = (
        f"mass off the diagonal drifts toward {classes[drift]} ({predicted[drift]:.1%} predicted, "
        f"{true[drift]:.1%} true)"
        if excess[drift] >= SAME_SHARE
        else "no type draws mass off the diagonal"
    )
    return (
        f"{kind}: {predicted[top]:.1%} of all predictions are {classes[top]}, which is {true[top]:.1%} of the true "
        f"types, {verdict}; {where}."
    )


def confusion_grid(kinds_and_predictions: dict[str, np.ndarray], y: np.ndarray, classes: list[str]) -> str:
    """The small-multiple figure's caption: one computed sentence per model."""
    sentences = " ".join(confusion(kind, y, pred, classes) for kind, pred in kinds_and_predictions.items())
    return f"Confusion matrices (rows are true types, each row sums to 1). {sentences}"


def real_data_note(evaluation: dict) -> str:
    """What the numbers say when the Bayes limit is unknown, from the numbers themselves."""
    majority = evaluation["baselines"]["majority"]["accuracy"]
    best, metrics = max(evaluation["models"].items(), key=lambda kv: kv[1]["accuracy"])
    return (
        f"Real data: the best achievable accuracy is unknown. The best model, {best}, reaches "
        f"{metrics['accuracy']:.1%}, {100 * (metrics['accuracy'] - majority):+.1f} points from always guessing the "
        f"commonest type ({majority:.1%})."
    )
