"""Figure captions and report notes computed from the data shown, never fixed text about what the
generator happens to do: a real export with other classes or other hotspots gets other words."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crime_pipeline.lib.reports.plots import TIME_BANDS

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
    hour = pd.to_datetime(incidents["incident_datetime"]).dt.hour
    found = []
    for name, (lo, hi) in TIME_BANDS.items():
        band = incidents[(hour >= lo) & (hour < hi)]
        if len(band):
            found.append((name, *_densest_cell(band)))
    if not found:
        return "Density by time band: no incidents."
    name, lat, lon, share = max(found, key=lambda f: f[3])
    others = ", ".join(f"{n.split(' (')[0].lower()} {s:.1%}" for n, _, _, s in found if n != name)
    return (
        f"Density by time band: the most concentrated band is {name.split(' (')[0].lower()}, with {share:.1%} "
        f"of its incidents in one ~0.5 km cell around ({lat:.3f}, {lon:.3f}); the densest cell's share in the "
        f"other bands: {others}."
    )


def hotspots_by_type(incidents: pd.DataFrame) -> str:
    found = [(label, *_densest_cell(group)) for label, group in incidents.groupby("label") if len(group) >= 50]
    if not found:
        return "Density by type: too few incidents per type to compare places."
    label, lat, lon, share = max(found, key=lambda f: f[3])
    return (
        f"Density by type: {label} is the most concentrated type, {share:.1%} of its incidents in one ~0.5 km "
        f"cell around ({lat:.3f}, {lon:.3f}); where the panels differ, place carries information about the type."
    )


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


def confusion(kind: str, y: np.ndarray, pred: np.ndarray, classes: list[str]) -> str:
    if len(pred) == 0:
        return f"Confusion matrix, {kind}: no test incidents."
    top = int(np.bincount(pred, minlength=len(classes)).argmax())
    share = float(np.mean(pred == top))
    return (
        f"Confusion matrix, {kind}: rows are true types; {share:.1%} of all predictions are {classes[top]} "
        f"(which is {float(np.mean(y == top)):.1%} of the true types), so mass off the diagonal drifts there."
    )


def real_data_note(evaluation: dict) -> str:
    """What the numbers say when the Bayes limit is unknown, from the numbers themselves."""
    majority = evaluation["baselines"]["majority"]["accuracy"]
    best, metrics = max(evaluation["models"].items(), key=lambda kv: kv[1]["accuracy"])
    return (
        f"Real data: the best achievable accuracy is unknown. The best model, {best}, reaches "
        f"{metrics['accuracy']:.1%}, {100 * (metrics['accuracy'] - majority):+.1f} points from always guessing the "
        f"commonest type ({majority:.1%})."
    )
