"""Real data: the Chicago shootings fixtures, fit on 2022 and forecast week by week into 2023 (library level).

Every week of 2023 that the fixture covers is forecast from what came before it (2022 and 2023's weeks
so far) and scored; the test prints every method's PAI and PEI at 1/2/5% of the area with their
intervals (`pytest -s` shows them). Through Dagster, weeks arriving: e2e/test_forecast_chicago.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crime_pipeline.lib.cities.profiles import get_profile
from crime_pipeline.lib.forecast.backtest import backtest, leaks
from crime_pipeline.lib.forecast.events import events_from_xyt
from crime_pipeline.lib.forecast.grid import grid_for_box
from crime_pipeline.lib.forecast.methods import METHODS, MethodSettings
from crime_pipeline.lib.forecast.periods import issue_times
from crime_pipeline_tests.conftest import FIXTURES


@pytest.fixture(scope="module")
def shootings():
    years = [events_from_xyt(FIXTURES / f"chicago_shootings_{y}_xyt.csv", y) for y in (2022, 2023)]
    return pd.concat(years, ignore_index=True), grid_for_box(get_profile("chicago").box, cell_m=150)


@pytest.mark.slow
def test_every_method_forecasts_every_week_of_2023_from_what_came_before_and_none_peeks(shootings):
    events, grid = shootings
    weeks = issue_times("2023-01-02", "2023-12-25", "week")  # every Monday whose week ends in 2023
    assert len(weeks) == 52
    result = backtest(events, grid, weeks, "week", METHODS, MethodSettings(gbdt_max_iter=50, n_bootstrap=300))
    assert leaks(result.scores).empty
    first = result.scores[result.scores["issue_time"] == weeks[0]]
    assert (pd.to_datetime(first["latest_event_given"]) < pd.Timestamp("2023-01-02")).all()
    summary = result.summary.set_index(["method", "area_share"])
    print(f"\nChicago shootings, {grid.n_cells:,} cells of 150 m, the {len(weeks)} weeks of 2023 (fit on 2022):")
    for (method, share), row in summary.iterrows():
        print(
            f"{method:13s} {share:4.0%}  PAI {row.pai:5.2f} [{row.pai_low:5.2f}, {row.pai_high:5.2f}]"
            f"  PEI {row.pei:4.2f} [{row.pei_low:4.2f}, {row.pei_high:4.2f}]"
        )
    assert set(summary.index) == {(m, s) for m in METHODS for s in (0.01, 0.02, 0.05)}
    assert np.isfinite(summary["pai"]).all() and (summary["pai_low"] <= summary["pai_high"]).all()
    # Shootings concentrate: the usual places and the recent density catch far more than chance (PAI 1).
    assert summary.loc[("long_run", 0.01), "pai"] > 5 and summary.loc[("kde", 0.01), "pai"] > 5
    # One week's 35 shootings rarely repeat in the same 150 m cell a week later: last week's cells catch little.
    assert summary.loc[("last_period", 0.05), "pai"] < summary.loc[("long_run", 0.05), "pai"]
    assert 0 <= result.params["sepp"]["theta"] < 0.95 and result.params["sepp"]["n_events"] > 1_500
