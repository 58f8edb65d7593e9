"""PAI, PEI and hit rate by hand on a 3x3 grid, and Getis-Ord Gi* against a hand-computed value."""

from __future__ import annotations

import numpy as np
import pytest

from crime_pipeline.lib.forecast.hotspots import gi_star
from crime_pipeline.lib.forecast.metrics import flagged_cells, hit_rate, pai, pei, poisson_deviance
from crime_pipeline_tests.lib.forecast.forecast_data import square_grid


def test_pai_pei_and_hit_rate_by_hand_on_a_3x3_grid():
    # Forecast ranks cells 4 > 0 > 8 > the rest; 10 incidents happened: 3 in cell 4, 5 in cell 2, 2 in cell 0.
    expected = np.array([0.8, 0.1, 0.1, 0.1, 0.9, 0.1, 0.1, 0.1, 0.5])
    actual = np.array([2, 0, 5, 0, 3, 0, 0, 0, 0])
    one = flagged_cells(expected, 0.05)  # 5% of 9 cells rounds to 0: at least one cell
    assert np.flatnonzero(one).tolist() == [4]
    assert hit_rate(one, actual) == pytest.approx(3 / 10)
    assert pai(one, actual) == pytest.approx((3 / 10) / (1 / 9))  # 2.7
    assert pei(one, actual) == pytest.approx(3 / 5)  # the best single cell held 5
    two = flagged_cells(expected, 2 / 9)
    assert np.flatnonzero(two).tolist() == [0, 4]
    assert pai(two, actual) == pytest.approx((5 / 10) / (2 / 9))  # 2.25
    assert pei(two, actual) == pytest.approx(5 / 8)
    # Ties are broken by cell index: three cells tie at 0.1 for the 4th place.
    assert np.flatnonzero(flagged_cells(expected, 4 / 9)).tolist() == [0, 1, 4, 8]
    assert np.isnan(pai(one, np.zeros(9)))  # no incident: no score, not a zero


def test_poisson_deviance_is_zero_for_a_perfect_forecast_and_punishes_a_confident_miss():
    actual = np.array([0, 2, 1])
    assert poisson_deviance(actual.astype(float), actual) == pytest.approx(0, abs=1e-5)  # mu = 0 floored at 1e-6
    # By hand: 2 * mean([0 - (0 - 1), 2 log 2 - 1, 1 log 1 - 0]) for mu = (1, 1, 1).
    assert poisson_deviance(np.ones(3), actual) == pytest.approx(2 * (1 + 2 * np.log(2) - 1) / 3)
    miss = poisson_deviance(np.array([0.0, 2.0, 1.0]), np.array([1, 2, 1]))  # mu = 0 floored at 1e-6, not infinite
    assert miss == pytest.approx(2 * (np.log(1e6) - 1 + 1e-6) / 3)


def test_gi_star_matches_a_hand_computed_value_on_a_3x3_grid():
    grid = square_grid(3)
    x = np.array([0, 0, 0, 0, 9, 0, 0, 0, 0], dtype=float)
    result = gi_star(x, grid)
    n, mean = 9, 1.0
    s = np.sqrt((81 / 9) - mean**2)  # sqrt(8)
    # The centre: every cell is in its window (w = 9): local sum 9 - mean * 9 = 0: z = 0 exactly.
    assert result.loc[4, "z"] == pytest.approx(0)
    # A corner: window of 4 cells (itself, 2 edges, the centre) holding 9.
    w = 4
    corner = (9 - mean * w) / (s * np.sqrt((n * w - w**2) / (n - 1)))
    assert result.loc[0, "z"] == pytest.approx(corner)  # 5 / (sqrt 8 * sqrt(20/8)) = 5 / sqrt(20) ~ 1.118
    assert result.loc[0, "z"] == pytest.approx(5 / np.sqrt(20))
    assert not result["hot"].any()  # 1.118 is not significant at 5%


def test_gi_star_flags_a_cluster_as_hot_and_an_even_map_as_nothing():
    grid = square_grid(10)
    x = np.zeros(100)
    x[[44, 45, 54, 55]] = 10
    result = gi_star(x, grid)
    assert result.loc[[44, 45, 54, 55], "hot"].all() and result.loc[99, "z"] < 0
    flat = gi_star(np.full(100, 3.0), grid)
    assert (flat["z"] == 0).all() and not flat["hot"].any() and (flat["p"] == 1).all()
