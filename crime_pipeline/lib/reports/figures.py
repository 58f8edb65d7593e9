"""The report's figures and their captions, drawn from the evaluation and the tables it rests on."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from crime_pipeline.lib.cities.profiles import CityProfile
from crime_pipeline.lib.reports import captions, plots

# The order the report shows them in, after one confusion matrix per model.
FIGURE_ORDER = (
    "class_distribution.png",
    "hotspots_time_bands.png",
    "hotspots_types.png",
    "training_curves.png",
    "per_class_recall.png",
)


def figure_names(kinds) -> list[str]:
    return [f"confusion_{k}.png" for k in kinds] + list(FIGURE_ORDER)


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
    written: dict[str, str] = {}
    for kind in evaluation["models"]:
        pred = predictions[f"pred_{kind}"].to_numpy()
        path = plots.confusion_matrix_figure(
            y, pred, classes, f"Confusion matrix: {kind} (test split)", report_file(f"confusion_{kind}.png")
        )
        written[path.name] = captions.confusion(kind, y, pred, classes)
    recalls = {k: m["per_class_recall"] for k, m in evaluation["models"].items()}
    for path, caption in (
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
            captions.hotspots_by_type(incidents),
        ),
        (plots.training_curves_figure(history, report_file("training_curves.png")), captions.training_curves(history)),
        (
            plots.per_class_recall_figure(recalls, classes, report_file("per_class_recall.png")),
            captions.per_class_recall(recalls),
        ),
    ):
        written[path.name] = caption
    return written
