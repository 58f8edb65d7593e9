"""The report's figures and their captions, drawn from the evaluation and the tables it rests on."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from crime_pipeline.lib.cities.profiles import CityProfile
from crime_pipeline.lib.reports import captions, plots

# The order the report shows them in.
FIGURE_ORDER = (
    "confusion_matrices.png",
    "reliability.png",
    "class_distribution.png",
    "hotspots_time_bands.png",
    "hotspots_types.png",
    "training_curves.png",
    "per_class_recall.png",
)


def figure_names(kinds=None) -> list[str]:
    """Every figure's file name, in the report's order (one small multiple holds every model's panel)."""
    return list(FIGURE_ORDER)


def draw_figures(
    report_file: Callable[[str], object],
    evaluation: dict,
    incidents: pd.DataFrame,
    predictions: pd.DataFrame,
    history: list,
    profile: CityProfile | None = None,
) -> dict[str, str]:
    """Write every PNG through `report_file(name)`; return {file name: caption computed from its data}."""
    classes = evaluation["classes"]
    y = predictions["label_id"].to_numpy()
    predicted = {kind: predictions[f"pred_{kind}"].to_numpy() for kind in evaluation["models"]}
    recalls = {k: m["per_class_recall"] for k, m in evaluation["models"].items()}
    reliability = evaluation.get("reliability") or {}
    written: dict[str, str] = {}
    for path, caption in (
        (
            plots.confusion_matrices_figure(y, predicted, classes, report_file("confusion_matrices.png")),
            captions.confusion_grid(predicted, y, classes),
        ),
        (
            plots.reliability_figure(reliability, report_file("reliability.png")) if reliability else None,
            captions.reliability(reliability),
        ),
        (
            plots.class_distribution_figure(incidents["label"], classes, report_file("class_distribution.png")),
            captions.class_distribution(incidents["label"]),
        ),
        (
            plots.hotspots_by_time_band(incidents, report_file("hotspots_time_bands.png"), profile),
            captions.hotspots_by_time_band(incidents),
        ),
        (
            plots.hotspots_by_type(incidents, classes, report_file("hotspots_types.png"), profile=profile),
            captions.hotspots_by_type(incidents, classes),
        ),
        (plots.training_curves_figure(history, report_file("training_curves.png")), captions.training_curves(history)),
        (
            plots.per_class_recall_figure(recalls, classes, report_file("per_class_recall.png")),
            captions.per_class_recall(recalls),
        ),
    ):
        if path is not None:  # an evaluation from before calibration was recorded has no reliability bins
            written[path.name] = caption
    return written
