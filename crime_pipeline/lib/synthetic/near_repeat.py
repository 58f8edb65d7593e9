"""The near-repeat (self-exciting) component: background draws, each starting a cluster of offspring.

Every incident that will reach `incidents` triggers Poisson(branching) offspring, each a whole
number of days after its parent's *written* time (the ceiling of an exponential with mean
`mean_days`: the same time of day, so the hour profiles and the share of unknown times carry over)
and an isotropic Gaussian step from its parent's *written* place (redrawn until inside the city
box; with probability `same_place` at the parent's written place itself, a repeat at the same
address); offspring trigger in turn.
Triggering from the written values makes the process, as `incidents` holds it, exactly the
self-exciting process whose conditional intensity the oracle (intensity.py) integrates.
Offspring past the generated years are dropped (they would happen after the export).

An offspring's type is drawn from the exact posterior at its own written place and time
(posterior.py), and its place and time do not depend on its parent's type: P(type | place, time)
is `posterior` for background draws and offspring alike, so the Bayes limit stays exact.

Rows that fail validation (dirt) are separate background draws that trigger nothing, so the
process is unchanged by which rows are quarantined. The total is exactly the rows asked for:
clusters are taken in the order of their background draws until it is reached (the last one cut).
"""

from __future__ import annotations

import math

import numpy as np

from crime_pipeline.lib.synthetic.city_spec import CitySpec
from crime_pipeline.lib.synthetic.dirt import dirt_count
from crime_pipeline.lib.synthetic.posterior import posterior_of_spec
from crime_pipeline.lib.synthetic.sample import sample_clean, sample_rows
from crime_pipeline.lib.synthetic.spec import ROUNDED_FROM_YEAR, YEARS

METRES_PER_DEGREE_LAT = math.pi * 6_371_000 / 180  # spherical Earth, as lib/forecast/grid.py
SECONDS_PER_DAY = 86_400
FIELDS = ("label", "lat", "lon", "when", "generation")


def window_end() -> np.datetime64:
    """The first instant after the generated years (offspring from then on are dropped)."""
    return np.datetime64(f"{int(YEARS[-1]) + 1}-01-01T00:00:00", "s")


def rounded_from() -> np.datetime64:
    """From this instant on, coordinates are written with 3 decimals (6 before)."""
    return np.datetime64(f"{ROUNDED_FROM_YEAR}-01-01T00:00:00", "s")


def step_sd_degrees(S: CitySpec) -> tuple[float, float]:
    """The offspring step's standard deviation in degrees of latitude and of longitude."""
    lat_mid = math.radians((S.box[0] + S.box[1]) / 2)
    sd_lat = S.near_repeat.sd_m / METRES_PER_DEGREE_LAT
    return sd_lat, sd_lat / math.cos(lat_mid)


def written(lat: np.ndarray, lon: np.ndarray, when: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates as the export writes them: 3 decimals from ROUNDED_FROM_YEAR on, else 6."""
    coarse = when >= rounded_from()
    return (np.where(coarse, np.round(lat, 3), np.round(lat, 6)), np.where(coarse, np.round(lon, 3), np.round(lon, 6)))


def offspring(parents: dict[str, np.ndarray], rng: np.random.Generator, S: CitySpec) -> dict[str, np.ndarray]:
    """The direct offspring of `parents` (written lat, lon, when; root carried along)."""
    nr = S.near_repeat
    lat_min, lat_max, lon_min, lon_max = S.box
    counts = rng.poisson(nr.branching, len(parents["lat"]))
    parent = np.repeat(np.arange(len(counts)), counts)
    k = len(parent)
    delay_days = np.ceil(rng.exponential(nr.mean_days, k)).astype(np.int64)
    when = parents["when"][parent] + (delay_days * SECONDS_PER_DAY).astype("timedelta64[s]")
    sd_lat, sd_lon = step_sd_degrees(S)
    lat, lon = parents["lat"][parent].copy(), parents["lon"][parent].copy()
    todo = np.flatnonzero(rng.random(k) >= nr.same_place)  # the others repeat at the parent's place
    while len(todo):  # a Gaussian step truncated to the box, by rejection
        lat[todo] = rng.normal(parents["lat"][parent[todo]], sd_lat)
        lon[todo] = rng.normal(parents["lon"][parent[todo]], sd_lon)
        inside = (lat[todo] >= lat_min) & (lat[todo] <= lat_max) & (lon[todo] >= lon_min) & (lon[todo] <= lon_max)
        todo = todo[~inside]
    keep = when < window_end()
    lat, lon = written(lat[keep], lon[keep], when[keep])
    when, parent = when[keep], parent[keep]
    probs = posterior_of_spec(S, lat, lon, when)
    label = sample_rows(np.cumsum(probs, axis=1), np.arange(len(lat)), rng)
    return {"label": label, "lat": lat, "lon": lon, "when": when, "root": parents["root"][parent]}


def clusters(n_background: int, rng: np.random.Generator, S: CitySpec) -> dict[str, np.ndarray]:
    """`n_background` background draws and all their offspring, cluster by cluster (each cluster's
    background first, then its generations in order)."""
    bg = sample_clean(n_background, rng, S)
    lat, lon = written(bg["lat"], bg["lon"], bg["when"])
    current = {"label": bg["label"], "lat": lat, "lon": lon, "when": bg["when"], "root": np.arange(n_background)}
    parts, generation = [], 0
    while len(current["lat"]):
        parts.append(current | {"generation": np.full(len(current["lat"]), generation)})
        current = offspring(current, rng, S)
        generation += 1
    merged = {key: np.concatenate([p[key] for p in parts]) for key in (*FIELDS, "root")}
    order = np.lexsort((merged["generation"], merged["root"]))  # stable: parents before their offspring
    return {key: merged[key][order] for key in FIELDS}


def sample_near_repeat_events(n: int, rng: np.random.Generator, S: CitySpec) -> dict[str, np.ndarray]:
    """Exactly `n` incidents of the self-exciting process: whole clusters in draw order, the last cut."""
    parts, total = [], 0
    while total < n:
        batch = clusters(int((n - total) * (1 - S.near_repeat.branching)) + 16, rng, S)
        parts.append(batch)
        total += len(batch["lat"])
    return {key: np.concatenate([p[key] for p in parts])[:n] for key in FIELDS}


def sample_with_near_repeats(n: int, rng: np.random.Generator, S: CitySpec) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """`n` rows in random order: the self-exciting incidents and, as separate background draws
    that trigger nothing, the rows dirt will be applied to. Returns the rows (label, lat, lon, when,
    generation: -1 for the dirt rows) and the positions of the dirt rows."""
    n_dirty = dirt_count(n)
    events = sample_near_repeat_events(n - n_dirty, rng, S)
    dirty = sample_clean(n_dirty, rng, S)
    dirty["generation"] = np.full(n_dirty, -1)
    order = rng.permutation(n)
    rows = {key: np.concatenate([events[key], dirty[key]])[order] for key in FIELDS}
    return rows, np.flatnonzero(rows["generation"] < 0)
