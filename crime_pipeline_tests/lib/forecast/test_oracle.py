"""The oracle's expected counts are the generator's: z-tests of generated counts against them, with and
without the near-repeat component, and one incident's offspring worked out by hand."""

import numpy as np
import pandas as pd
import pytest

from crime_pipeline.lib import synthetic
from crime_pipeline.lib.forecast.grid import grid_for_box
from crime_pipeline.lib.forecast.oracle import oracle_expected, oracle_for_grid
from crime_pipeline.lib.synthetic.intensity import incidents_reached
from crime_pipeline.lib.synthetic.spec import NEAR_REPEAT, spec

ROWS = 40_000
WEEKS = pd.date_range("2024-09-02", periods=12, freq="7D")  # Mondays
GRID = grid_for_box(spec().box, cell_m=150)


def incidents(near_repeat: bool) -> pd.DataFrame:
    """What reaches `incidents` from a generated export: one row per case, dirt rows left out."""
    data = synthetic.generate_incidents(ROWS, seed=17, near_repeat=near_repeat)
    f = data.frame[np.isin(data.dirt, ["clean", "reissued_newer"])]
    return pd.DataFrame(
        {
            "time": pd.to_datetime(f["Incident Datetime"], format="%m/%d/%Y %I:%M:%S %p"),
            "lat": f["Latitude"].astype(float),
            "lon": f["Longitude"].astype(float),
        }
    ).sort_values("time", ignore_index=True)


def weekly(events: pd.DataFrame, near_repeat: bool):
    """(observed, oracle, oracle without the past) per week and cell."""
    assert len(events) == incidents_reached(ROWS)  # the count the oracle is given is exactly what arrives
    version = spec(near_repeat=near_repeat).version
    oracle = oracle_for_grid(GRID, n_incidents=len(events), version=version)
    observed, expected, no_past = [], [], []
    for week in WEEKS:
        in_week = events[(events["time"] >= week) & (events["time"] < week + pd.Timedelta(days=7))]
        cells = GRID.cell_of(in_week["lat"], in_week["lon"])
        observed.append(np.bincount(cells[cells >= 0], minlength=GRID.n_cells))
        e, latest = oracle(week, "week", events)
        assert latest < week  # the oracle used only the past
        expected.append(e)
        no_past.append(
            oracle_expected(GRID, week, week + pd.Timedelta(days=7), events.iloc[:0], len(events), version=version)
        )
    return np.array(observed), np.array(expected), np.array(no_past)


def z(observed, expected, mask) -> float:
    """Sum over weeks of (observed - expected) in the masked cells, over its spread across weeks
    (weeks' residuals are martingale differences given the past, so this is ~N(0, 1))."""
    r = ((observed - expected) * mask).sum(axis=1)
    return float(r.sum() / np.sqrt((r**2).sum()))


@pytest.fixture(scope="module", params=[True, False], ids=["near_repeat", "independent"])
def scored(request):
    return request.param, *weekly(incidents(request.param), request.param)


def test_generated_counts_match_the_oracle_overall_and_where_it_is_highest(scored):
    near_repeat, observed, expected, _ = scored
    assert observed.sum() > 400
    top = expected >= np.quantile(expected, 0.99, axis=1, keepdims=True)  # each week's top 1% of cells
    middle = ~top & (expected >= np.quantile(expected, 0.9, axis=1, keepdims=True))
    for mask in (np.ones_like(top), top, middle, ~top & ~middle):
        assert abs(z(observed, expected, mask)) < 4, (near_repeat, mask.mean())


def test_near_repeats_make_the_oracle_conditional_on_the_past(scored):
    """Where the past raises the oracle's count (recent incidents nearby), the generated counts follow
    the oracle and clearly exceed what the oracle without the past expects."""
    near_repeat, observed, expected, no_past = scored
    if not near_repeat:
        assert np.allclose(expected, no_past)
        return
    raised = expected > 2 * no_past
    assert raised.sum() > 100
    assert abs(z(observed, expected, raised)) < 4
    assert (observed * raised).sum() > 2 * (no_past * raised).sum()


def test_one_incidents_offspring_by_hand():
    """An incident on Sunday noon, far from the box's edge: its expected descendants in the next week
    (Monday to Monday) are branching * P(delay of 1..7 days) + the children's children born after
    Monday 00:00 within the week, and half of the first generation stays in its very cell."""
    S, week = spec(), pd.Timestamp("2024-06-03")
    lat, lon = GRID.centres()
    cell = int(np.argmin((lat - S.box[0] - 0.06) ** 2 + (lon - S.box[2] - 0.1) ** 2))  # well inside the box
    one = pd.DataFrame({"time": [week - pd.Timedelta(hours=12)], "lat": [lat[cell]], "lon": [lon[cell]]})
    with_it = oracle_expected(GRID, week, week + pd.Timedelta(days=7), one, 10_000)
    without = oracle_expected(GRID, week, week + pd.Timedelta(days=7), one.iloc[:0], 10_000)
    added = with_it - without
    m, theta = NEAR_REPEAT.mean_days, NEAR_REPEAT.branching
    pmf = {k: np.exp(-(k - 1) / m) - np.exp(-k / m) for k in range(1, 8)}
    first = theta * sum(pmf.values())
    second = theta**2 * sum(pmf[i] * pmf[j] for i in pmf for j in pmf if i + j <= 7)
    third = theta**3 * sum(pmf[i] * pmf[j] * pmf[k] for i in pmf for j in pmf for k in pmf if i + j + k <= 7)
    assert added.sum() == pytest.approx(first + second + third, rel=2e-3)
    assert added.argmax() == cell and added[cell] > NEAR_REPEAT.same_place * first
