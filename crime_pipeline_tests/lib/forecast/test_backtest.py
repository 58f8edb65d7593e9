"""The rolling-origin backtest: scores per issue time, seeded intervals, and leak evidence that turns red."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crime_pipeline.lib.forecast.backtest import backtest, lead_interval, leaks, summarise
from crime_pipeline.lib.forecast.base import Forecast, latest_time
from crime_pipeline.lib.forecast.counts import count_matrix
from crime_pipeline.lib.forecast.methods import METHODS, MethodSettings
from crime_pipeline.lib.forecast.periods import issue_times
from crime_pipeline_tests.lib.forecast.forecast_data import planted, square_grid

SETTINGS = MethodSettings(gbdt_max_iter=30, sepp_train_days=180, n_bootstrap=200)
WEEKS = issue_times("2023-11-06", "2023-12-25", "week")  # 8 Mondays


@pytest.fixture(scope="module")
def city():
    grid = square_grid(10)
    rates = {37: 0.8, 62: 0.4}
    events = planted(grid, "2022-01-03", 728, np.random.default_rng(3), rates, background_per_day=1.5)
    return grid, events, rates


@pytest.fixture(scope="module")
def result(city):
    grid, events, rates = city
    truth = np.full(grid.n_cells, 1.5 / grid.n_cells)
    for cell, rate in rates.items():
        truth[cell] += rate

    def oracle(issue_time, period, history):
        return truth * 7, None

    return backtest(events, grid, WEEKS, "week", METHODS, SETTINGS, oracle=oracle)


def test_every_method_is_scored_at_every_issue_time_from_the_events_before_it(result, city):
    grid, events, _ = city
    scores = result.scores
    assert set(scores["method"]) == {*METHODS, "oracle"}
    assert len(scores) == len(WEEKS) * (len(METHODS) + 1) * 3
    methods = scores[scores["method"] != "oracle"]
    assert (pd.to_datetime(methods["latest_event_given"]) < methods["issue_time"]).all()
    assert (pd.to_datetime(methods["latest_event_used"]) < methods["issue_time"]).all()
    assert leaks(scores).empty
    actual = count_matrix(events, grid, WEEKS, "week").sum(axis=1)
    per_week = scores[(scores["method"] == "kde") & (scores["area_share"] == 0.01)]
    assert per_week["n_incidents"].tolist() == actual.astype(int).tolist()
    # Two steady hotspots hold ~1/3 of the incidents: flagging 1% of the area (1 cell of 100) catches ~1/4.
    top = result.summary.set_index(["method", "area_share"])
    assert top.loc[("long_run", 0.01), "pai"] > 10 and top.loc[("oracle", 0.01), "pai"] > 10
    assert set(result.params) == set(METHODS) and result.params["sepp"]["theta"] < 0.1


def test_intervals_are_seeded_and_bracket_the_mean(result):
    summary = result.summary
    assert (summary["pai_low"] <= summary["pai"]).all() and (summary["pai"] <= summary["pai_high"]).all()
    again = summarise(result.scores, seed=SETTINGS.seed, n_bootstrap=SETTINGS.n_bootstrap)
    pd.testing.assert_frame_equal(summary, again)
    other = summarise(result.scores, seed=SETTINGS.seed + 1, n_bootstrap=SETTINGS.n_bootstrap)
    assert not np.allclose(summary["pai_low"], other["pai_low"], equal_nan=True)
    mean, low, high = lead_interval(result.scores, "long_run", "last_period", 0.01)
    assert low <= mean <= high


def test_a_method_that_looks_at_the_future_is_caught_by_its_own_evidence(city):
    grid, events, _ = city

    def peeker(history, grid, issue_time, period, settings):
        # It ignores the history it was given and reads the week it is forecasting from the full table.
        ahead = events[(events["time"] >= issue_time) & (events["time"] < issue_time + pd.Timedelta(days=7))]
        expected = count_matrix(ahead, grid, [issue_time], period)[0]
        return Forecast("peeker", issue_time, expected, latest_time(ahead), {})

    def quiet_peeker(history, grid, issue_time, period, settings):
        # It reports only the history's latest time, but its latest is later than anything it was given.
        forecast = peeker(history, grid, issue_time, period, settings)
        forecast.latest_event_used = issue_time - pd.Timedelta(seconds=1)
        return forecast

    honest = {"long_run": METHODS["long_run"]}
    result = backtest(events, grid, WEEKS, "week", {**honest, "peeker": peeker, "quiet": quiet_peeker}, SETTINGS)
    found = leaks(result.scores)
    assert set(found["method"]) == {"peeker", "quiet"}
    assert len(found[found["method"] == "peeker"]) == len(WEEKS)
    by_method = result.summary.set_index(["method", "area_share"])["pei"]
    assert by_method[("peeker", 0.01)] == pytest.approx(1.0)  # perfect foresight: why the gate must block it
    assert leaks(result.scores[result.scores["method"] == "long_run"]).empty
