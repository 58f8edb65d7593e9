"""The forecast stages on a tiny lake: counts, a week's forecast with its leak audit, the backtest.

The lake holds an `incidents` table written by hand: a hotspot cell that gets an incident every
day and a scatter elsewhere, over ten weeks. No Dagster run: the stage functions are called with a
DeclaredReads as the assets call them.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from crime_pipeline.lib.forecast import stages, weekly_scores
from crime_pipeline.lib.forecast.base import Forecast
from crime_pipeline.lib.forecast.geojson import flagged_cells_geojson
from crime_pipeline.lib.forecast.grid import Grid
from crime_pipeline.lib.forecast.settings import ForecastSettings
from crime_pipeline.lib.lake.atomic import rejected_path
from crime_pipeline.lib.lake.layout import LakeLayout
from crime_pipeline.lib.lake.parquet import write_parquet
from crime_pipeline.lib.lake.reads import DeclaredReads

HOT = (42.90, -78.85)  # inside Buffalo's box
FIRST = pd.Timestamp("2024-01-01")  # a Monday


def tiny_incidents(weeks: int = 10, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = pd.date_range(FIRST, periods=weeks * 7, freq="D")
    hot = pd.DataFrame({"incident_datetime": days + pd.Timedelta(hours=20), "latitude": HOT[0], "longitude": HOT[1]})
    n = len(days) * 2
    scatter = pd.DataFrame(
        {
            "incident_datetime": FIRST + pd.to_timedelta(rng.uniform(0, weeks * 7, n), unit="D"),
            "latitude": rng.uniform(42.83, 42.96, n),
            "longitude": rng.uniform(-78.90, -78.80, n),
        }
    )
    frame = pd.concat([hot, scatter], ignore_index=True)
    frame["incident_datetime"] = frame["incident_datetime"].dt.floor("s")
    return frame.assign(case_number=[f"C{i}" for i in range(len(frame))], label="Theft", city="buffalo")


def reader(layout: LakeLayout, step: str) -> DeclaredReads:
    deps = {
        "forecast_counts": {"incidents", "external"},
        "hotspot_forecast": {"forecast_counts", "external"},
        "forecast_backtest": {"forecast_counts", "hotspot_forecast"},
    }[step]
    return DeclaredReads(layout, step, {step, *deps})


@pytest.fixture
def lake(tmp_path) -> LakeLayout:
    layout = LakeLayout(tmp_path / "lake").ensure()
    write_parquet(layout.table("incidents"), tiny_incidents())
    return layout


def counts(layout: LakeLayout, **settings) -> stages.CountsBuilt:
    options = {"test_weeks": 3, "cell_m": 500.0, "methods": ("last_period", "long_run")} | settings
    return stages.build_forecast_counts(reader(layout, "forecast_counts"), ForecastSettings(**options))


def test_counts_record_the_grid_and_the_last_complete_weeks(lake):
    built = counts(lake)
    setup = json.loads(lake.path("forecast_setup").read_text())
    # ten weeks of data from Monday 1 January: the last complete week starts 4 March
    assert setup["test_weeks"] == ["2024-02-19", "2024-02-26", "2024-03-04"]
    assert built.events == 70 * 3 and setup["events_outside_grid"] == 0
    grid = Grid(**setup["grid"])
    hot_cell = int(grid.cell_of([HOT[0]], [HOT[1]])[0])
    per_cell = built.nonzero.groupby("cell")["count"].sum()
    assert per_cell.idxmax() == hot_cell and per_cell[hot_cell] >= 70


def test_test_window_from_a_date_and_without_history():
    settings = ForecastSettings(test_from="2024-01-10")
    weeks = stages.complete_weeks(FIRST, pd.Timestamp("2024-01-28 23:00"), settings)
    assert weeks == ["2024-01-08", "2024-01-15", "2024-01-22"]  # the first week is history only
    assert stages.complete_weeks(FIRST, pd.Timestamp("2024-01-05"), ForecastSettings()) == []


def test_a_week_forecast_ranks_the_hotspot_first_and_records_its_evidence(lake):
    counts(lake)
    issued = stages.issue_forecast(reader(lake, "hotspot_forecast"), "2024-03-04")
    assert issued.published and not issued.leaks
    frame = pd.read_parquet(lake.path("hotspot_forecast", week="2024-03-04"))
    grid = Grid(**json.loads(lake.path("forecast_setup").read_text())["grid"])
    hot_cell = int(grid.cell_of([HOT[0]], [HOT[1]])[0])
    for method in ("last_period", "long_run"):
        rows = frame[frame["method"] == method]
        assert rows.loc[rows["rank"] == 1, "cell"].item() == hot_cell
        assert rows["flagged_1"].sum() == round(0.01 * grid.n_cells) or rows["flagged_1"].sum() == 1
        assert (rows["latest_event_used"] < pd.Timestamp("2024-03-04")).all()
    assert set(frame.columns) >= {"cell", "method", "expected", "rank", "flagged_1", "flagged_2", "flagged_5"}


def peeking(history, grid, issue_time, period, settings) -> Forecast:
    """A planted leak: a method that reads the whole events file, its own week included."""
    everything = pd.read_parquet(peeking.events)
    expected = np.bincount(grid.cell_of(everything["lat"], everything["lon"]), minlength=grid.n_cells).astype(float)
    return Forecast("peeking", issue_time, expected, everything["time"].max(), {})


def test_a_planted_leak_is_caught_and_not_published(lake):
    counts(lake)
    peeking.events = lake.path("forecast_events")
    issued = stages.issue_forecast(reader(lake, "hotspot_forecast"), "2024-03-04", methods={"peeking": peeking})
    assert not issued.published
    assert [leak["method"] for leak in issued.leaks] == ["peeking"]
    assert not lake.path("hotspot_forecast", week="2024-03-04").exists()
    assert rejected_path(lake.path("hotspot_forecast", week="2024-03-04")).exists()


def test_the_backtest_scores_published_weeks_and_names_the_missing(lake):
    counts(lake)
    for week in ("2024-02-26", "2024-03-04"):
        stages.issue_forecast(reader(lake, "hotspot_forecast"), week)
    scored = weekly_scores.score_backtest(reader(lake, "forecast_backtest"))
    assert scored.weeks_scored == ["2024-02-26", "2024-03-04"] and scored.weeks_missing == ["2024-02-19"]
    summary = scored.summary.set_index(["method", "area_share"])
    # the hotspot cell holds 7 of about 21 incidents a week: PAI at 1% is far above 1 for both methods
    assert summary.loc[("long_run", 0.01), "pai"] > 5
    assert summary.loc[("long_run", 0.01), "pai_low"] <= summary.loc[("long_run", 0.01), "pai"]
    assert scored.lead["method"] in {"last_period", "long_run"}
    assert all(path.exists() and path.stat().st_size > 10_000 for path in scored.figures.values())
    geo = json.loads(scored.geojson.read_text())
    assert geo["type"] == "FeatureCollection" and len(geo["features"]) > 0


def test_a_week_forecast_on_another_grid_is_not_scored_against_these_counts(lake):
    counts(lake)
    for week in ("2024-02-26", "2024-03-04"):
        stages.issue_forecast(reader(lake, "hotspot_forecast"), week)
    counts(lake, cell_m=250.0)  # the counts rebuilt on a finer grid: both weeks' cells mean other places
    stages.issue_forecast(reader(lake, "hotspot_forecast"), "2024-03-04")  # issued again on this grid
    scored = weekly_scores.score_backtest(reader(lake, "forecast_backtest"))
    assert scored.weeks_scored == ["2024-03-04"] and scored.weeks_missing == ["2024-02-19", "2024-02-26"]


def test_geojson_cells_are_lon_lat_polygons_with_their_share():
    grid = Grid(42.0, 42.01, -78.0, -77.99, 500.0)  # 3 x 2 cells... of 500 m
    expected = np.arange(grid.n_cells, dtype=float)
    frame = stages.forecast_rows("long_run", expected, FIRST, None, {}, 0.0)
    geo = flagged_cells_geojson(frame, grid)
    (feature,) = geo["features"]  # 5% of a handful of cells: one cell, the highest
    ring = feature["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and all(-78.0 <= lon <= -77.98 and 42.0 <= lat <= 42.02 for lon, lat in ring)
    assert np.allclose(ring, grid.polygon(grid.n_cells - 1), atol=1e-7)  # [lon, lat], as the grid draws the cell
    assert feature["properties"] == {
        "method": "long_run",
        "cell": grid.n_cells - 1,
        "rank": 1,
        "expected": float(grid.n_cells - 1),
        "share": 0.01,
        "issue_time": str(FIRST),
    }
