"""`expected_counts`: the generator's exact expected incidents per cell in [start, end), given the past.

Over plain arrays (cell edges, window bounds, the earlier incidents' written place and time), so
that lib/forecast/oracle.py wraps it with its grid; the terms and their accuracy are described in
intensity.py.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.stats import binom

from crime_pipeline.lib.synthetic.city_spec import CitySpec
from crime_pipeline.lib.synthetic.intensity import (
    TINY,
    _seconds,
    background_draws,
    cell_intervals,
    delay_cdfs,
    delay_mass,
    gauss_mass,
    outer_sum,
    point_mass,
    time_cdf,
    to_seconds,
)
from crime_pipeline.lib.synthetic.near_repeat import SECONDS_PER_DAY, rounded_from, step_sd_degrees
from crime_pipeline.lib.synthetic.spec import P_MICRO

# Later generations are left out once they add fewer expected incidents than this to the whole grid
# (their share shrinks as branching**g).
NEGLIGIBLE = 1e-6


def _segments(start: int, end: int) -> list[tuple[int, int, float]]:
    """[start, end) split where coordinates start being written to 3 decimals: (from, to, unit)."""
    switch = _seconds(pd.Timestamp(rounded_from()))
    cuts = [start, *([switch] if start < switch < end else []), end]
    return [(a, b, 1e-3 if a >= switch else 1e-6) for a, b in zip(cuts[:-1], cuts[1:])]


def _place_parts(S: CitySpec, lat_iv, lon_iv, unit: float, widen_sq: tuple[float, float] = (0.0, 0.0)):
    """`_parts`, kept for the next call on the same cells (a backtest asks for the same grid every week)."""
    key = (np.concatenate([*lat_iv, *lon_iv]).tobytes(), len(lat_iv[0]), unit, widen_sq)
    return _cached_parts(S, key)


@lru_cache(maxsize=64)
def _cached_parts(S: CitySpec, key):
    edges, n_lat, unit, widen_sq = key
    iv = np.frombuffer(edges)
    lat_iv, lon_iv = (
        (iv[:n_lat], iv[n_lat : 2 * n_lat]),
        (iv[2 * n_lat :].reshape(2, -1)[0], iv[2 * n_lat :].reshape(2, -1)[1]),
    )
    return _parts(S, lat_iv, lon_iv, unit, widen_sq)


def _parts(S: CitySpec, lat_iv, lon_iv, unit: float, widen_sq: tuple[float, float]):
    """The background's place as parts with per-axis masses: (rows, cols, weight (types, parts), component
    of each part). Parts: each hotspot's Gaussian, the uniform background, each micro-place.

    `widen_sq` adds a variance per axis: where offspring of a part land (the part widened by the
    steps and truncated to the box once; around a micro-place as written to `unit`, exactly).
    """
    m = S.model
    lat_lo, lat_hi, lon_lo, lon_hi = S.box
    sd = np.sqrt(m["sd"] ** 2 + np.array(widen_sq))
    comp = m["micro_comp"]
    pi = m["micro_pi"][:, comp, np.arange(len(comp)) - m["micro_offset"][comp]]  # (types, places)
    point = m["micro_deg"] / 1e6
    rows = [
        gauss_mass(m["mu"][:, 0], sd[:, 0], *lat_iv, lat_lo, lat_hi),
        (np.clip(lat_iv[1], lat_lo, lat_hi) - np.clip(lat_iv[0], lat_lo, lat_hi))[None] / (lat_hi - lat_lo),
    ]
    cols = [
        gauss_mass(m["mu"][:, 1], sd[:, 1], *lon_iv, lon_lo, lon_hi),
        (np.clip(lon_iv[1], lon_lo, lon_hi) - np.clip(lon_iv[0], lon_lo, lon_hi))[None] / (lon_hi - lon_lo),
    ]
    if widen_sq == (0.0, 0.0):
        rows.append(point_mass(point[:, 0], *lat_iv))
        cols.append(point_mass(point[:, 1], *lon_iv))
    else:
        centre = np.round(point / unit) * unit
        rows.append(gauss_mass(centre[:, 0], np.full(len(comp), np.sqrt(widen_sq[0])), *lat_iv, lat_lo, lat_hi))
        cols.append(gauss_mass(centre[:, 1], np.full(len(comp), np.sqrt(widen_sq[1])), *lon_iv, lon_lo, lon_hi))
    weight = np.concatenate([(1 - P_MICRO) * m["weights"], P_MICRO * m["weights"][:, comp] * pi], axis=1)
    comp_of_part = np.concatenate([np.arange(m["weights"].shape[1]), comp])
    return np.concatenate(rows), np.concatenate(cols), weight, comp_of_part


def expected_counts(
    S: CitySpec,
    n_incidents: float,
    lat_edges: np.ndarray,
    lon_edges: np.ndarray,
    start,
    end,
    history_lat=(),
    history_lon=(),
    history_time=(),
    bounds: tuple[float, float, float, float] | None = None,
    types: list[int] | None = None,
) -> np.ndarray:
    """(lat cells, lon cells): expected incidents written in each cell and in [start, end).

    `n_incidents`: how many generated incidents `incidents` holds in all (every type, all years;
    `intensity.incidents_reached(rows)` for files of `rows`); `history_*`: every incident (all types)
    written before `start`; `bounds` (lat_min, lat_max, lon_min, lon_max): where a point counts at
    all (the grid's box; the city box always applies). `types` (class indices): count only those;
    only without near repeats, where the answer is the background's alone.
    """
    if types is not None and S.near_repeat is not None:
        raise ValueError("with near repeats the expected counts are for all types together (types=None)")
    lo_lat, hi_lat, lo_lon, hi_lon = S.box
    if bounds is not None:
        lo_lat, hi_lat = max(lo_lat, bounds[0]), min(hi_lat, bounds[1])
        lo_lon, hi_lon = max(lo_lon, bounds[2]), min(hi_lon, bounds[3])
    a, b = _seconds(start), _seconds(end)
    n_bg = background_draws(S, n_incidents)
    prior = S.priors.copy()
    if types is not None:
        prior[np.setdiff1d(np.arange(len(prior)), types)] = 0.0
    out = np.zeros((len(lat_edges) - 1, len(lon_edges) - 1))
    for c0, c1, unit in _segments(a, b):
        lat_iv = cell_intervals(lat_edges, lo_lat, hi_lat, unit)
        lon_iv = cell_intervals(lon_edges, lo_lon, hi_lon, unit)
        in_window = np.diff(time_cdf(S, np.array([c0, c1])), axis=2)[:, :, 0]  # (types, comps)
        r, c, part_weight, comp_of_part = _place_parts(S, lat_iv, lon_iv, unit)
        out += outer_sum(n_bg * (prior[:, None] * part_weight * in_window[:, comp_of_part]).sum(axis=0), r, c)
        if S.near_repeat is not None:
            out += _triggered(S, lat_iv, lon_iv, a, c0, c1, history_lat, history_lon, history_time)
            out += _born_inside(S, n_bg, lat_iv, lon_iv, unit, a, c0, c1)
    return out


def _triggered(S: CitySpec, lat_iv, lon_iv, a, c0, c1, lat, lon, when) -> np.ndarray:
    """Descendants written in [c0, c1) of the incidents written before `a`, through children born
    at or after `a` only (a child born before `a` is among the incidents itself)."""
    nr, cdfs = S.near_repeat, delay_cdfs(S.near_repeat.mean_days, S.near_repeat.branching)
    out = np.zeros((len(lat_iv[0]), len(lon_iv[0])))
    t = to_seconds(when) if len(lat) else np.zeros(0, np.int64)
    first = -((t - a) // SECONDS_PER_DAY)  # the least whole-day delay reaching `a`
    pmf = np.diff(cdfs[1], prepend=0.0)
    near = first < len(pmf)
    if not near.any():
        return out
    t, first = t[near], first[near]
    lat, lon = np.asarray(lat, float)[near], np.asarray(lon, float)[near]
    k_lo = -((t - c0) // SECONDS_PER_DAY)  # whole days d with t + d * day in [c0, c1)
    k_hi = -((t - c1) // SECONDS_PER_DAY) - 1
    child = first[:, None] + np.arange(-(-(c1 - a) // SECONDS_PER_DAY) + 1)[None, :]  # the child's delay
    p_child = np.where(child <= k_hi[:, None], pmf[np.clip(child, 0, len(pmf) - 1)], 0.0)
    by_generation = []
    for g in range(1, len(cdfs)):
        rest = delay_mass(cdfs[g - 1], k_lo[:, None] - child, k_hi[:, None] - child)
        by_generation.append(nr.branching**g * (p_child * rest).sum(axis=1))
        if by_generation[-1].sum() < NEGLIGIBLE:
            break
    sd_lat, sd_lon = step_sd_degrees(S)
    for steps, w in enumerate(_by_steps(by_generation, nr.same_place)):
        keep = w > TINY
        if not keep.any():
            continue
        # Per distinct written latitude and longitude (3-decimal places repeat a lot), then summed.
        lat_u, lat_at = np.unique(lat[keep], return_inverse=True)
        lon_u, lon_at = np.unique(lon[keep], return_inverse=True)
        weight = np.zeros((len(lat_u), len(lon_u)))
        np.add.at(weight, (lat_at, lon_at), w[keep])
        if steps == 0:  # every generation at the same place
            rows, cols = point_mass(lat_u, *lat_iv), point_mass(lon_u, *lon_iv)
        else:
            rows = gauss_mass(lat_u, np.full(len(lat_u), sd_lat * np.sqrt(steps)), *lat_iv, S.box[0], S.box[1])
            cols = gauss_mass(lon_u, np.full(len(lon_u), sd_lon * np.sqrt(steps)), *lon_iv, S.box[2], S.box[3])
        out += rows.T @ weight @ cols
    return out


def _by_steps(by_generation: list, same_place: float) -> list:
    """Weights per generation g (from 1) regrouped by the number of Gaussian steps j <= g taken
    (each generation stays at its parent's place with probability `same_place`)."""
    steps = [np.zeros_like(by_generation[0]) for _ in range(len(by_generation) + 1)]
    for g, w in enumerate(by_generation, start=1):
        for j, p in enumerate(binom.pmf(np.arange(g + 1), g, 1 - same_place)):
            steps[j] = steps[j] + p * w
    return steps


def _born_inside(S: CitySpec, n_bg: float, lat_iv, lon_iv, unit, a, c0, c1) -> np.ndarray:
    """Offspring written in [c0, c1) of background draws written in [a, c1), hour by hour."""
    nr, cdfs = S.near_repeat, delay_cdfs(S.near_repeat.mean_days, S.near_repeat.branching)
    sd_lat, sd_lon = step_sd_degrees(S)
    hours = np.arange(a, c1 + 3599, 3600)
    hours[-1] = c1
    mass = np.diff(time_cdf(S, hours), axis=2)  # (types, comps, hours): draws written in each hour
    h = hours[:-1]
    k_lo, k_hi = -((h - c0) // SECONDS_PER_DAY), -((h - c1) // SECONDS_PER_DAY) - 1
    by_generation = []
    for g in range(1, len(cdfs)):
        by_generation.append(nr.branching**g * (mass * delay_mass(cdfs[g], k_lo, k_hi)).sum(axis=2))  # (types, comps)
        if by_generation[-1].sum() * n_bg < NEGLIGIBLE:
            break
    out = np.zeros((len(lat_iv[0]), len(lon_iv[0])))
    for steps, in_window in enumerate(_by_steps(by_generation, nr.same_place)):
        widen = (steps * sd_lat**2, steps * sd_lon**2)
        r, c, part_weight, comp_of_part = _place_parts(S, lat_iv, lon_iv, unit, widen)
        weight = n_bg * (S.priors[:, None] * part_weight * in_window[:, comp_of_part]).sum(axis=0)
        out += outer_sum(weight, r, c)
    return out
