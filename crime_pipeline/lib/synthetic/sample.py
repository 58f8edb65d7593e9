"""Clean rows drawn from a city's generating model: type, place and time, before any layout or dirt."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crime_pipeline.lib.synthetic.spec import (
    P_DAY_ONE,
    P_MICRO,
    P_NOON,
    ROUNDED_FROM_YEAR,
    YEAR_WEIGHTS,
    YEARS,
    CitySpec,
)


def sample_rows(cum: np.ndarray, index: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw one category per row from the per-row cumulative distribution cum[index]."""
    u = rng.random(len(index))[:, None]
    return (u >= cum[index]).sum(axis=1).clip(max=cum.shape[-1] - 1)


def sample_clean(n: int, rng: np.random.Generator, S: CitySpec) -> dict[str, np.ndarray]:
    """`n` clean incidents: label (class index), lat, lon (written precision) and when (datetime64[s])."""
    m = S.model
    LAT_MIN, LAT_MAX, LON_MIN, LON_MAX = S.box
    n_comp = m["weights"].shape[1]
    label = rng.choice(len(S.classes), size=n, p=S.priors)
    comp = sample_rows(np.cumsum(m["weights"], axis=1), label, rng)
    combo = label * n_comp + comp
    hour = sample_rows(np.cumsum(m["hour"], axis=2).reshape(-1, 24), combo, rng)
    weekday = sample_rows(np.cumsum(m["week"], axis=2).reshape(-1, 7), combo, rng)
    month = sample_rows(np.cumsum(m["month"], axis=2).reshape(-1, 12), combo, rng) + 1
    year = rng.choice(YEARS, size=n, p=YEAR_WEIGHTS)

    # Place: a micro-place, else truncated Gaussians by rejection or the uniform background.
    lat = rng.uniform(LAT_MIN, LAT_MAX, n)
    lon = rng.uniform(LON_MIN, LON_MAX, n)
    at_micro = rng.random(n) < P_MICRO
    k = sample_rows(m["micro_cum"].reshape(-1, m["micro_cum"].shape[2]), combo[at_micro], rng)
    point = m["micro_deg"][m["micro_offset"][comp[at_micro]] + k] / 1e6
    lat[at_micro], lon[at_micro] = point[:, 0], point[:, 1]
    todo = np.flatnonzero((comp < len(S.hotspots)) & ~at_micro)
    while len(todo):
        c = comp[todo]
        lat[todo] = rng.normal(m["mu"][c, 0], m["sd"][c, 0])
        lon[todo] = rng.normal(m["mu"][c, 1], m["sd"][c, 1])
        inside = (lat[todo] >= LAT_MIN) & (lat[todo] <= LAT_MAX) & (lon[todo] >= LON_MIN) & (lon[todo] <= LON_MAX)
        todo = todo[~inside]

    # Day: uniform among the days of (year, month) falling on the drawn weekday.
    first = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": 1})).to_numpy()
    first_wd = pd.DatetimeIndex(first).day_of_week.to_numpy()
    days_in_month = pd.DatetimeIndex(first).days_in_month.to_numpy()
    first_day = 1 + (weekday - first_wd) % 7
    count = (days_in_month - first_day) // 7 + 1
    day = first_day + 7 * (rng.random(n) * count).astype(int)
    minute, second = rng.integers(0, 60, n), rng.integers(0, 60, n)
    noon = rng.random(n) < P_NOON
    day_one = rng.random(n) < P_DAY_ONE
    hour, minute, second = np.where(noon, 12, hour), np.where(noon, 0, minute), np.where(noon, 0, second)
    day = np.where(day_one, 1, day)
    when = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": day})).to_numpy() + (
        hour * 3600 + minute * 60 + second
    ).astype("timedelta64[s]")
    rounded = year >= ROUNDED_FROM_YEAR
    lat = np.where(rounded, np.round(lat, 3), lat)
    lon = np.where(rounded, np.round(lon, 3), lon)
    return {"label": label, "lat": lat, "lon": lon, "when": when.astype("datetime64[s]")}
