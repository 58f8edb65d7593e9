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


def confusion_matrix_figure(y: np.ndarray, pred: np.ndarray, classes: list[str], title: str, path: Path) -> Path:
    """Row-normalised confusion matrix: each row shows where incidents of one true type were sent."""
    matrix = confusion_matrix(y, pred, labels=range(len(classes))).astype(float)
    matrix = np.divide(
        matrix,
        matrix.sum(axis=1, keepdims=True),
        out=np.zeros_like(matrix),
        where=matrix.sum(axis=1, keepdims=True) > 0,
    )
    fig, ax = plt.subplots(figsize=(8.5, 7))
    image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(
                j,
                i,
                f"{matrix[i, j]:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if matrix[i, j] > 0.5 else "black",
            )
    ax.set_xlabel("predicted type")
    ax.set_ylabel("true type")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="share of the true type's incidents")
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


def _hexbin_grid(
    panels: dict[str, pd.DataFrame], title: str, path: Path, ncols: int, profile: CityProfile | None = None
) -> Path:
    profile = profile or default_profile()
    lat_range, lon_range = (profile.box.lat_min, profile.box.lat_max), (profile.box.lon_min, profile.box.lon_max)
    center = profile.center
    # Three longitude ticks that fit the panel (Buffalo's as they always were).
    ticks = [-78.90, -78.86, -78.82] if profile == default_profile() else np.round(np.linspace(*lon_range, 5)[1:-1], 2)
    nrows = int(np.ceil(len(panels) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 4.4 * nrows), squeeze=False)
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
            gridsize=35,
            extent=(*lon_range, *lat_range),
            cmap="inferno",
            norm=LogNorm(vmin=1e-4, vmax=2e-2),
        )
        ax.plot(center[1], center[0], marker="*", color="cyan", markersize=10)
        ax.set_title(f"{name} (n={len(rows):,})", fontsize=10)
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
    fig.suptitle(title + "   (cyan star: downtown)")
    if image is not None:
        fig.colorbar(
            image, ax=axes.ravel().tolist(), label="share of the panel's incidents per cell (log scale)", shrink=0.8
        )
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path


def hotspots_by_time_band(incidents: pd.DataFrame, path: Path, profile: CityProfile | None = None) -> Path:
    """Where incidents happen in each time band: the late-night downtown cluster stands out."""
    hour = pd.to_datetime(incidents["incident_datetime"]).dt.hour
    panels = {name: incidents[(hour >= lo) & (hour < hi)] for name, (lo, hi) in TIME_BANDS.items()}
    return _hexbin_grid(panels, "Incident density by time of day", path, ncols=2, profile=profile)


def hotspots_by_type(
    incidents: pd.DataFrame, classes: list[str], path: Path, top: int = 6, profile: CityProfile | None = None
) -> Path:
    """Where the main incident types happen."""
    counts = incidents["label"].value_counts()
    main = [c for c in classes if c in counts.index][:top]
    main = sorted(main, key=lambda c: -counts[c])
    panels = {name: incidents[incidents["label"] == name] for name in main}
    return _hexbin_grid(panels, "Incident density by type", path, ncols=3, profile=profile)


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
