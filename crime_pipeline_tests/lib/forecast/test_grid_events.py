"""The grid, periods, events and count matrix: where an incident lands and which period counts it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crime_pipeline.lib.cities.profiles import get_profile
from crime_pipeline.lib.forecast.counts import count_matrix, history_counts
from crime_pipeline.lib.forecast.events import events_from_incidents, events_from_xyt
from crime_pipeline.lib.forecast.grid import grid_for_box
from crime_pipeline.lib.forecast.periods import issue_times, period_start
from crime_pipeline.lib.lake.errors import StageError
from crime_pipeline_tests.conftest import FIXTURES
from crime_pipeline_tests.lib.forecast.forecast_data import events_frame, square_grid


def test_buffalo_grid_has_about_6000_cells_of_150_m_and_places_points_row_major():
    grid = grid_for_box(get_profile("buffalo").box, cell_m=150)
    assert 5_500 < grid.n_cells < 7_000
    assert grid.lat_edges[-1] >= grid.lat_max and grid.lon_edges[-1] >= grid.lon_max
    lat, lon = grid.centres()
    inside = (lat <= grid.lat_max) & (lon <= grid.lon_max)  # the last row and column reach past the box
    assert (grid.cell_of(lat, lon) == np.where(inside, np.arange(grid.n_cells), -1)).all()
    assert inside.mean() > 0.95
    assert grid.cell_of(
        [grid.lat_min - 0.01, np.nan, grid.lat_max], [grid.lon_min, grid.lon_min, grid.lon_max]
    ).tolist() == [
        -1,
        -1,
        grid.n_cells - 1,
    ]
    ring = grid.polygon(grid.n_cols + 1)  # row 1, col 1
    assert ring[0] == ring[-1] and len(ring) == 5
    assert ring[0] == pytest.approx([grid.lon_edges[1], grid.lat_edges[1]])
    assert grid.cell_of([ring[2][1] - 1e-9], [ring[2][0] - 1e-9])[0] == grid.n_cols + 1


def test_neighbours_are_queen_contiguous_and_stop_at_the_edge():
    grid = square_grid(4)
    assert sorted(grid.neighbours(0).tolist()) == [1, 4, 5]
    assert sorted(grid.neighbours(5).tolist()) == [0, 1, 2, 4, 6, 8, 9, 10]


def test_weeks_start_monday_shifts_every_8_hours_and_issue_times_round_up():
    t = pd.Timestamp("2024-03-14 17:30")  # a Thursday
    assert period_start(t, "week") == pd.Timestamp("2024-03-11")
    assert period_start(t, "day") == pd.Timestamp("2024-03-14")
    assert period_start(t, "shift") == pd.Timestamp("2024-03-14 16:00")
    weeks = issue_times("2024-03-12", "2024-04-01", "week")
    assert list(weeks) == list(pd.to_datetime(["2024-03-18", "2024-03-25", "2024-04-01"]))


def test_unknown_time_counts_in_its_day_and_week_but_not_in_a_shift():
    grid = square_grid(2)
    lat, lon = grid.centres()
    # Two incidents in cell 3 on Tuesday: one at 09:15, one at the export's default 12:00:00 (time unknown).
    incidents = pd.DataFrame(
        {
            "incident_datetime": pd.to_datetime(["2024-03-12 09:15:00", "2024-03-12 12:00:00"]),
            "latitude": [lat[3], lat[3]],
            "longitude": [lon[3], lon[3]],
            "label": ["Theft", "Assault"],
        }
    )
    events = events_from_incidents(incidents)
    assert events["time_known"].tolist() == [True, False]
    assert count_matrix(events, grid, ["2024-03-11"], "week")[0, 3] == 2
    assert count_matrix(events, grid, ["2024-03-12"], "day")[0, 3] == 2
    assert count_matrix(events, grid, ["2024-03-12 08:00"], "shift")[0, 3] == 1  # the noon one is left out
    assert len(events_from_incidents(incidents, labels=["Theft"])) == 1


def test_count_matrix_counts_each_event_in_its_period_and_cell_only():
    grid = square_grid(3)
    lat, lon = grid.centres()
    events = events_frame(
        ["2024-01-01 00:00", "2024-01-07 23:59", "2024-01-08 00:00", "2024-01-22 10:00"],
        lat[[0, 0, 4, 8]],
        lon[[0, 0, 4, 8]],
    )
    counts = count_matrix(events, grid, ["2024-01-01", "2024-01-08", "2024-01-29"], "week")
    assert counts.sum() == 3 and counts[0, 0] == 2 and counts[1, 4] == 1  # 22 Jan lies in no listed week
    last_two = history_counts(events, grid, pd.Timestamp("2024-01-15"), "week", n_periods=2)
    assert last_two[:, 0].tolist() == [2, 0] and last_two[:, 4].tolist() == [0, 1]


def test_chicago_shootings_read_with_t_one_as_the_first_of_january():
    events = events_from_xyt(FIXTURES / "chicago_shootings_2022_xyt.csv", 2022)
    assert len(events) == 2124 and events["time_known"].all() and (events["label"] == "event").all()
    assert events["time"].min() >= pd.Timestamp("2022-01-01") and events["time"].max() < pd.Timestamp("2023-01-01")
    assert events["time"].iloc[0] == pd.Timestamp("2022-01-01") + pd.to_timedelta(events_t_min(), unit="D")
    grid = grid_for_box(get_profile("chicago").box)
    assert (grid.cell_of(events["lat"], events["lon"]) >= 0).mean() > 0.99


def events_t_min() -> float:
    return float(pd.read_csv(FIXTURES / "chicago_shootings_2022_xyt.csv")["T"].min()) - 1.0


def test_an_xyt_file_with_a_bad_row_names_the_file_the_line_and_the_rule(tmp_path):
    path = tmp_path / "shots_2023_xyt.csv"
    path.write_text("X,Y,T\n-87.6,41.8,1.5\n-87.6,,2.0\n")
    with pytest.raises(StageError, match=r"shots_2023_xyt.csv row 3 .*T is a number of days within 2023"):
        events_from_xyt(path, 2023)
    (tmp_path / "no_t.csv").write_text("X,Y\n1,2\n")
    with pytest.raises(StageError, match=r"no_t.csv lacks the column\(s\) \['T'\]"):
        events_from_xyt(tmp_path / "no_t.csv", 2023)
