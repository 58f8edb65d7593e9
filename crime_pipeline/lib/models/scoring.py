"""Scoring a CSV export with a saved model: the same reading, validation and features as training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from crime_pipeline.lib.cities.columns import normalise_header
from crime_pipeline.lib.cities.profiles import DEFAULT_CITY, get_profile, model_name, profiles
from crime_pipeline.lib.features.splits import apply_minmax
from crime_pipeline.lib.features.table import FEATURE_COLUMNS, time_place_features
from crime_pipeline.lib.ingest.raw_csv import read_raw_csv
from crime_pipeline.lib.lake import storage
from crime_pipeline.lib.models.artifacts import ArtifactError, load_model, predict_proba
from crime_pipeline.lib.validate.validate import validate_incidents


@dataclass(frozen=True)
class Scored:
    predictions: pd.DataFrame  # one row per valid incident: ids, predicted type, one column per class
    rejected: pd.DataFrame  # rows that failed validation: source line and rules
    model_version: str = ""  # which published model scored them
    city: str = "buffalo"  # whose model it was
    training_data: str = "not recorded"  # "generated", "real" or "mixed": what the model was trained on

    @property
    def training_note(self) -> str | None:
        """The sentence `predict` prints when the model did not learn from real incidents only."""
        if self.training_data == "generated":
            return (
                f"note: this {self.city} model was trained on generated data (crime_pipeline's synthetic "
                "generator), not on real incidents: its probabilities describe the generator's city, not "
                "recorded crime; do not use them for decisions."
            )
        if self.training_data == "mixed":
            return f"note: this {self.city} model was trained on a mix of generated and real files."
        if self.training_data == "not recorded":
            return "note: this model's metadata does not record whether it was trained on generated or real data."
        return None


def describe_version(meta: dict) -> str:
    """One line naming a published model: when it passed its checks, its weights and its data."""
    return (
        f"published {meta.get('published_at', 'at an unknown time')}, weights {meta['weights_sha256'][:12]}, "
        f"trained on data version {meta.get('data_version', 'unknown')}"
    )


def probability_column(class_name: str) -> str:
    return "p_" + normalise_header(class_name)


# Spreadsheets run a cell starting with these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells cannot start a formula (prefixed with a single quote); numbers untouched."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_object_dtype(out[column]) or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(
                lambda v: "'" + v if isinstance(v, str) and v.startswith(FORMULA_STARTS) else v, na_action="ignore"
            )
    return out


def predictions_geojson(predictions: pd.DataFrame) -> dict:
    """The scored incidents as an RFC 7946 FeatureCollection of points ([longitude, latitude]) with the
    case number, time, predicted type and every class probability: a layer QGIS opens as it is."""
    properties = [c for c in predictions.columns if c not in ("latitude", "longitude")]
    frame = predictions.copy()
    frame["incident_datetime"] = pd.to_datetime(frame["incident_datetime"]).dt.strftime("%Y-%m-%dT%H:%M:%S")
    located = frame[frame["latitude"].notna() & frame["longitude"].notna()]
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [float(lon), float(lat)]},
            "properties": {k: _plain(v) for k, v in zip(properties, values)},
        }
        for lon, lat, *values in located[["longitude", "latitude", *properties]].itertuples(index=False, name=None)
    ]
    return {"type": "FeatureCollection", "features": features}


def _plain(value):
    """A JSON value: numpy scalars as Python numbers, missing as null."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def model_cities(models_folder: Path, kind: str, lake_root: str | Path | None = None) -> list[str]:
    """The cities with a published `kind` model in the folder."""
    known = profiles(lake_root)
    return sorted(c for c in known if storage.exists(models_folder / f"{model_name(kind, c)}.json"))


def score_csv(
    path: Path, kind: str, models_folder: Path, city: str | None = None, lake_root: str | Path | None = None
) -> Scored:
    """Validate a CSV in any accepted layout and score its valid rows with the saved `kind` model of
    its city: `city`, else the only city with such a model, else the city the file's header names.
    City profiles come from the built-ins and the lake at `lake_root` (default: the default lake)."""
    known = profiles(lake_root)
    available = model_cities(models_folder, kind, lake_root)
    if city is None and not available:
        load_model(models_folder, kind)  # raises: names the missing model and how to make it
    if city is None and len(available) == 1:
        city = available[0]
    if city is not None:
        try:
            profile = get_profile(city, lake_root)
        except ValueError as exc:
            raise ArtifactError(str(exc)) from exc
        read = read_raw_csv(path, cities={city: profile})
    else:
        read = read_raw_csv(path, cities=known)
        city = read.city
        if city not in available:
            raise ArtifactError(
                f"{Path(path).name} is a {city} export but the {kind} models in {models_folder} are "
                f"for {', '.join(available) or 'no city'}; pass --city"
            )
    model, meta = load_model(models_folder, kind, model_name(kind, city))
    if meta.get("city", DEFAULT_CITY) != city:
        raise ArtifactError(
            f"{model_name(kind, city)}.json in {models_folder} was trained for {meta.get('city')}, not {city}"
        )
    unknown = [f for f in meta["features"] if f not in FEATURE_COLUMNS]
    if unknown:
        raise ArtifactError(
            f"{models_folder / (kind + '.json')} names features this version does not compute: {', '.join(unknown)}"
        )
    profile = get_profile(city, lake_root)
    result = validate_incidents(read.rows, profile=profile)
    valid = result.valid
    features = time_place_features(valid["latitude"], valid["longitude"], valid["incident_datetime"], profile)
    proba = predict_proba(kind, model, apply_minmax(features, meta["scaler"]), len(meta["classes"]))
    out = valid[["case_number", "incident_datetime", "latitude", "longitude", "source_line"]].copy()
    out["predicted_type"] = [meta["classes"][i] for i in proba.argmax(axis=1)]
    for j, name in enumerate(meta["classes"]):
        out[probability_column(name)] = proba[:, j]
    rejected = result.quarantine[["source_line", "rules"]].copy()
    return Scored(
        predictions=out,
        rejected=rejected,
        model_version=describe_version(meta),
        city=city,
        training_data=meta.get("training_data", "not recorded"),
    )
