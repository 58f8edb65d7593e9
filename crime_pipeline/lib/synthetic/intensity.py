"""The generator's expected count of incidents per grid cell in a time window, given what came before.

`expected_counts` returns, for cells given by their latitude and longitude edges, the expected
number of rows that reach `incidents` (written place in the cell and inside the city box, written
time in [start, end)) given the incidents written before `start`:

* background: the draws' place x time model integrated over the cell and the window, times the
  expected number of background draws (the generated incidents over the mean cluster size inside
  the generated years); exact, rounding to 3 decimals from 2023 on included;
* triggered: each earlier incident's offspring of every generation landing in the window
  (the delay of generation g is a sum of g whole-day delays, exact; its place a Gaussian of
  variance g sd^2 around the parent, exact for g = 1 and truncated once to the box for g >= 2);
* offspring of background draws born inside the window (the same kernels over the background's
  hourly mass, exact in time for windows on whole hours; in place the background's Gaussians
  widened by g sd^2, micro-places exact for g = 1).

The two approximations (box truncation for g >= 2 and for widened background parts) only move
mass near the box's edge; with the fixed number of rows, the expectation is the unconditional
one for the background (off by O(1/sqrt(rows)) relative, given the past). See test_intensity.py.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.special import ndtr

from crime_pipeline.lib.synthetic.city_spec import CitySpec
from crime_pipeline.lib.synthetic.dirt import REISSUED_RATE, dirt_count
from crime_pipeline.lib.synthetic.near_repeat import SECONDS_PER_DAY
from crime_pipeline.lib.synthetic.spec import P_DAY_ONE, P_NOON, YEAR_WEIGHTS, YEARS

TINY = 1e-12  # generations and events whose expected offspring in the window fall below this are skipped


def _seconds(t) -> int:
    return int(pd.Timestamp(t).value // 10**9)  # .value is in nanoseconds whatever the unit


def to_seconds(times) -> np.ndarray:
    """Naive datetimes as whole seconds since 1970 (int64), whatever their unit."""
    return pd.DatetimeIndex(pd.to_datetime(np.asarray(times))).as_unit("s").asi8.astype(np.int64)


def cell_intervals(edges: np.ndarray, lo: float, hi: float, unit: float) -> tuple[np.ndarray, np.ndarray]:
    """Per cell along one axis, the interval of *true* coordinates whose value written to `unit`
    (1e-3 or 1e-6 degrees) falls in [edge, next edge) and in [lo, hi] (the last cell is open above)."""
    edges = np.asarray(edges, dtype=float)
    k_lo = np.ceil(np.maximum(edges[:-1], lo) / unit - 1e-6)
    k_hi = np.ceil(edges[1:] / unit - 1e-6) - 1
    k_hi[-1] = np.inf
    k_hi = np.minimum(k_hi, np.floor(hi / unit + 1e-6))
    left, right = (k_lo - 0.5) * unit, (k_hi + 0.5) * unit
    return left, np.maximum(right, left)


def gauss_mass(mean, sd, left, right, lo, hi) -> np.ndarray:
    """(len(mean), cells): the mass of N(mean, sd) truncated to [lo, hi] in each [left, right)."""
    mean, sd = np.asarray(mean, float)[:, None], np.asarray(sd, float)[:, None]
    a, b = np.clip(left, lo, hi)[None, :], np.clip(right, lo, hi)[None, :]
    inside = ndtr((hi - mean) / sd) - ndtr((lo - mean) / sd)
    return (ndtr((b - mean) / sd) - ndtr((a - mean) / sd)) / inside


def point_mass(x, left, right) -> np.ndarray:
    """(len(x), cells): 1 where the true coordinate x lies in [left, right)."""
    x = np.asarray(x, float)[:, None]
    return ((x >= left[None, :]) & (x < right[None, :])).astype(float)


def outer_sum(weights: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """sum_j weights[j] * outer(rows[j], cols[j])."""
    return (rows * weights[:, None]).T @ cols


@lru_cache(maxsize=8)
def _time_tables(S: CitySpec) -> dict[str, np.ndarray]:
    """Per (type, component): the probability of each written date and the CDF of the written time of day."""
    m = S.model
    dates = pd.date_range(f"{int(YEARS[0])}-01-01", f"{int(YEARS[-1])}-12-31", freq="D")
    year_weight = YEAR_WEIGHTS[dates.year.to_numpy() - int(YEARS[0])]
    month, weekday, day = dates.month.to_numpy() - 1, dates.day_of_week.to_numpy(), dates.day.to_numpy()
    same_weekday = (dates.days_in_month.to_numpy() - (day - 7 * ((day - 1) // 7))) // 7 + 1
    drawn = year_weight * m["month"][:, :, month] * m["week"][:, :, weekday] / same_weekday
    day_one = P_DAY_ONE * (day == 1) * year_weight * m["month"][:, :, month]
    q = (1 - P_DAY_ONE) * drawn + day_one
    cum_q = np.concatenate([np.zeros(q.shape[:2] + (1,)), np.cumsum(q, axis=2)], axis=2)
    hour_cdf = np.concatenate([np.zeros(q.shape[:2] + (1,)), np.cumsum(m["hour"], axis=2)], axis=2)
    first_day = int(dates[0].value // 10**9 // SECONDS_PER_DAY)
    return {"q": q, "cum_q": cum_q, "hour_cdf": hour_cdf, "first_day": first_day}


def time_cdf(S: CitySpec, seconds: np.ndarray) -> np.ndarray:
    """(types, components, len(seconds)): P(written time < t) of a background draw."""
    tt = _time_tables(S)
    seconds = np.asarray(seconds, dtype=np.int64)
    n_days = tt["q"].shape[2]
    d = seconds // SECONDS_PER_DAY - tt["first_day"]
    x = (seconds - (d + tt["first_day"]) * SECONDS_PER_DAY).astype(float)
    inside = (d >= 0) & (d < n_days)
    dc = np.clip(d, 0, n_days - 1)
    h = np.minimum(x // 3600, 23).astype(int)
    hour = tt["hour_cdf"][:, :, h] + S.model["hour"][:, :, h] * (x - 3600 * h) / 3600
    of_day = (1 - P_NOON) * hour + P_NOON * (x > 12 * 3600)
    within = tt["cum_q"][:, :, dc] + tt["q"][:, :, dc] * of_day
    return np.where(inside, within, np.where(d < 0, 0.0, tt["cum_q"][:, :, -1:]))


@lru_cache(maxsize=8)
def delay_cdfs(mean_days: float, branching: float) -> np.ndarray:
    """(generations + 1, days): P(delay of generation g <= k days); row 0 is the zero delay."""
    k_max = int(np.ceil(mean_days * 30))
    k = np.arange(k_max + 1)
    pmf = np.where(k >= 1, np.exp(-(k - 1) / mean_days) - np.exp(-k / mean_days), 0.0)
    generations = max(1, int(np.ceil(np.log(TINY) / np.log(branching))))
    rows, current = [np.ones(generations * k_max + 1)], np.array([1.0])
    for _ in range(generations):
        current = np.convolve(current, pmf)
        rows.append(np.cumsum(np.pad(current, (0, generations * k_max + 1 - len(current)))))
    return np.array(rows)


def delay_mass(cdf_g: np.ndarray, k_lo, k_hi) -> np.ndarray:
    """P(k_lo <= delay <= k_hi) from one generation's CDF (clipped to its days)."""
    last = len(cdf_g) - 1
    hi = np.where(k_hi < 0, 0.0, cdf_g[np.clip(k_hi, 0, last)])
    lo = np.where(k_lo - 1 < 0, 0.0, cdf_g[np.clip(k_lo - 1, 0, last)])
    return np.maximum(hi - lo, 0.0)


def incidents_reached(rows) -> int:
    """How many generated rows reach `incidents`, for files of `rows` each (re-issued copies and dirt
    rows aside: the same number for every seed)."""
    total = 0
    for size in np.atleast_1d(rows):
        size = int(size)
        n = size - (int(round(size * REISSUED_RATE)) if size >= 100 else 0)
        total += n - dirt_count(n)
    return total


def background_draws(S: CitySpec, n_incidents: float) -> float:
    """Expected number of background draws among `n_incidents` generated incidents: all of them
    without near repeats, else their number over the mean cluster size within the generated years."""
    if S.near_repeat is None:
        return float(n_incidents)
    nr, cdfs = S.near_repeat, delay_cdfs(S.near_repeat.mean_days, S.near_repeat.branching)
    tt = _time_tables(S)
    mix = np.einsum("t,tc,tcd->d", S.priors, S.model["weights"], tt["q"])  # written dates of draws
    days_left = tt["q"].shape[2] - 1 - np.arange(len(mix))  # offspring within the years: delay <= this
    cluster = sum(nr.branching**g * (mix @ delay_mass(cdfs[g], 0, days_left)) for g in range(len(cdfs)))
    return n_incidents / cluster
