"""The built-in data set: crime incidents whose true class probabilities are known, for any city.

Each city's parameters (classes and their shares and time profiles, box, hotspots, export layout)
come from its profile (cities/<city>.yaml); `generate_incidents(..., city=)`, `posterior(..., city=)`
and `generator_version(city)` take the city, the default Buffalo when omitted. The module-level
constants (`PRIORS`, `HOTSPOTS`, `MODEL`, `GENERATOR_VERSION`, ...) are Buffalo's.

Generating model (fixed parameters, drawn once from `MODEL_SEED`; the data seed only draws rows):

* type t ~ the real parent-type shares (`PRIORS`).
* component c | t ~ w[t]: one of `len(HOTSPOTS)` hotspots or a city-wide uniform background.
* place | t, c: with probability `P_MICRO` the incident happens at one of the component's
  micro-places (block points with exact coordinates shared by many incidents: a store, a bar, a
  corner), drawn with type-dependent weights, so that about half of all incidents fall on a few
  percent of places and the exact place says something about the type, as on real streets.
  Otherwise a hotspot is an axis-aligned Gaussian truncated to the city box and the background is
  uniform on the box. Coordinates are written with 6 decimals; rows from 2023 on have them rounded
  to 3 decimals (as the portal does).
* time | t, c: hour, weekday and month are drawn from profiles H[t,c], W[t,c], M[t,c], each the
  product of the type's profile and the hotspot's own (so place and time interact: the best
  classifier is non-linear). The year is drawn independently of everything; the day is uniform
  among the days of that month and year with the drawn weekday; minute and second are uniform.
* defaults: with probability `P_NOON` the time is replaced by 12:00:00, and independently with
  probability `P_DAY_ONE` the day by the 1st of the month (weekday follows the new date).

`posterior(latitude, longitude, incident_datetime)` returns the exact P(type | those fields)
under this model (the likelihood of a place is the probability of its written 6- or 3-decimal
cell, so micro-place point masses and the continuous parts are on one scale); it is the Bayes
limit any model that sees time and place can reach. `GENERATOR_VERSION` is a hash of every
parameter above, so any change to the model is a new version.

Dirt is then added at realistic rates, independently of the type, so the posterior on rows that
pass validation is unchanged: missing coordinates, points geocoded far outside the city,
`Hour of Day` disagreeing with the datetime, `UNKNOWN` fills, mixed-case type names, re-issued
case numbers (a newer record of the same case), unparseable, pre-2009 and future dates, junk
labels and missing case numbers. `Incident Type Primary` and `Incident Description` are written
from the label, the leak the real export has.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from scipy.special import ndtr

from crime_pipeline.lib.lake.atomic import atomic_path
from crime_pipeline.lib.cities.profiles import DEFAULT_CITY, CityProfile, default_profile, get_profile

MODEL_SEED = 20_250_101
DEFAULT_ROWS = 322_000
DEFAULT_SEED = 7

# The default city's parameters come from its profile (cities/buffalo.yaml); any city's through `spec()`.
_BUFFALO = default_profile()
LAT_MIN, LAT_MAX, LON_MIN, LON_MAX = _BUFFALO.box.lat_min, _BUFFALO.box.lat_max, _BUFFALO.box.lon_min, _BUFFALO.box.lon_max
CLASSES: tuple[str, ...] = _BUFFALO.class_names
PRIORS = np.array([c.share for c in _BUFFALO.classes])
PRIORS = PRIORS / PRIORS.sum()
P_NOON = 0.08
P_DAY_ONE = 0.03
YEARS = np.arange(2009, 2026)
YEAR_WEIGHTS = np.linspace(1.3, 0.8, len(YEARS)) / np.linspace(1.3, 0.8, len(YEARS)).sum()
ROUNDED_FROM_YEAR = 2023
# Micro-places: per hotspot and in the background, with lognormal attractiveness and per-type
# Gamma multipliers (small shape: a place's type mix differs clearly from its neighbourhood's).
P_MICRO = 0.45
MICRO_PER_HOTSPOT = 40
MICRO_BACKGROUND = 160
MICRO_ATTRACTIVENESS_SD = 1.0
MICRO_TYPE_SHAPE = 2.0

# Dirt rates (fractions of all rows), each applied independently of the incident type.
DIRT_RATES = {
    "coordinates_missing": 0.017,
    "coordinates_outside_city": 0.004,
    "incident_datetime_unparseable": 0.001,
    "incident_datetime_before_2009": 0.003,
    "incident_datetime_in_future": 0.0002,
    "label_not_canonical": 0.0005,
    "case_number_missing": 0.0005,
}
REISSUED_RATE = 0.01  # extra rows: a newer record of an existing case
HOUR_MISMATCH_RATE = 0.005
UNKNOWN_FILL_RATE = 0.03
LABEL_VARIANT_RATE = 0.01


@dataclass(frozen=True)
class Hotspot:
    name: str
    lat: float
    lon: float
    sd_lat: float
    sd_lon: float
    hour_peak: float  # hour of day the hotspot's activity peaks
    hour_sharpness: float
    weekend_lift: float  # >1: busier Friday-Sunday
    summer_lift: float  # >1: busier June-August


def _hotspots(profile: CityProfile) -> tuple[Hotspot, ...]:
    return tuple(Hotspot(**h.model_dump()) for h in profile.generator.hotspots)


def _type_time(profile: CityProfile) -> np.ndarray:
    """Per type: (hour peak, sharpness, weekend lift, summer lift)."""
    return np.array([(c.time.hour_peak, c.time.hour_sharpness, c.time.weekend_lift, c.time.summer_lift)
                     for c in profile.classes])


HOTSPOTS: tuple[Hotspot, ...] = _hotspots(_BUFFALO)
TYPE_TIME = _type_time(_BUFFALO)
# Legacy UPPERCASE name per class; newer rows use Title Case.
PRIMARY_TYPES = {c.name: tuple(c.categories) for c in _BUFFALO.classes}
BOILERPLATE = (
    "Buffalo Police are investigating this report of a crime.  It is important to note that this "
    "is very preliminary information and further investigation as to the facts and circumstances "
    "of this report may be necessary."
)
STREETS = np.array(
    ["MAIN ST", "GENESEE ST", "BROADWAY", "BAILEY AVE", "DELAWARE AVE", "ELMWOOD AVE", "NIAGARA ST",
     "GRANT ST", "HERTEL AVE", "FILLMORE AVE", "JEFFERSON AVE", "SENECA ST", "ABBOTT RD",
     "SOUTH PARK AVE", "KENSINGTON AVE", "EAST FERRY ST", "WILLIAM ST", "CHIPPEWA ST", "GOLD ST",
     "CULVER RD", "HOPKINS ST", "CONNECTICUT ST", "LOVEJOY ST", "AMHERST ST", "TONAWANDA ST"]
)
COUNCIL = np.array(["NORTH", "DELAWARE", "UNIVERSITY", "NIAGARA", "MASTEN", "ELLICOTT", "FILLMORE",
                    "LOVEJOY", "SOUTH"])
POLICE = np.array(["District A", "District B", "District C", "District D", "District E"])
EXPORT_COLUMNS = (
    "Case Number", "Incident Datetime", "Incident ID", "Incident Type Primary", "Incident Description",
    "Parent Incident Type", "Hour of Day", "Day of Week", "Address", "City", "State", "Location",
    "Latitude", "Longitude", "Created At", "updated_at", "zip_code", "neighborhood", "Council District",
    "Council District 2011", "Census Tract", "Census Block Group", "Census Block", "2010 Census Tract ",
    "2010 Census Block Group", "2010 Census Block", "Police District", "TRACTCE20", "GEOID20_TRACT",
    "GEOID20_BLOCKGROUP", "GEOID20_BLOCK",
)
DATETIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"
WEEKDAY_NAMES = np.array(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"])


def _circular(n: int, peak: float, sharpness: float) -> np.ndarray:
    x = np.arange(n)
    return np.exp(sharpness * np.cos(2 * np.pi * (x - peak) / n))


def _weekday_profile(weekend_lift: float) -> np.ndarray:
    return np.array([1, 1, 1, 1, np.sqrt(weekend_lift), weekend_lift, weekend_lift])


def _month_profile(summer_lift: float) -> np.ndarray:
    return _circular(12, 6.5, np.log(summer_lift))  # month index 0 = January; peak mid-July


@dataclass(eq=False)
class CitySpec:
    """One city's generating model: its profile's parameters, the drawn arrays and their version."""

    key: str
    layout: str
    classes: tuple[str, ...]
    priors: np.ndarray
    hotspots: tuple[Hotspot, ...]
    type_time: np.ndarray
    primary: dict[str, tuple[str, ...]]
    box: tuple[float, float, float, float]  # lat_min, lat_max, lon_min, lon_max
    model: dict[str, np.ndarray] = None
    version: str = ""


def _new_spec(profile: CityProfile) -> CitySpec:
    shares = np.array([c.share for c in profile.classes])
    b = profile.box
    return CitySpec(profile.key, profile.generator.layout, profile.class_names, shares / shares.sum(),
                    _hotspots(profile), _type_time(profile), {c.name: tuple(c.categories) for c in profile.classes},
                    (b.lat_min, b.lat_max, b.lon_min, b.lon_max))


def _build_model(S: CitySpec) -> dict[str, np.ndarray]:
    """The fixed parameters of the generating process (independent of the data seed)."""
    rng = np.random.default_rng(MODEL_SEED)
    LAT_MIN, LAT_MAX, LON_MIN, LON_MAX = S.box
    HOTSPOTS = S.hotspots
    n_types, n_hot = len(S.classes), len(HOTSPOTS)
    n_comp = n_hot + 1  # last component: uniform background
    weights = np.empty((n_types, n_comp))
    for t in range(n_types):
        w = rng.dirichlet(np.full(n_hot, 1.0))
        weights[t, :n_hot] = 0.7 * w
        weights[t, n_hot] = 0.3
    hour = np.empty((n_types, n_comp, 24))
    week = np.empty((n_types, n_comp, 7))
    month = np.empty((n_types, n_comp, 12))
    for t, (peak, sharp, wk, summer) in enumerate(S.type_time):
        th, tw, tm = _circular(24, peak, sharp), _weekday_profile(wk), _month_profile(summer)
        for c in range(n_comp):
            if c < n_hot:
                h = HOTSPOTS[c]
                hh = _circular(24, h.hour_peak, h.hour_sharpness)
                ww, mm = _weekday_profile(h.weekend_lift), _month_profile(h.summer_lift)
            else:
                hh, ww, mm = np.ones(24), np.ones(7), np.ones(12)
            hour[t, c] = th * hh / (th * hh).sum()
            week[t, c] = tw * ww / (tw * ww).sum()
            month[t, c] = tm * mm / (tm * mm).sum()
    mu = np.array([[h.lat, h.lon] for h in HOTSPOTS])
    sd = np.array([[h.sd_lat, h.sd_lon] for h in HOTSPOTS])
    lo, hi = np.array([LAT_MIN, LON_MIN]), np.array([LAT_MAX, LON_MAX])
    box_mass = np.prod(ndtr((hi - mu) / sd) - ndtr((lo - mu) / sd), axis=1)
    micro = _build_micro_places(rng, mu, sd, n_types, n_comp, S.box)
    return {"weights": weights, "hour": hour, "week": week, "month": month, "mu": mu, "sd": sd,
            "box_mass": box_mass, **micro}


def _build_micro_places(rng: np.random.Generator, mu: np.ndarray, sd: np.ndarray, n_types: int,
                        n_comp: int, box: tuple[float, float, float, float]) -> dict[str, np.ndarray]:
    """Micro-places at whole microdegrees: their coordinates, component and P(place | type, component)."""
    LAT_MIN, LAT_MAX, LON_MIN, LON_MAX = box
    n_hot = len(mu)
    per_comp = np.array([MICRO_PER_HOTSPOT] * n_hot + [MICRO_BACKGROUND])
    comp = np.repeat(np.arange(n_comp), per_comp)
    points = np.empty((len(comp), 2))
    for c in range(n_comp):
        idx = np.flatnonzero(comp == c)
        todo = idx
        while len(todo):
            if c < n_hot:
                points[todo] = rng.normal(mu[c], sd[c], (len(todo), 2))
            else:
                points[todo] = rng.uniform([LAT_MIN, LON_MIN], [LAT_MAX, LON_MAX], (len(todo), 2))
            inside = ((points[todo] >= [LAT_MIN, LON_MIN]) & (points[todo] <= [LAT_MAX, LON_MAX])).all(axis=1)
            todo = todo[~inside]
    micro_deg = np.round(points * 1e6).astype(np.int64)
    # Never exactly halfway between two 3-decimal values: rounding to 3 decimals is then unambiguous.
    micro_deg += (micro_deg % 1000 == 500)
    _, first = np.unique(micro_deg[:, 0] * 10**9 + micro_deg[:, 1], return_index=True)
    if len(first) != len(comp):
        raise RuntimeError("micro-places collide; change MODEL_SEED")
    attractiveness = rng.lognormal(0.0, MICRO_ATTRACTIVENESS_SD, len(comp))
    lift = rng.gamma(MICRO_TYPE_SHAPE, 1.0 / MICRO_TYPE_SHAPE, (n_types, len(comp)))
    # pi[t, c, k]: P(k-th micro-place of component c | type t, component c, at a micro-place)
    pi = np.zeros((n_types, n_comp, per_comp.max()))
    for c in range(n_comp):
        idx = np.flatnonzero(comp == c)
        w = attractiveness[idx] * lift[:, idx]
        pi[:, c, :len(idx)] = w / w.sum(axis=1, keepdims=True)
    offset = np.concatenate([[0], np.cumsum(per_comp)[:-1]])
    cum = np.cumsum(pi, axis=2)
    for c in range(n_comp):  # exactly 1 from each component's last place on: padding is never drawn
        cum[:, c, per_comp[c] - 1:] = 1.0
    return {"micro_deg": micro_deg, "micro_comp": comp, "micro_pi": pi, "micro_cum": cum, "micro_offset": offset}


def _version(model: dict[str, np.ndarray], S: CitySpec | None = None) -> str:
    """A hash of every generating parameter: constants, hotspots, dirt and the drawn model arrays."""
    S = S or _DEFAULT_SPEC
    constants = {
        "priors": S.priors.tolist(), "p_noon": P_NOON, "p_day_one": P_DAY_ONE, "years": YEARS.tolist(),
        "year_weights": YEAR_WEIGHTS.tolist(), "rounded_from": ROUNDED_FROM_YEAR, "model_seed": MODEL_SEED,
        "micro": [P_MICRO, MICRO_PER_HOTSPOT, MICRO_BACKGROUND, MICRO_ATTRACTIVENESS_SD, MICRO_TYPE_SHAPE],
        "dirt": DIRT_RATES, "reissued": REISSUED_RATE, "hour_mismatch": HOUR_MISMATCH_RATE,
        "unknown_fill": UNKNOWN_FILL_RATE, "label_variant": LABEL_VARIANT_RATE,
        "hotspots": [astuple(h) for h in S.hotspots], "type_time": S.type_time.tolist(), "classes": list(S.classes),
        "primary": S.primary, "streets": STREETS.tolist(), "box": list(S.box),
    }
    if S.key != DEFAULT_CITY:  # the default city's hash stays what it was before profiles
        constants |= {"city": S.key, "layout": S.layout, "chicago_streets": CHICAGO_STREETS.tolist()}
    digest = hashlib.sha256(json.dumps(constants, sort_keys=True).encode())
    for key in sorted(model):
        digest.update(key.encode() + np.ascontiguousarray(model[key]).tobytes())
    return digest.hexdigest()[:16]


_DEFAULT_SPEC = _new_spec(_BUFFALO)
MODEL = _DEFAULT_SPEC.model = _build_model(_DEFAULT_SPEC)
GENERATOR_VERSION = _DEFAULT_SPEC.version = _version(MODEL, _DEFAULT_SPEC)
_SPECS: dict[str, CitySpec] = {DEFAULT_CITY: _DEFAULT_SPEC}


def spec(city: str | None = None) -> CitySpec:
    """The generating model of a city (its profile's classes, shares, box and hotspots), built once."""
    city = city or DEFAULT_CITY
    if city not in _SPECS:
        S = _new_spec(get_profile(city))
        S.model = _build_model(S)
        S.version = _version(S.model, S)
        _SPECS[city] = S
    return _SPECS[city]


def generator_version(city: str | None = None) -> str:
    """The generator version files of `city` are recorded with (the default city's is GENERATOR_VERSION)."""
    return spec(city).version


def _sample_rows(cum: np.ndarray, index: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw one category per row from the per-row cumulative distribution cum[index]."""
    u = rng.random(len(index))[:, None]
    return (u >= cum[index]).sum(axis=1).clip(max=cum.shape[-1] - 1)


def _sample_clean(n: int, rng: np.random.Generator, S: CitySpec) -> dict[str, np.ndarray]:
    m = S.model
    LAT_MIN, LAT_MAX, LON_MIN, LON_MAX = S.box
    n_comp = m["weights"].shape[1]
    label = rng.choice(len(S.classes), size=n, p=S.priors)
    comp = _sample_rows(np.cumsum(m["weights"], axis=1), label, rng)
    combo = label * n_comp + comp
    hour = _sample_rows(np.cumsum(m["hour"], axis=2).reshape(-1, 24), combo, rng)
    weekday = _sample_rows(np.cumsum(m["week"], axis=2).reshape(-1, 7), combo, rng)
    month = _sample_rows(np.cumsum(m["month"], axis=2).reshape(-1, 12), combo, rng) + 1
    year = rng.choice(YEARS, size=n, p=YEAR_WEIGHTS)

    # Place: a micro-place, else truncated Gaussians by rejection or the uniform background.
    lat = rng.uniform(LAT_MIN, LAT_MAX, n)
    lon = rng.uniform(LON_MIN, LON_MAX, n)
    at_micro = rng.random(n) < P_MICRO
    k = _sample_rows(m["micro_cum"].reshape(-1, m["micro_cum"].shape[2]), combo[at_micro], rng)
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
    when = (
        pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": day})).to_numpy()
        + (hour * 3600 + minute * 60 + second).astype("timedelta64[s]")
    )
    rounded = year >= ROUNDED_FROM_YEAR
    lat = np.where(rounded, np.round(lat, 3), lat)
    lon = np.where(rounded, np.round(lon, 3), lon)
    return {"label": label, "lat": lat, "lon": lon, "when": when.astype("datetime64[s]")}


def _micro_tables(m: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
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
    return {"key6": key6[order], "mass6": np.concatenate([mass[order], np.zeros((1, n_types, n_comp))]),
            "key3": key3, "mass3": mass3}


def _lookup(keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Index of each query in sorted `keys`, or -1."""
    pos = np.searchsorted(keys, query).clip(max=len(keys) - 1)
    return np.where(keys[pos] == query, pos, -1)


def posterior(latitude, longitude, incident_datetime, city: str | None = None) -> np.ndarray:
    """Exact P(type | latitude, longitude, incident datetime) under the city's generating model.

    Returns an (n, classes) array in the city's class order (`CLASSES` for the default city). A place's likelihood is the probability of the cell
    its written coordinates stand for: the 1e-6 degree cell of a 6-decimal value, or for rows
    rounded to 3 decimals (2023 on) the rounding cell, which also holds every micro-place in it.
    """
    S = spec(city)
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
    tables = _micro_tables(m)
    key6 = np.round(lat * 1e6).astype(np.int64) * 10**9 + np.round(lon * 1e6).astype(np.int64)
    key3 = np.round(lat * 1e3).astype(np.int64) * 10**9 + np.round(lon * 1e3).astype(np.int64)
    micro = np.where(rounded[:, None, None], tables["mass3"][_lookup(tables["key3"], key3)],
                     tables["mass6"][_lookup(tables["key6"], key6)])
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


@dataclass(frozen=True)
class GeneratedIncidents:
    """A generated export (portal CSV layout) with the truth behind each row."""

    frame: pd.DataFrame  # columns exactly EXPORT_COLUMNS, all text
    true_label: np.ndarray  # class name per row
    dirt: np.ndarray  # "clean", a quarantine rule name, or "reissued_original"/"reissued_newer"


def _fmt(when: np.ndarray) -> np.ndarray:
    return pc.strftime(pa.array(when.astype("datetime64[s]")), format=DATETIME_FORMAT).to_numpy(zero_copy_only=False)


# Chicago's "Crimes - 2001 to Present" export layout.
CHICAGO_COLUMNS = (
    "ID", "Case Number", "Date", "Block", "IUCR", "Primary Type", "Description", "Location Description", "Arrest",
    "Domestic", "Beat", "District", "Ward", "Community Area", "FBI Code", "X Coordinate", "Y Coordinate", "Year",
    "Updated On", "Latitude", "Longitude", "Location",
)
CHICAGO_STREETS = np.array(
    ["N STATE ST", "W MADISON ST", "S HALSTED ST", "W CHICAGO AVE", "N CLARK ST", "S COTTAGE GROVE AVE",
     "W 63RD ST", "N PULASKI RD", "S ASHLAND AVE", "W NORTH AVE", "E 79TH ST", "W ROOSEVELT RD",
     "N MILWAUKEE AVE", "S KEDZIE AVE", "W CERMAK RD", "N BROADWAY", "S WESTERN AVE", "W DIVISION ST"]
)
CHICAGO_PLACES = np.array(["STREET", "RESIDENCE", "APARTMENT", "SIDEWALK", "PARKING LOT/GARAGE(NON.RESID.)",
                           "SMALL RETAIL STORE", "ALLEY", "RESTAURANT", "CTA TRAIN", "SCHOOL, PUBLIC, BUILDING"])
CHICAGO_DETAILS = np.array(["SIMPLE", "OTHER", "$500 AND UNDER", "OVER $500", "TO VEHICLE", "TO PROPERTY",
                            "AGGRAVATED", "DOMESTIC", "FORCIBLE ENTRY", "AUTOMOBILE", "ARMED: HANDGUN"])


def _chicago_frame(S: CitySpec, rng: np.random.Generator, label_idx: np.ndarray, lat: np.ndarray, lon: np.ndarray,
                   when: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """Chicago's export: Primary Type (an offence category of the class) and Description are the label's
    disguises, IUCR and FBI Code follow the category; Updated On is when the record was last written."""
    n = len(label_idx)
    lat_min, lat_max, lon_min, lon_max = S.box
    year = when.astype("datetime64[Y]").astype(int) + 1970
    case_seq = rng.permutation(np.arange(100_000, 100_000 + 10 * n, 10))[:n] + rng.integers(0, 10, n)
    letters = np.array([f"{'HJ'[y >= 2016]}{chr(65 + (y - 2001) % 26)}" for y in range(2000, 2031)])
    case = pd.Series(letters[year - 2000]) + pd.Series(case_seq).map("{:07d}".format)
    primary = np.empty(n, dtype=object)
    for k, name in enumerate(S.classes):
        idx = np.flatnonzero(label_idx == k)
        options = np.asarray(S.primary[name], dtype=object)
        weight = 1.0 / np.arange(1, len(options) + 1) ** 1.5  # the first category is the commonest
        primary[idx] = options[rng.choice(len(options), size=len(idx), p=weight / weight.sum())]
    categories = sorted({c for cs in S.primary.values() for c in cs})
    code = pd.Series(primary).map({c: i for i, c in enumerate(categories)}).to_numpy()
    created = when + (rng.exponential(36 * 3600, n).astype(int) + 600).astype("timedelta64[s]")
    cell = (np.clip(((lat - lat_min) / (lat_max - lat_min) * 9), 0, 8).astype(int) * 9
            + np.clip(((lon - lon_min) / (lon_max - lon_min) * 9), 0, 8).astype(int))
    block = pd.Series(rng.integers(0, 120, n)).map("{:03d}XX ".format) + CHICAGO_STREETS[rng.integers(0, len(CHICAGO_STREETS), n)]
    district = cell % 25 + 1
    out = pd.DataFrame(
        {
            "ID": (np.arange(n) + 10_000_000).astype(str).astype(object),
            "Case Number": case.to_numpy(dtype=object),
            "Date": _fmt(when),
            "Block": block.to_numpy(dtype=object),
            "IUCR": pd.Series(code).map(lambda i: f"{(i * 37) % 9000 + 100:04d}").to_numpy(dtype=object),
            "Primary Type": primary,
            "Description": CHICAGO_DETAILS[(code * 7 + rng.integers(0, 3, n)) % len(CHICAGO_DETAILS)].astype(object),
            "Location Description": CHICAGO_PLACES[rng.integers(0, len(CHICAGO_PLACES), n)].astype(object),
            "Arrest": np.where(rng.random(n) < 0.2, "true", "false").astype(object),
            "Domestic": np.where(rng.random(n) < 0.15, "true", "false").astype(object),
            "Beat": (district * 100 + cell % 30 + 11).astype(str).astype(object),
            "District": np.char.zfill(district.astype(str), 3).astype(object),
            "Ward": (cell % 50 + 1).astype(str).astype(object),
            "Community Area": (cell % 77 + 1).astype(str).astype(object),
            "FBI Code": pd.Series(code).map(lambda i: f"{i % 26 + 1:02d}").to_numpy(dtype=object),
            "X Coordinate": np.round((lon - lon_min) * 82_000 + 1_100_000).astype(int).astype(str).astype(object),
            "Y Coordinate": np.round((lat - lat_min) * 364_000 + 1_813_000).astype(int).astype(str).astype(object),
            "Year": year.astype(str).astype(object),
            "Updated On": _fmt(created),
            "Latitude": pd.Series(lat).map("{:.6f}".format).to_numpy(dtype=object),
            "Longitude": pd.Series(lon).map("{:.6f}".format).to_numpy(dtype=object),
            "Location": np.asarray(_point("chicago_portal", lat, lon), dtype=object),
        },
        columns=list(CHICAGO_COLUMNS),
    )
    return out, created


def generate_incidents(rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED, city: str | None = None) -> GeneratedIncidents:
    """Generate `rows` incidents in the city's export layout; deterministic for a seed."""
    if rows < 1:
        raise ValueError("rows must be at least 1")
    S = spec(city)
    rng = np.random.default_rng(seed)
    n_reissued = int(round(rows * REISSUED_RATE)) if rows >= 100 else 0
    n = rows - n_reissued
    clean = _sample_clean(n, rng, S)
    label_idx, lat, lon, when = clean["label"], clean["lat"], clean["lon"], clean["when"]
    labels = np.asarray(S.classes, dtype=object)[label_idx]
    if S.layout == "chicago_portal":
        out, created = _chicago_frame(S, rng, label_idx, lat, lon, when)
        return _finish(out, created, labels, when, rng, n_reissued, "Updated On", S)
    LAT_MIN, LAT_MAX, LON_MIN, LON_MAX = S.box
    year = when.astype("datetime64[Y]").astype(int) + 1970
    hour = (when.astype("datetime64[h]") - when.astype("datetime64[D]")).astype(int)
    weekday = (when.astype("datetime64[D]").astype(int) - 4) % 7  # 1970-01-01 was a Thursday

    case_seq = rng.permutation(np.arange(100_000, 100_000 + 10 * n, 10))[:n] + rng.integers(0, 10, n)
    case = pd.Series(year % 100).map("{:02d}".format) + "-" + pd.Series(case_seq).map("{:07d}".format)

    legacy = year < 2016
    primary = np.empty(n, dtype=object)
    for k, name in enumerate(S.classes):
        idx = np.flatnonzero(label_idx == k)
        options = np.asarray(S.primary[name], dtype=object)
        pick = options[rng.integers(0, len(options), len(idx))]
        primary[idx] = np.where(legacy[idx], pick, np.char.title(pick.astype(str)).astype(object))
    description = np.where(legacy | (rng.random(n) < 0.3), primary, BOILERPLATE)

    created = when + (rng.exponential(36 * 3600, n).astype(int) + 600).astype("timedelta64[s]")
    block = (rng.integers(1, 30, n) * 100).astype(str)
    address = pd.Series(block) + " Block " + pd.Series(STREETS[rng.integers(0, len(STREETS), n)])
    cell = (np.clip(((lat - LAT_MIN) / (LAT_MAX - LAT_MIN) * 9), 0, 8).astype(int) * 9
            + np.clip(((lon - LON_MIN) / (LON_MAX - LON_MIN) * 9), 0, 8).astype(int))
    tract = (cell * 7 % 170 + 1).astype(str)
    out = pd.DataFrame(
        {
            "Case Number": case.to_numpy(dtype=object),
            "Incident Datetime": _fmt(when),
            "Incident ID": None,
            "Incident Type Primary": primary,
            "Incident Description": description,
            "Parent Incident Type": labels.copy(),
            "Hour of Day": hour.astype(str).astype(object),
            "Day of Week": WEEKDAY_NAMES[weekday].astype(object),
            "Address": address.to_numpy(dtype=object),
            "City": "Buffalo",
            "State": "NY",
            "Location": ("POINT (" + pd.Series(lon).map("{:.6f}".format) + " "
                         + pd.Series(lat).map("{:.6f}".format) + ")").to_numpy(dtype=object),
            "Latitude": pd.Series(lat).map("{:.6f}".format).to_numpy(dtype=object),
            "Longitude": pd.Series(lon).map("{:.6f}".format).to_numpy(dtype=object),
            "Created At": _fmt(created),
            "updated_at": None,
            "zip_code": (14201 + cell % 27).astype(str).astype(object),
            "neighborhood": np.asarray([h.name for h in S.hotspots], dtype=object)[cell % len(S.hotspots)],
            "Council District": COUNCIL[cell % 9].astype(object),
            "Council District 2011": COUNCIL[(cell + 1) % 9].astype(object),
            "Census Tract": tract.astype(object),
            "Census Block Group": (cell % 4 + 1).astype(str).astype(object),
            "Census Block": (cell * 13 % 3000 + 1000).astype(str).astype(object),
            "2010 Census Tract ": tract.astype(object),
            "2010 Census Block Group": (cell % 4 + 1).astype(str).astype(object),
            "2010 Census Block": (cell * 13 % 3000 + 1000).astype(str).astype(object),
            "Police District": POLICE[cell % 5].astype(object),
            "TRACTCE20": np.char.zfill(tract, 6).astype(object),
            "GEOID20_TRACT": ("36029" + tract).astype(object),
            "GEOID20_BLOCKGROUP": ("36029" + tract + "1").astype(object),
            "GEOID20_BLOCK": ("36029" + tract + "1001").astype(object),
        },
        columns=list(EXPORT_COLUMNS),
    )
    return _finish(out, created, labels, when, rng, n_reissued, "Created At", S)


def _finish(out: pd.DataFrame, created: np.ndarray, labels: np.ndarray, when: np.ndarray, rng: np.random.Generator,
            n_reissued: int, record_column: str, S: CitySpec) -> GeneratedIncidents:
    """Dirt, then re-issued records (a newer `record_column` wins), then a shuffle."""
    n = len(out)
    year = when.astype("datetime64[Y]").astype(int) + 1970
    dirt = np.full(n, "clean", dtype=object)
    _add_dirt(out, dirt, year, rng, S)
    true_label = labels

    if n_reissued:  # a newer record of an existing (clean) case: same facts, later record time
        candidates = np.flatnonzero(dirt == "clean")
        originals = rng.choice(candidates, size=n_reissued, replace=False)
        newer = out.iloc[originals].copy()
        later = created[originals] + rng.integers(86_400, 30 * 86_400, n_reissued).astype("timedelta64[s]")
        newer[record_column] = _fmt(later)
        dirt[originals] = "reissued_original"
        out = pd.concat([out, newer], ignore_index=True)
        dirt = np.concatenate([dirt, np.full(n_reissued, "reissued_newer", dtype=object)])
        true_label = np.concatenate([labels, labels[originals]])
        order = rng.permutation(len(out))  # file order says nothing: the later Created At wins
        out = out.iloc[order].reset_index(drop=True)
        dirt, true_label = dirt[order], true_label[order]
    return GeneratedIncidents(frame=out, true_label=true_label, dirt=dirt)


# Column names of the layouts' fields that dirt touches.
_DIRT_COLUMNS = {
    "buffalo_portal": {"when": "Incident Datetime", "label": "Parent Incident Type", "location": "Location",
                       "geography": ["neighborhood", "Council District", "Police District", "Census Tract"]},
    "chicago_portal": {"when": "Date", "label": "Primary Type", "location": "Location",
                       "geography": ["X Coordinate", "Y Coordinate"]},
}


def _far_points(S: CitySpec) -> np.ndarray:
    """Geocoding errors: just outside the city, another city, (0, 0), across the border."""
    if S.key == DEFAULT_CITY:
        return np.array([[42.7200, -78.6500], [40.7128, -74.0060], [0.0, 0.0], [43.0900, -79.0600]])
    lat_min, lat_max, lon_min, lon_max = S.box
    return np.array([[lat_min - 0.1, lon_max + 0.15], [40.7128, -74.0060], [0.0, 0.0], [lat_max + 0.07, lon_min - 0.06]])


def _point(layout: str, lat: np.ndarray, lon: np.ndarray) -> list[str]:
    if layout == "chicago_portal":  # "(lat, lon)", as Chicago writes it
        return [f"({a:.6f}, {b:.6f})" for a, b in zip(lat, lon)]
    return [f"POINT ({b:.6f} {a:.6f})" for a, b in zip(lat, lon)]


def _add_dirt(out: pd.DataFrame, dirt: np.ndarray, year: np.ndarray, rng: np.random.Generator,
              S: CitySpec | None = None) -> None:
    """Apply each kind of dirt to a disjoint random subset of rows (in place)."""
    S = S or _DEFAULT_SPEC
    cols = _DIRT_COLUMNS[S.layout]
    n = len(out)
    order = rng.permutation(n)
    start = 0
    for rule, rate in DIRT_RATES.items():
        k = int(round(n * rate))
        idx = order[start:start + k]
        start += k
        dirt[idx] = rule
        if rule == "coordinates_missing":
            out.loc[idx, ["Latitude", "Longitude", cols["location"]]] = None
            out.loc[idx, cols["geography"]] = "UNKNOWN" if S.layout == "buffalo_portal" else None
        elif rule == "coordinates_outside_city":
            far = _far_points(S)
            pick = far[rng.integers(0, len(far), k)]
            out.loc[idx, "Latitude"] = [f"{v:.6f}" for v in pick[:, 0]]
            out.loc[idx, "Longitude"] = [f"{v:.6f}" for v in pick[:, 1]]
            out.loc[idx, cols["location"]] = _point(S.layout, pick[:, 0], pick[:, 1])
        elif rule == "incident_datetime_unparseable":
            bad = np.array(["13/45/2019 25:61:00 PM", "not recorded", "2019-02-30 10:00", "??/??/2018"])
            out.loc[idx, cols["when"]] = bad[rng.integers(0, len(bad), k)]
        elif rule == "incident_datetime_before_2009":
            old = np.array(["03/06/1963 07:35:15 AM", "01/01/1910 12:00:00 PM", "07/04/2005 11:30:00 PM",
                            "12/31/2008 11:59:59 PM"])
            out.loc[idx, cols["when"]] = old[rng.integers(0, len(old), k)]
        elif rule == "incident_datetime_in_future":
            out.loc[idx, cols["when"]] = "01/01/2099 12:00:00 PM"
        elif rule == "label_not_canonical":
            junk = np.array(["SODOMY", "UNKNOWN", "Other", "Theft / Larceny?"])
            out.loc[idx, cols["label"]] = junk[rng.integers(0, len(junk), k)]
        elif rule == "case_number_missing":
            out.loc[idx, "Case Number"] = None

    # Soft dirt, on rows that stay valid: recorded or normalised, never quarantined.
    if S.layout == "chicago_portal":  # Title Case primary types, which the label lookup ignores
        pick = np.flatnonzero(dirt == "clean")
        pick = pick[rng.random(len(pick)) < LABEL_VARIANT_RATE]
        out.loc[pick, "Primary Type"] = out.loc[pick, "Primary Type"].str.title()
        return
    recent = np.flatnonzero((year >= 2022) & (year <= 2024) & (dirt == "clean"))
    k = min(len(recent), int(round(n * HOUR_MISMATCH_RATE)))
    idx = rng.choice(recent, size=k, replace=False)
    out.loc[idx, "Hour of Day"] = ((out.loc[idx, "Hour of Day"].astype(int) + rng.integers(1, 23, k)) % 24).astype(str)
    for col in ("neighborhood", "Council District", "Census Tract", "zip_code"):
        mask = rng.random(n) < UNKNOWN_FILL_RATE
        out.loc[mask, col] = "UNKNOWN"
    variants = {"Theft": "THEFT", "Assault": " assault", "Breaking & Entering": "Breaking and Entering",
                "Theft of Vehicle": "THEFT OF  VEHICLE", "Robbery": "robbery "}
    clean = np.flatnonzero(dirt == "clean")
    pick = clean[rng.random(len(clean)) < LABEL_VARIANT_RATE]
    labels = out.loc[pick, "Parent Incident Type"]
    out.loc[pick, "Parent Incident Type"] = labels.map(lambda v: variants.get(v, v.upper()))


def write_export_csv(data: GeneratedIncidents | pd.DataFrame, path: str | Path) -> Path:
    """Write a generated export as CSV (quoting only where needed), atomically."""
    frame = data.frame if isinstance(data, GeneratedIncidents) else data
    table = pa.Table.from_pandas(frame.astype(object).where(frame.notna(), None), preserve_index=False)
    table = table.cast(pa.schema([pa.field(c, pa.string()) for c in frame.columns]))
    with atomic_path(path) as tmp:
        pacsv.write_csv(table, tmp, write_options=pacsv.WriteOptions(quoting_style="needed"))
    return Path(path)


# Above this many rows, generation runs in chunks of at most this many (bounded memory: one chunk
# of text columns is about 1 GB). At or below it the output is exactly `generate_incidents`'s.
CHUNK_ROWS = 500_000


def chunk_sizes(rows: int, chunk_rows: int = CHUNK_ROWS) -> list[int]:
    """Rows per chunk: as equal as possible, none above `chunk_rows`."""
    k = max(1, -(-rows // chunk_rows))
    base, extra = divmod(rows, k)
    return [base + (i < extra) for i in range(k)]


def generate_chunks(rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED, chunk_rows: int = CHUNK_ROWS,
                    city: str | None = None) -> Iterator[GeneratedIncidents]:
    """`rows` incidents as a sequence of generated chunks, each at most `chunk_rows` long.

    One chunk is exactly `generate_incidents(rows, seed, city)`. With several, chunk i is drawn from
    the seed (seed, i) and its case numbers carry the chunk's number after their first three
    characters ("19-003" + digits in Buffalo), so no two chunks share a case number; each chunk has
    its own re-issued records.
    """
    sizes = chunk_sizes(rows, chunk_rows)
    if len(sizes) == 1:
        yield generate_incidents(rows, seed, city=city)
        return
    for i, size in enumerate(sizes):
        chunk = generate_incidents(size, [seed, i], city=city)  # default_rng takes a sequence of ints as its seed
        case = chunk.frame["Case Number"]
        chunk.frame["Case Number"] = case.str.slice(0, 3) + f"{i:03d}" + case.str.slice(3)
        yield chunk


def _export_table(frame: pd.DataFrame) -> pa.Table:
    table = pa.Table.from_pandas(frame.astype(object).where(frame.notna(), None), preserve_index=False)
    return table.cast(pa.schema([pa.field(c, pa.string()) for c in frame.columns]))


def write_export_files(paths: list[Path], rows: int, seed: int = DEFAULT_SEED,
                       chunk_rows: int = CHUNK_ROWS, city: str | None = None) -> list[int]:
    """Generate `rows` incidents chunk by chunk into one CSV, or into 12 by the month of Created At.

    With 12 paths, file m holds every record created in calendar month m (of any year), as monthly
    exports would: a re-issued record usually lands in a later month's file than its original.
    Only layouts with a Created At column split by month. Returns the rows written per file.
    Each file is written atomically.
    """
    if len(paths) not in (1, 12):
        raise ValueError("write one file or 12 monthly files")
    if len(paths) == 1 and len(chunk_sizes(rows, chunk_rows)) == 1:
        write_export_csv(generate_incidents(rows, seed, city=city), paths[0])  # byte-identical to the one-shot writer
        return [rows]
    counts = [0] * len(paths)
    options = pacsv.WriteOptions(quoting_style="needed")
    with contextlib.ExitStack() as stack:
        writers = None
        for chunk in generate_chunks(rows, seed, chunk_rows, city):
            table = _export_table(chunk.frame)
            del chunk
            if writers is None:  # the city's layout: the first chunk's columns, all text
                writers = [stack.enter_context(pacsv.CSVWriter(stack.enter_context(atomic_path(p)), table.schema,
                                                               write_options=options)) for p in paths]
            if len(paths) == 1:
                writers[0].write_table(table)
                counts[0] += table.num_rows
                continue
            if "Created At" not in table.column_names:
                raise ValueError(f"12 monthly files need a Created At column; the {city} layout has none")
            month = pc.cast(pc.utf8_slice_codeunits(table.column("Created At"), 0, 2), pa.int64())
            for m, writer in enumerate(writers, start=1):
                part = table.filter(pc.equal(month, m))
                writer.write_table(part)
                counts[m - 1] += part.num_rows
        if sum(counts) != rows:  # every record has a Created At month; anything else is a bug here
            raise AssertionError(f"wrote {sum(counts)} of {rows} generated rows")
    return counts
