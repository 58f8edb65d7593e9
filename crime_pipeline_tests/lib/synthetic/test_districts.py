"""Generated districts are areas of the city: an incident's district follows its place."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crime_pipeline.lib import synthetic

COLUMNS = {
    "buffalo": ("Police District", "Council District", "neighborhood"),
    "chicago": ("District", "Ward", "Community Area"),
}


def _placed(city: str) -> pd.DataFrame:
    generated = synthetic.generate_incidents(3_000, seed=4, city=city)
    frame = generated.frame[generated.dirt == "clean"]  # dirt moves some points after they were placed
    lat = pd.to_numeric(frame["Latitude"], errors="coerce")
    lon = pd.to_numeric(frame["Longitude"], errors="coerce")
    return frame.assign(lat=lat, lon=lon).dropna(subset=["lat", "lon"])


def _spread(frame: pd.DataFrame) -> float:
    """Median distance (km) from the points to their centroid."""
    scale = np.cos(np.radians(frame["lat"].mean()))
    return float(np.median(np.hypot(frame["lat"] - frame["lat"].mean(), (frame["lon"] - frame["lon"].mean()) * scale)))


@pytest.mark.parametrize("city", ["buffalo", "chicago"])
def test_each_district_is_a_compact_area_not_scattered_over_the_city(city):
    frame = _placed(city)
    frame = frame[frame["lat"].between(frame["lat"].quantile(0.01), frame["lat"].quantile(0.99))]
    whole = _spread(frame)
    for column in COLUMNS[city]:
        groups = [rows for _, rows in frame.groupby(column) if len(rows) >= 20]
        assert len(groups) >= 3, column
        # Weighted by incidents: a district's incidents sit much closer together than the city's.
        ratio = sum(_spread(rows) * len(rows) for rows in groups) / sum(len(rows) for rows in groups) / whole
        assert ratio < 0.6, (column, ratio)


def test_the_same_place_is_always_in_the_same_district():
    frame = _placed("buffalo")
    for column in COLUMNS["buffalo"]:
        known = frame[frame[column] != "UNKNOWN"]  # the export's own gaps (dirt.py)
        per_place = known.groupby(["Latitude", "Longitude"])[column].nunique()
        assert (per_place == 1).all(), column


def test_districts_are_deterministic_per_seed():
    a = synthetic.generate_incidents(500, seed=9).frame
    b = synthetic.generate_incidents(500, seed=9).frame
    pd.testing.assert_frame_equal(a, b)
