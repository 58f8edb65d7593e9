"""Leak-proof features from time and place only.

Features are computed from an allow-list of three source fields: latitude, longitude and the
incident datetime. Everything recorded with or after the report (`Incident Type Primary`,
`Incident Description`, case numbers, `Created At`, `updated_at`, clearance) never reaches a model:
the first two are the label in disguise, the rest describe the report, not the incident.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pandas.tseries.holiday import USFederalHolidayCalendar

from crime_pipeline.lib.cities.profiles import CityProfile, default_profile, get_profile
from crime_pipeline.lib.validate.unknown_time import day_unknown, time_unknown

SOURCE_COLUMNS: tuple[str, ...] = ("latitude", "longitude", "incident_datetime")
KM_PER_DEG_LAT = 111.0
GRID_SIZE_DEG = 0.01  # about 1.1 km x 0.8 km cells
CITY_COLUMN = "city"  # which city profile a row belongs to: carried, never a feature

# Every feature column and the source fields it is computed from (the column lineage).
FEATURE_LINEAGE: dict[str, tuple[str, ...]] = {
    "latitude": ("latitude",),
    "longitude": ("longitude",),
    "dist_downtown_km": ("latitude", "longitude"),
    "grid_cell": ("latitude", "longitude"),
    "hour": ("incident_datetime",),
    "hour_sin": ("incident_datetime",),
    "hour_cos": ("incident_datetime",),
    "weekday": ("incident_datetime",),
    "weekday_sin": ("incident_datetime",),
    "weekday_cos": ("incident_datetime",),
    "is_weekend": ("incident_datetime",),
    "is_holiday": ("incident_datetime",),
    "month": ("incident_datetime",),
    "month_sin": ("incident_datetime",),
    "month_cos": ("incident_datetime",),
    "day_of_month": ("incident_datetime",),
    "year": ("incident_datetime",),
    "time_unknown": ("incident_datetime",),
    "day_unknown": ("incident_datetime",),
}
FEATURE_COLUMNS: tuple[str, ...] = tuple(FEATURE_LINEAGE)
# What models see by default. `year` stays out: under a temporal split every test year is unseen,
# so a model could only extrapolate it. `grid_cell` is an id, kept for maps and analysis.
MODEL_FEATURES: tuple[str, ...] = tuple(c for c in FEATURE_COLUMNS if c not in ("year", "grid_cell"))
ID_COLUMNS: tuple[str, ...] = ("case_number", "incident_datetime")
# An hour, weekday or day of month the export did not know (lib/validate/unknown_time.py): the
# integer feature says so with -1, its cyclic pair sits at the circle's centre (0, 0), and the
# flags `is_weekend` / `is_holiday` are 0; `time_unknown` / `day_unknown` tell the model why.
UNKNOWN = -1


def label_map(profile: CityProfile | None = None) -> dict[str, int]:
    """The stable class -> index map of a city (the default city's by default), saved beside the feature table."""
    return {name: i for i, name in enumerate((profile or default_profile()).class_names)}


def _cyclic(values: pd.Series, period: int, unknown: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """sin and cos of the value's angle; (0, 0), the circle's centre, where it is unknown."""
    angle = 2 * np.pi * values.to_numpy(dtype=float) / period
    known = 1.0 if unknown is None else (~unknown).astype(float)
    return np.sin(angle) * known, np.cos(angle) * known


def time_place_features(
    latitude: pd.Series, longitude: pd.Series, when: pd.Series, profile: CityProfile | None = None
) -> pd.DataFrame:
    """The feature columns (in `FEATURE_COLUMNS` order) from the three allowed source fields.

    Distances are from the city's central point; grid cells count from the 0.1-degree corner below its box.
    """
    profile = profile or default_profile()
    center = profile.center
    km_per_deg_lon = 111.0 * np.cos(np.radians(center[0]))
    origin_lat, origin_lon = np.floor(profile.box.lat_min * 10) / 10, np.floor(profile.box.lon_min * 10) / 10
    when = pd.to_datetime(when)
    lat = latitude.to_numpy(dtype=float)
    lon = longitude.to_numpy(dtype=float)
    out = pd.DataFrame(index=latitude.index)
    out["latitude"], out["longitude"] = lat, lon
    out["dist_downtown_km"] = np.hypot((lat - center[0]) * KM_PER_DEG_LAT, (lon - center[1]) * km_per_deg_lon)
    out["grid_cell"] = (
        np.floor((lat - origin_lat) / GRID_SIZE_DEG) * 100 + np.floor((lon - origin_lon) / GRID_SIZE_DEG)
    ).astype(int)
    frame = pd.DataFrame({"incident_datetime": when})
    no_time, no_day = time_unknown(frame).to_numpy(), day_unknown(frame).to_numpy()
    out["hour"] = np.where(no_time, UNKNOWN, when.dt.hour).astype(int)
    out["hour_sin"], out["hour_cos"] = _cyclic(out["hour"], 24, no_time)
    out["weekday"] = np.where(no_day, UNKNOWN, when.dt.day_of_week).astype(int)
    out["weekday_sin"], out["weekday_cos"] = _cyclic(out["weekday"], 7, no_day)
    out["is_weekend"] = (out["weekday"] >= 5).astype(int)
    days = when.dt.normalize()
    holidays = USFederalHolidayCalendar().holidays(days.min(), days.max()) if len(days) else []
    out["is_holiday"] = (days.isin(holidays).to_numpy() & ~no_day).astype(int)
    out["month"] = when.dt.month.astype(int)
    out["month_sin"], out["month_cos"] = _cyclic(out["month"] - 1, 12)
    out["day_of_month"] = np.where(no_day, UNKNOWN, when.dt.day).astype(int)
    out["year"] = when.dt.year.astype(int)
    out["time_unknown"] = no_time.astype(int)
    out["day_unknown"] = no_day.astype(int)
    return out[list(FEATURE_COLUMNS)]


def build_feature_table(
    incidents: pd.DataFrame, with_city: bool | None = None, lake_root: str | Path | None = None
) -> pd.DataFrame:
    """Ids, features and label for every incident; only `SOURCE_COLUMNS` feed the features.

    Each city's rows get its own geography and `label_id` is the index in that city's classes; a
    `city` column is carried at the end (it is no feature) when `with_city`, which defaults to
    whether the rows hold any city but the default one: Buffalo's feature table stays what it always
    was. A caller building one table in batches passes it, so every batch has the same columns.
    Cities' profiles are looked up among `lake_root`'s (its `cities/` folder and the built-ins).
    """
    incidents = incidents.reset_index(drop=True)
    default = default_profile().key
    present = set(incidents[CITY_COLUMN].unique()) if CITY_COLUMN in incidents else {default}
    if with_city is None:
        with_city = not present <= {default}
    if not with_city:
        if not present <= {default}:
            raise ValueError(f"rows of {sorted(map(str, present - {default}))} need the city column")
        return _feature_table(incidents, default_profile())
    if CITY_COLUMN not in incidents:
        incidents = incidents.assign(**{CITY_COLUMN: default})
    parts = [
        _feature_table(rows, get_profile(city, lake_root=lake_root)).set_index(rows.index).assign(city=city)
        for city, rows in incidents.groupby(CITY_COLUMN, sort=False)
    ]
    if not parts:
        return _feature_table(incidents, default_profile()).assign(city=pd.Series(dtype=object))
    return pd.concat(parts).sort_index()


def _feature_table(incidents: pd.DataFrame, profile: CityProfile) -> pd.DataFrame:
    features = time_place_features(
        incidents["latitude"], incidents["longitude"], incidents["incident_datetime"], profile
    )
    table = pd.concat([incidents[list(ID_COLUMNS)].reset_index(drop=True), features.reset_index(drop=True)], axis=1)
    table["label"] = incidents["label"].to_numpy()
    table["label_id"] = table["label"].map(label_map(profile)).astype(int)
    return table
