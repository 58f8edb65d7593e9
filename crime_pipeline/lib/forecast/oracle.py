"""The oracle: on generated data, the generator's exact expected count per cell for a period, given
every incident before the period starts (lib/synthetic/expected.py does the arithmetic).

It is the best any forecast can do in expectation, so its PAI and PEI bound the methods' from
above. It needs what the generator knows and a forecast cannot: the city's generating model (by
the files' generator version; with or without near repeats) and how many generated incidents
`incidents` holds in all (every type; it fixes the background's size). With near repeats on, the
count is for all types together (the oracle of one type would need the posterior integrated over
each cell); without them, `labels` picks types.

What reaches `incidents` is what it predicts: rows that fail validation are drawn apart from the
incidents and trigger nothing, re-issued records are one incident, and points written outside the
city box (3-decimal rounding at its edge) are quarantined and so counted nowhere.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from crime_pipeline.lib.forecast.grid import Grid
from crime_pipeline.lib.forecast.periods import period_length
from crime_pipeline.lib.synthetic.expected import expected_counts
from crime_pipeline.lib.synthetic.spec import spec, spec_for_version


def generating_model(city: str | None = None, lake_root=None, version: str | None = None):
    """The city's generating model of `version` (the current one, with near repeats, when None)."""
    if version is None:
        return spec(city, lake_root)
    S = spec_for_version(version, city, lake_root)
    if S is None:
        raise ValueError(f"generator version {version} is not one of {city or 'the default city'}'s generators")
    return S


def oracle_expected(
    grid: Grid,
    issue_time,
    period_end,
    history: pd.DataFrame,
    n_incidents: int,
    city: str | None = None,
    lake_root=None,
    version: str | None = None,
    labels: list[str] | None = None,
) -> np.ndarray:
    """[n_cells]: the generator's expected incidents per cell in [issue_time, period_end), given
    `history` (an events frame: every incident, all types, with `time` before `issue_time`)."""
    S = generating_model(city, lake_root, version)
    issue_time = pd.Timestamp(issue_time)
    past = history[history["time"] < issue_time] if len(history) else history
    types = None if labels is None else [S.classes.index(label) for label in labels]
    counts = expected_counts(
        S,
        n_incidents,
        grid.lat_edges,
        grid.lon_edges,
        issue_time,
        pd.Timestamp(period_end),
        past["lat"].to_numpy() if len(past) else (),
        past["lon"].to_numpy() if len(past) else (),
        past["time"].to_numpy() if len(past) else (),
        bounds=(grid.lat_min, grid.lat_max, grid.lon_min, grid.lon_max),
        types=types,
    )
    return counts.ravel()  # row-major: cell = row * n_cols + col, as Grid numbers them


def oracle_for_grid(
    grid: Grid,
    city: str | None = None,
    lake_root=None,
    n_incidents: int | None = None,
    version: str | None = None,
) -> Callable[[pd.Timestamp, str, pd.DataFrame], tuple[np.ndarray, pd.Timestamp | None]]:
    """The oracle as the backtest and `issue_forecast` call it: (issue_time, period, history) ->
    (expected per cell, latest event used). `n_incidents`: every generated incident of the city in
    `incidents` (all types, inside the box or not)."""
    if n_incidents is None:
        raise ValueError("the oracle needs n_incidents: how many generated incidents the city's `incidents` holds")
    S = generating_model(city, lake_root, version)

    def oracle(issue_time, period: str, history: pd.DataFrame):
        issue_time = pd.Timestamp(issue_time)
        past = history[history["time"] < issue_time]
        expected = oracle_expected(
            grid, issue_time, issue_time + period_length(period), past, n_incidents, city, lake_root, S.version
        )
        return expected, (pd.Timestamp(past["time"].max()) if len(past) else None)

    return oracle
