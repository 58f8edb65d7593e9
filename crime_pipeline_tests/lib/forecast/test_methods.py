"""Each forecast method on tiny grids with a known answer, and the guard that keeps it from peeking."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from crime_pipeline.lib.forecast.methods import METHODS, MethodSettings, prepare
from crime_pipeline_tests.lib.forecast.forecast_data import events_frame, hawkes, point_in, square_grid

ISSUE = pd.Timestamp("2024-01-01")  # a Monday
SETTINGS = MethodSettings(gbdt_max_iter=40, sepp_train_days=240)


@pytest.fixture(scope="module")
def one_hotspot():
    """Two years of uniform background on a 10 x 10 grid, plus a steady hotspot at cell 37."""
    from crime_pipeline_tests.lib.forecast.forecast_data import planted

    grid = square_grid(10)
    events = planted(grid, "2022-01-03", 728, np.random.default_rng(1), {37: 0.8}, background_per_day=1.5)
    return grid, events


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_ranks_a_single_steady_hotspot_first(one_hotspot, name):
    grid, events = one_hotspot
    forecast = METHODS[name](events, grid, ISSUE, "week", SETTINGS)
    assert forecast.method == name and forecast.expected.shape == (grid.n_cells,)
    assert int(np.argmax(forecast.expected)) == 37
    assert forecast.latest_event_used < ISSUE
    # The expected weekly total is about the real one (0.8 + 1.5 a day = 16 a week), not a mere ranking.
    assert 8 < forecast.expected.sum() < 32


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_forecasts_this_week_from_a_history_that_ended_years_ago(one_hotspot, name):
    """This week's forecast from a historical file (the README's Chicago command: 2023's shootings, run in
    2026): no event in the learned model's training window, none in sepp's; every method still answers."""
    grid, events = one_hotspot  # 2022-01-03 .. 2023-12-31
    issue = ISSUE + pd.Timedelta(weeks=150)
    forecast = METHODS[name](events, grid, issue, "week", SETTINGS)
    assert forecast.expected.shape == (grid.n_cells,)
    assert np.isfinite(forecast.expected).all() and (forecast.expected >= 0).all()
    assert forecast.latest_event_used is None or forecast.latest_event_used < ISSUE  # None: it read no event
    if name == "poisson_gbdt":  # nothing to learn from: the long-run mean, and it says so
        assert "no event in the training window" in forecast.params["fallback"]
        assert int(np.argmax(forecast.expected)) == 37


def test_every_method_refuses_history_at_or_after_the_issue_time(one_hotspot):
    grid, events = one_hotspot
    before = events[events["time"] < ISSUE - pd.Timedelta(days=7)]
    for name, method in METHODS.items():
        with pytest.raises(ValueError, match="at or after it"):
            method(before, grid, ISSUE - pd.Timedelta(days=14), "week", SETTINGS)
        assert name


@pytest.fixture(scope="module")
def near_repeats():
    """A year of near-repeat crime (theta 0.5, mean lag 3 days, 60 m) on a 20 x 20 grid, a steady hotspot at
    cell 45, and a fresh burst of 6 incidents in the last 2 days at cell 310, where nothing happened before."""
    grid = square_grid(20)
    rng = np.random.default_rng(7)
    events = hawkes(grid, "2023-01-02", 364, rng, background_per_day=3.0, theta=0.5, mean_lag_days=3, sigma_m=60)
    cells = grid.cell_of(events["lat"], events["lon"])
    events = events[cells != 310]  # cell 310 has no history at all
    steady_t = pd.Timestamp("2023-01-02") + pd.to_timedelta(rng.uniform(0, 364, 150), unit="D")
    steady = events_frame(steady_t, *point_in(grid, 45, rng, 150))
    burst_t = ISSUE - pd.to_timedelta(rng.uniform(0.1, 2, 6), unit="D")
    burst = events_frame(burst_t, *point_in(grid, 310, rng, 6))
    return grid, pd.concat([events, steady, burst]).sort_values("time").reset_index(drop=True)


def test_the_self_exciting_model_picks_up_a_fresh_burst_that_long_run_counts_miss(near_repeats):
    grid, events = near_repeats
    sepp = METHODS["sepp"](events, grid, ISSUE, "week", SETTINGS)
    long_run = METHODS["long_run"](events, grid, ISSUE, "week", SETTINGS)
    sepp_rank = int((sepp.expected > sepp.expected[310]).sum())
    long_rank = int((long_run.expected > long_run.expected[310]).sum())
    assert sepp_rank < 4  # in sepp's top 1% of 400 cells
    assert long_rank > 40 and long_run.expected[310] < long_run.expected[45] / 10  # outside its top 10%
    # The fitted kernel is near the truth (0.5, 3 days, 60 m); daily bins lose same-day offspring, so
    # theta reads low (0.35 here) and so does the mean lag (2.3 days).
    assert 0.25 < sepp.params["theta"] < 0.6
    assert 1.5 < 1 / sepp.params["omega_per_day"] < 4.5
    assert 40 < sepp.params["sigma_m"] < 90


def test_sepp_finds_no_triggering_in_a_steady_poisson_process(one_hotspot):
    grid, events = one_hotspot
    forecast = METHODS["sepp"](events, grid, ISSUE, "week", SETTINGS)
    assert forecast.params["theta"] < 0.05
    assert forecast.params["mu_total_per_day"] == pytest.approx(2.3, rel=0.15)


def test_kde_reports_the_bandwidth_and_decay_it_chose_and_keeps_given_ones(one_hotspot):
    grid, events = one_hotspot
    chosen = METHODS["kde"](events, grid, ISSUE, "week", SETTINGS).params
    assert chosen["bandwidth_m"] in SETTINGS.kde_bandwidths_m and chosen["decay_days"] in SETTINGS.kde_decays_days
    fixed = replace(SETTINGS, kde_bandwidth_m=300.0, kde_decay_days=30.0)
    assert METHODS["kde"](events, grid, ISSUE, "week", fixed).params == {"bandwidth_m": 300.0, "decay_days": 30.0}


def test_a_prepared_method_refuses_an_issue_time_before_the_one_it_was_fitted_at(one_hotspot):
    grid, events = one_hotspot
    for name in ("kde", "sepp", "poisson_gbdt"):
        fitted = prepare(name, METHODS[name], events, grid, ISSUE, "week", SETTINGS)
        assert int(np.argmax(fitted(events[events["time"] < ISSUE], grid, ISSUE, "week", SETTINGS).expected)) == 37
        earlier = ISSUE - pd.Timedelta(days=7)
        with pytest.raises(ValueError, match="cannot forecast"):
            fitted(events[events["time"] < earlier], grid, earlier, "week", SETTINGS)


@pytest.mark.parametrize("period, per_period", [("day", 2.3), ("shift", 2.3 / 3)])
def test_every_method_forecasts_days_and_shifts_on_the_same_scale(one_hotspot, period, per_period):
    grid, events = one_hotspot
    for name, method in METHODS.items():
        forecast = method(events, grid, ISSUE, period, SETTINGS)
        assert forecast.expected.shape == (grid.n_cells,)
        if name != "last_period":  # one day's or shift's count is too noisy to hold to a range
            assert per_period / 2 < forecast.expected.sum() < per_period * 2, name
