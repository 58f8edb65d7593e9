"""The exact posterior P(type | place, time) under a city's generating model: the Bayes limit.

`posterior(latitude, longitude, incident_datetime)` returns the exact P(type | those fields)
under the model (the likelihood of a place is the probability of its written 6- or 3-decimal
cell, so micro-place point masses and the continuous parts are on one scale); it is the Bayes
limit any model that sees time and place can reach. Dirt (dirt.py) is independent of the type,
so the posterior on rows that pass validation is unchanged by it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr

from crime_pipeline.lib.synthetic.city_spec import CitySpec
from crime_pipeline.lib.synthetic.spec import P_DAY_ONE, P_MICRO, P_NOON, ROUNDED_FROM_YEAR, spec


def micro_tables(m: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Micro-place masses per (type, component), keyed by exact and by 3-decimal coordinates.

    Row -1 of each mass table is zeros: the key of a point that is no micro-place.
    """
    n_types, n_comp = m["micro_pi"].shape[:2]
    local = np.arange(len(m["micro_comp"])) - m["micro_offset"][m["micro_comp"]]
    mass = np.zeros((len(local), n_types, n_comp))
    mass[np.arange(len(local)), :, m["micro_comp"]] = m["micro_pi"][:, m["micro_comp"], local].T
    deg = m["micro_deg"]
    key6 = deg[:, 0] * 10**9 + deg[:, 1]
    milli = (deg + 500) // 1000  # = round(degrees, 3) * 1000: no micro-place sits on a tie
    key3_all = milli[:, 0] * 10**9 + milli[:, 1]
    key3, which = np.unique(key3_all, return_inverse=True)
    mass3 = np.zeros((len(key3) + 1, n_types, n_comp))
    np.add.at(mass3, which, mass)
    order = np.argsort(key6)
    return {
        "key6": key6[order],
        "mass6": np.concatenate([mass[order], np.zeros((1, n_types, n_comp))]),
        "key3": key3,
        "mass3": mass3,
    }


def lookup(keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Index of each query in sorted `keys`, or -1."""
    pos = np.searchsorted(keys, query).clip(max=len(keys) - 1)
    return np.where(keys[pos] == query, pos, -1)


def posterior(
    latitude, longitude, incident_datetime, city: str | None = None, lake_root: str | Path | None = None
) -> np.ndarray:
    """Exact P(type | latitude, longitude, incident datetime) under the city's generating model.

    Returns an (n, classes) array in the city's class order (`CLASSES` for the default city). A
    place's likelihood is the probability of the cell its written coordinates stand for: the 1e-6
    degree cell of a 6-decimal value, or for rows rounded to 3 decimals (2023 on) the rounding
    cell, which also holds every micro-place in it. Another city than the default is looked up
    among the profiles of `lake_root` (see `spec`).
    """
    return posterior_of_spec(spec(city, lake_root), latitude, longitude, incident_datetime)


def posterior_of_spec(S: CitySpec, latitude, longitude, incident_datetime) -> np.ndarray:
    """`posterior` under a given generating model (the generator draws offspring types from it)."""
    m = S.model
    LAT_MIN, LAT_MAX, LON_MIN, LON_MAX = S.box
    lat = np.asarray(latitude, dtype=float)
    lon = np.asarray(longitude, dtype=float)
    when = pd.DatetimeIndex(pd.to_datetime(incident_datetime))
    n_hot = len(S.hotspots)
    rounded = np.asarray(when.year >= ROUNDED_FROM_YEAR)
    half = np.where(rounded, 0.0005, 0.0)

    # Continuous place likelihood per component, (n, n_comp): the mass of the written cell.
    loc = np.empty((len(lat), n_hot + 1))
    for axis, x, lo, hi in ((0, lat, LAT_MIN, LAT_MAX), (1, lon, LON_MIN, LON_MAX)):
        mu, sd = m["mu"][:, axis], m["sd"][:, axis]
        a = np.maximum(x - half, lo)[:, None]
        b = np.minimum(x + half, hi)[:, None]
        dens = np.exp(-0.5 * ((x[:, None] - mu) / sd) ** 2) / (sd * np.sqrt(2 * np.pi)) * 1e-6
        cell = ndtr((b - mu) / sd) - ndtr((a - mu) / sd)
        hot = np.where(rounded[:, None], cell, dens)
        bg = np.where(rounded, (b - a)[:, 0], 1e-6) / (hi - lo)
        factor = np.column_stack([hot, bg])
        loc = factor if axis == 0 else loc * factor
    loc[:, :n_hot] /= m["box_mass"]

    # Micro-place point masses per (n, type, component).
    tables = micro_tables(m)
    key6 = np.round(lat * 1e6).astype(np.int64) * 10**9 + np.round(lon * 1e6).astype(np.int64)
    key3 = np.round(lat * 1e3).astype(np.int64) * 10**9 + np.round(lon * 1e3).astype(np.int64)
    micro = np.where(
        rounded[:, None, None],
        tables["mass3"][lookup(tables["key3"], key3)],
        tables["mass6"][lookup(tables["key6"], key6)],
    )
    place = (1 - P_MICRO) * loc[:, None, :] + P_MICRO * micro  # (n, types, comps)

    hour = np.asarray(when.hour)
    at_noon = (hour == 12) & np.asarray(when.minute == 0) & np.asarray(when.second == 0)
    wd = np.asarray(when.day_of_week)
    mo = np.asarray(when.month) - 1
    day = np.asarray(when.day)
    days_in_month = np.asarray(when.days_in_month)
    first_day = day - 7 * ((day - 1) // 7)
    n_same_weekday = (days_in_month - first_day) // 7 + 1

    h = m["hour"][:, :, hour]  # (types, comps, n)
    w = m["week"][:, :, wd]
    mth = m["month"][:, :, mo]
    time_factor = (1 - P_NOON) * h / 3600 + P_NOON * at_noon
    date_factor = (1 - P_DAY_ONE) * w / n_same_weekday + P_DAY_ONE * (day == 1)
    joint = (S.priors[:, None] * m["weights"])[:, :, None] * place.transpose(1, 2, 0) * time_factor * date_factor * mth
    scores = joint.sum(axis=1).T  # (n, types)
    return scores / scores.sum(axis=1, keepdims=True)
