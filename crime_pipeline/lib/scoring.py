"""Scoring a CSV export with a saved model: the same reading, validation and features as training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from crime_pipeline.lib.artifacts import load_model, predict_proba
from crime_pipeline.lib.columns import normalise_header
from crime_pipeline.lib.features import time_place_features
from crime_pipeline.lib.reading import read_raw_csv
from crime_pipeline.lib.splits import apply_minmax
from crime_pipeline.lib.validation import validate_incidents


@dataclass(frozen=True)
class Scored:
    predictions: pd.DataFrame  # one row per valid incident: ids, predicted type, one column per class
    rejected: pd.DataFrame  # rows that failed validation: source line and rules


def probability_column(class_name: str) -> str:
    return "p_" + normalise_header(class_name)


def score_csv(path: Path, kind: str, models_folder: Path) -> Scored:
    """Validate a CSV in any accepted layout and score its valid rows with the saved `kind` model."""
    model, meta = load_model(models_folder, kind)
    raw = read_raw_csv(path).rows
    result = validate_incidents(raw)
    valid = result.valid
    features = time_place_features(valid["latitude"], valid["longitude"], valid["incident_datetime"])
    proba = predict_proba(kind, model, apply_minmax(features, meta["scaler"]), len(meta["classes"]))
    out = valid[["case_number", "incident_datetime", "latitude", "longitude", "source_line"]].copy()
    out["predicted_type"] = [meta["classes"][i] for i in proba.argmax(axis=1)]
    for j, name in enumerate(meta["classes"]):
        out[probability_column(name)] = proba[:, j]
    rejected = result.quarantine[["source_line", "rules"]].copy()
    return Scored(predictions=out, rejected=rejected)
