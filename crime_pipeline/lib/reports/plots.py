"""Figures a person reads at a glance: confusion matrices, training curves, hotspot maps, class balance."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from sklearn.metrics import confusion_matrix  # noqa: E402

from crime_pipeline.lib.cities.profiles import CityProfile, default_profile  # noqa: E402
from crime_pipeline.lib.lake.atomic import atomic_path  # noqa: E402
from crime_pipeline.lib.validate.unknown_time import with_known_time  # noqa: E402

TIME_BANDS = {
    "Late night (0-4h)": (0, 5),
    "Morning (5-11h)": (5, 12),
    "Afternoon (12-17h)": (12, 18),
    "Evening (18-23h)": (18, 24),
}


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def _row_normalised(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    matrix = confusion_matrix(y, pred, labels=range(n_classes)).astype(float)
    totals = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)


def confusion_matrices_figure(
    y: np.ndarray, predictions: dict[str, np.ndarray], classes: list[str], path: Path
) -> Path:
    """Every model's row-normalised confusion matrix as one small multiple: each row shows where
    incidents of one true type were sent. Type names on the outer panels only."""
    ncols = 2 if len(predictions) > 1 else 1
    nrows = int(np.ceil(len(predictions) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 4.9 * nrows), squeeze=False, layout="constrained")
    image = None
    for i, (ax, (kind, pred)) in enumerate(zip(axes.flat, predictions.items())):
        matrix = _row_normalised(y, pred, len(classes))
        image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
        for r in range(len(classes)):
            for c in range(len(classes)):
                if matrix[r, c] >= 0.005:  # blank cells stay blank: the eye finds the mass
                    color = "white" if matrix[r, c] > 0.5 else "black"
                    ax.text(c, r, f"{matrix[r, c]:.2f}", ha="center", va="center", fontsize=5.5, color=color)
        ax.set_title(f"{kind} (accuracy {np.mean(pred == y):.1%})" if len(y) else kind, fontsize=10)
        outer_row, first_col = i >= len(predictions) - ncols, i % ncols == 0
        ax.set_xticks(range(len(classes)), classes if outer_row else [], rotation=40, ha="right", fontsize=7)
        ax.set_yticks(range(len(classes)), classes if first_col else [], fontsize=7)
        if outer_row:
            ax.set_xlabel("predicted type", fontsize=8)
        if first_col:
            ax.set_ylabel("true type", fontsize=8)
    for ax in list(axes.flat)[len(predictions) :]:
        ax.axis("off")
    fig.suptitle("Confusion matrices on the test split: share of each true type's incidents by predicted type")
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), label="share of the true type's incidents", shrink=0.7)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path


def reliability_figure(reliability: dict[str, dict], path: Path) -> Path:
    """A reliability diagram per model: the top class's stated probability against how often it was
    right, per confidence bin; the diagonal is perfect calibration, bars show how many rows each bin holds."""
    ncols = min(len(reliability), 4) or 1
    fig, axes = plt.subplots(1, ncols, figsize=(3.6 * ncols, 4.0), squeeze=False)
    for ax, (kind, bins) in zip(axes.flat, reliability.items()):
        confidence, accuracy, count = (np.asarray(bins[k], dtype=float) for k in ("confidence", "accuracy", "count"))
        shown = count > 0
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
        ax.plot(confidence[shown], accuracy[shown], "o-", color="tab:blue", label="this model")
        share = ax.twinx()
        edges = np.asarray(bins["edges"], dtype=float)
        share.bar(edges[:-1], count / max(count.sum(), 1), width=np.diff(edges), align="edge", alpha=0.2, color="k")
        share.set_ylim(0, 1)
        share.tick_params(labelsize=6)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="stated probability of the predicted type")
        ax.set_title(f"{kind} (ECE {bins['ece']:.3f})", fontsize=10)
        ax.grid(alpha=0.3)
    axes.flat[0].set_ylabel("share of those predictions that were right")
    axes.flat[0].legend(fontsize=7, loc="upper left")
    fig.suptitle("Calibration on the test split (grey bars: share of rows per bin)", fontsize=11)
    return _save(fig, path)


def training_curves_figure(history: list[dict], path: Path) -> Path:
    """Loss and accuracy per epoch, training and validation, for the MLP."""
    frame = pd.DataFrame(history)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(frame["epoch"], frame["train_loss"], "o-", label="train")
    left.plot(frame["epoch"], frame["val_loss"], "s-", label="validation")
    left.set(xlabel="epoch", ylabel="cross-entropy loss", title="MLP loss")
    right.plot(frame["epoch"], frame["train_accuracy"], "o-", label="train")
    right.plot(frame["epoch"], frame["val_accuracy"], "s-", label="validation")
    right.set(xlabel="epoch", ylabel="accuracy", title="MLP accuracy")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path)


NO_INCIDENTS = "#9e9e9e"  # mid grey: not on inferno's black-to-yellow ramp, so an empty cell never reads as hot
HEXBIN_GRIDSIZE = 35


def _hexbin_grid(
    panels: dict[str, pd.DataFrame], title: str, path: Path, ncols: int, profile: CityProfile | None = None
) -> Path:
    profile = profile or default_profile()
    lat_range, lon_range = (profile.box.lat_min, profile.box.lat_max), (profile.box.lon_min, profile.box.lon_max)
    center = profile.center
    # Three longitude ticks that fit the panel (Buffalo's as they always were).
    ticks = [-78.90, -78.86, -78.82] if profile == default_profile() else np.round(np.linspace(*lon_range, 5)[1:-1], 2)
    nrows = int(np.ceil(len(panels) / ncols))
    width = 4.2 if ncols <= 3 else 3.4
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, (width + 0.2) * nrows), squeeze=False)
    image = None
    for i, (ax, (name, rows)) in enumerate(zip(axes.flat, panels.items())):
        # Colour = share of this panel's incidents per cell, on one log scale for every panel, so
        # panels of very different sizes compare fairly and the one colour bar is true for all.
        share = np.full(len(rows), 1.0 / max(len(rows), 1))
        image = ax.hexbin(
            rows["longitude"],
            rows["latitude"],
            C=share,
            reduce_C_function=np.sum,
            gridsize=HEXBIN_GRIDSIZE,
            extent=(*lon_range, *lat_range),
            cmap="inferno",
            norm=LogNorm(vmin=1e-4, vmax=2e-2),
        )
        ax.set_facecolor(NO_INCIDENTS)  # cells with no incident are not drawn: the grey shows through
        ax.plot(center[1], center[0], marker="*", color="cyan", markersize=10)
        ax.set_title(f"{name} (n={len(rows):,})" if len(rows) else f"{name} (no incidents)", fontsize=10)
        if i % ncols == 0:  # axis titles on the outer panels only, so nothing overlaps
            ax.set_ylabel("latitude")
        if i >= len(panels) - ncols:
            ax.set_xlabel("longitude")
        ax.set_xticks(ticks)
        ax.set_xlim(lon_range)
        ax.set_ylim(lat_range)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.subplots_adjust(wspace=0.3, hspace=0.3, right=0.82)
    fig.suptitle(
        title + "\ncolour: share of the panel's incidents per hexagonal cell; grey: no incidents; cyan star: downtown"
    )
    if image is not None:
        fig.colorbar(
            image, ax=axes.ravel().tolist(), label="share of the panel's incidents per cell (log scale)", shrink=0.8
        )
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path


def time_band_panels(incidents: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The incidents of each time band; those at the export's default time (unknown_time.py) are in none."""
    known = with_known_time(incidents)
    hour = pd.to_datetime(known["incident_datetime"]).dt.hour
    return {name: known[(hour >= lo) & (hour < hi)] for name, (lo, hi) in TIME_BANDS.items()}


def hotspots_by_time_band(incidents: pd.DataFrame, path: Path, profile: CityProfile | None = None) -> Path:
    """Where incidents happen in each time band: the late-night downtown cluster stands out."""
    panels = time_band_panels(incidents)
    left_out = len(incidents) - sum(len(p) for p in panels.values())
    title = "Incident density by time of day" + (f" ({left_out:,} of unknown time left out)" if left_out else "")
    return _hexbin_grid(panels, title, path, ncols=2, profile=profile)


def type_panels(incidents: pd.DataFrame, classes: list[str]) -> dict[str, pd.DataFrame]:
    """One panel per type in `classes`, commonest first, including types with no incident."""
    counts = incidents["label"].value_counts().reindex(classes, fill_value=0)
    return {name: incidents[incidents["label"] == name] for name in sorted(classes, key=lambda c: -counts[c])}


def hotspots_by_type(
    incidents: pd.DataFrame, classes: list[str], path: Path, profile: CityProfile | None = None
) -> Path:
    """Where each incident type happens: every type gets a panel, the rarest too (a type with no
    incident says so), commonest first."""
    panels = type_panels(incidents, classes)
    ncols = 3 if len(panels) <= 9 else 4
    title = f"Incident density by type: all {len(panels)} types, commonest first"
    return _hexbin_grid(panels, title, path, ncols=ncols, profile=profile)


def class_distribution_figure(labels: pd.Series, classes: list[str], path: Path) -> Path:
    """How many incidents of each type: the imbalance every metric must be read against."""
    counts = labels.value_counts().reindex(classes, fill_value=0)
    shares = counts / max(counts.sum(), 1)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    bars = ax.barh(classes[::-1], counts.to_numpy()[::-1], color="steelblue")
    for bar, share in zip(bars, shares.to_numpy()[::-1]):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {share:.1%}", va="center", fontsize=8)
    ax.set_xlabel("incidents")
    ax.set_title("Class distribution (all valid incidents)")
    ax.set_xlim(0, counts.max() * 1.15 if counts.max() else 1)
    return _save(fig, path)


def per_class_recall_figure(recalls: dict[str, dict[str, float]], classes: list[str], path: Path) -> Path:
    """Recall of every model for every type, side by side: who finds the rare types at all."""
    names = list(recalls)
    width = 0.8 / max(len(names), 1)
    y = np.arange(len(classes))
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for i, name in enumerate(names):
        ax.barh(y + i * width, [recalls[name].get(c, 0.0) for c in classes], height=width, label=name)
    ax.set_yticks(y + width * (len(names) - 1) / 2, classes, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("recall (share of the type's test incidents found)")
    ax.set_xlim(0, 1)
    ax.set_title("Per-class recall on the test split")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)
