"""The generating model: its parameters, each city's drawn arrays (`CitySpec`) and their version.

Each city's parameters (classes and their shares and time profiles, box, hotspots, export layout)
come from its profile (cities/<city>.yaml); `spec(city)` builds a city's model once. The
module-level constants (`PRIORS`, `HOTSPOTS`, `MODEL`, `GENERATOR_VERSION`, ...) are Buffalo's.

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
* near repeats (`NEAR_REPEAT`, on unless `spec(near_repeat=False)`): the draws above are the
  background; every incident that reaches `incidents` triggers Poisson(branching) offspring, each
  a whole number of days (the ceiling of an exponential) after its parent's written time and a
  Gaussian step from its written place (redrawn inside the box; or that very place), offspring
  triggering in turn; an offspring's type is drawn from the exact posterior at its written place
  and time, so P(type | place, time) is `posterior` for every row (near_repeat.py). Rows that fail
  validation are background draws that trigger nothing.

`GENERATOR_VERSION` is a hash of every parameter above, the dirt rates (dirt.py) and the layouts'
street names included, so any change to the model is a new version.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import astuple, replace
from pathlib import Path

import numpy as np
from scipy.special import ndtr

from crime_pipeline.lib.cities.profiles import DEFAULT_CITY, CityProfile, default_profile, get_profile
from crime_pipeline.lib.synthetic.buffalo import STREETS
from crime_pipeline.lib.synthetic.chicago import CHICAGO_STREETS
from crime_pipeline.lib.synthetic.city_spec import CitySpec, Hotspot, NearRepeat
from crime_pipeline.lib.synthetic.dirt import (
    DIRT_RATES,
    HOUR_MISMATCH_RATE,
    LABEL_VARIANT_RATE,
    REISSUED_RATE,
    UNKNOWN_FILL_RATE,
)
from crime_pipeline.lib.synthetic.districts import LAYOUT as DISTRICT_LAYOUT

MODEL_SEED = 20_250_101
DEFAULT_ROWS = 322_000
DEFAULT_SEED = 7

# The default city's parameters come from its profile (cities/buffalo.yaml); any city's through `spec()`.
_BUFFALO = default_profile()
LAT_MIN, LAT_MAX, LON_MIN, LON_MAX = (
    _BUFFALO.box.lat_min,
    _BUFFALO.box.lat_max,
    _BUFFALO.box.lon_min,
    _BUFFALO.box.lon_max,
)
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
# The built-in data's near-repeat component (README "The built-in data"); `near_repeat=False` gives
# the independent draws of the versions before it, byte for byte.
NEAR_REPEAT = NearRepeat(branching=0.3, mean_days=5.0, sd_m=150.0, same_place=0.5)


def _hotspots(profile: CityProfile) -> tuple[Hotspot, ...]:
    return tuple(Hotspot(**h.model_dump()) for h in profile.generator.hotspots)


def _type_time(profile: CityProfile) -> np.ndarray:
    """Per type: (hour peak, sharpness, weekend lift, summer lift)."""
    return np.array(
        [(c.time.hour_peak, c.time.hour_sharpness, c.time.weekend_lift, c.time.summer_lift) for c in profile.classes]
    )


HOTSPOTS: tuple[Hotspot, ...] = _hotspots(_BUFFALO)
TYPE_TIME = _type_time(_BUFFALO)
# Legacy UPPERCASE name per class; newer rows use Title Case.
PRIMARY_TYPES = {c.name: tuple(c.categories) for c in _BUFFALO.classes}


def _circular(n: int, peak: float, sharpness: float) -> np.ndarray:
    x = np.arange(n)
    return np.exp(sharpness * np.cos(2 * np.pi * (x - peak) / n))


def _weekday_profile(weekend_lift: float) -> np.ndarray:
    return np.array([1, 1, 1, 1, np.sqrt(weekend_lift), weekend_lift, weekend_lift])


def _month_profile(summer_lift: float) -> np.ndarray:
    return _circular(12, 6.5, np.log(summer_lift))  # month index 0 = January; peak mid-July


def _new_spec(profile: CityProfile) -> CitySpec:
    shares = np.array([c.share for c in profile.classes])
    b = profile.box
    return CitySpec(
        profile.key,
        profile.generator.layout,
        profile.class_names,
        shares / shares.sum(),
        _hotspots(profile),
        _type_time(profile),
        {c.name: tuple(c.categories) for c in profile.classes},
        (b.lat_min, b.lat_max, b.lon_min, b.lon_max),
    )


def build_model(S: CitySpec) -> dict[str, np.ndarray]:
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
    micro = build_micro_places(rng, mu, sd, n_types, n_comp, S.box)
    return {
        "weights": weights,
        "hour": hour,
        "week": week,
        "month": month,
        "mu": mu,
        "sd": sd,
        "box_mass": box_mass,
        **micro,
    }


def build_micro_places(
    rng: np.random.Generator,
    mu: np.ndarray,
    sd: np.ndarray,
    n_types: int,
    n_comp: int,
    box: tuple[float, float, float, float],
) -> dict[str, np.ndarray]:
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
    micro_deg += micro_deg % 1000 == 500
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
        pi[:, c, : len(idx)] = w / w.sum(axis=1, keepdims=True)
    offset = np.concatenate([[0], np.cumsum(per_comp)[:-1]])
    cum = np.cumsum(pi, axis=2)
    for c in range(n_comp):  # exactly 1 from each component's last place on: padding is never drawn
        cum[:, c, per_comp[c] - 1 :] = 1.0
    return {"micro_deg": micro_deg, "micro_comp": comp, "micro_pi": pi, "micro_cum": cum, "micro_offset": offset}


def model_version(model: dict[str, np.ndarray], S: CitySpec | None = None) -> str:
    """A hash of every generating parameter: constants, hotspots, dirt and the drawn model arrays."""
    S = S or _DEFAULT_SPEC
    constants = {
        "priors": S.priors.tolist(),
        "p_noon": P_NOON,
        "p_day_one": P_DAY_ONE,
        "years": YEARS.tolist(),
        "year_weights": YEAR_WEIGHTS.tolist(),
        "rounded_from": ROUNDED_FROM_YEAR,
        "model_seed": MODEL_SEED,
        "micro": [P_MICRO, MICRO_PER_HOTSPOT, MICRO_BACKGROUND, MICRO_ATTRACTIVENESS_SD, MICRO_TYPE_SHAPE],
        "dirt": DIRT_RATES,
        "reissued": REISSUED_RATE,
        "hour_mismatch": HOUR_MISMATCH_RATE,
        "unknown_fill": UNKNOWN_FILL_RATE,
        "label_variant": LABEL_VARIANT_RATE,
        "hotspots": [astuple(h) for h in S.hotspots],
        "type_time": S.type_time.tolist(),
        "classes": list(S.classes),
        "primary": S.primary,
        "streets": STREETS.tolist(),
        "box": list(S.box),
        "districts": DISTRICT_LAYOUT,
    }
    if S.key != DEFAULT_CITY:  # the default city's hash stays what it was before profiles
        constants |= {"city": S.key, "layout": S.layout, "chicago_streets": CHICAGO_STREETS.tolist()}
    if S.near_repeat is not None:  # without it, the hash of the versions before near repeats
        constants["near_repeat"] = astuple(S.near_repeat)
    digest = hashlib.sha256(json.dumps(constants, sort_keys=True).encode())
    for key in sorted(model):
        digest.update(key.encode() + np.ascontiguousarray(model[key]).tobytes())
    return digest.hexdigest()[:16]


def _variants(S: CitySpec) -> dict[bool, CitySpec]:
    """A city's model without and with near repeats (the same drawn arrays, two versions)."""
    S.model = build_model(S)
    S.version = model_version(S.model, S)
    on = replace(S, near_repeat=NEAR_REPEAT)
    on.version = model_version(on.model, on)
    return {False: S, True: on}


_DEFAULT_SPECS = _variants(_new_spec(_BUFFALO))
_DEFAULT_SPEC = _DEFAULT_SPECS[True]
MODEL = _DEFAULT_SPEC.model
GENERATOR_VERSION = _DEFAULT_SPEC.version
# Other cities' models by (city, profile): a lake may hold its own profile of a city.
_SPECS: dict[tuple[str, str], dict[bool, CitySpec]] = {}


def spec(city: str | None = None, lake_root: str | Path | None = None, near_repeat: bool = True) -> CitySpec:
    """The generating model of a city (its profile's classes, shares, box and hotspots), built once.

    The default city's comes from its built-in profile; another city's profile is looked up among
    the profiles of `lake_root` (see `get_profile`). `near_repeat=False`: without the near-repeat
    component (the generator before it).
    """
    city = city or DEFAULT_CITY
    if city == DEFAULT_CITY:
        return _DEFAULT_SPECS[near_repeat]
    profile = get_profile(city, lake_root=lake_root)
    key = (city, profile.model_dump_json())
    if key not in _SPECS:
        _SPECS[key] = _variants(_new_spec(profile))
    return _SPECS[key][near_repeat]


def generator_version(city: str | None = None, lake_root: str | Path | None = None, near_repeat: bool = True) -> str:
    """The generator version files of `city` are recorded with (the default city's is GENERATOR_VERSION)."""
    return spec(city, lake_root, near_repeat).version


def generated_by(versions, city: str | None = None, lake_root: str | Path | None = None) -> str | None:
    """The one generator version every file was recorded with, when it is one of the city's (with or
    without near repeats): only then are the true posterior and intensity known. None for real data
    (a file without a recorded version), an older generator, a mixture, or no files."""
    distinct = set(versions)
    if len(distinct) != 1:
        return None
    (version,) = distinct
    return version if spec_for_version(version, city, lake_root) is not None else None


def spec_for_version(version: str | None, city: str | None = None, lake_root: str | Path | None = None):
    """The city's generating model whose version is `version` (with or without near repeats), else None.

    Both have the same exact type posterior; they differ in where and when incidents happen.
    """
    for near_repeat in (True, False):
        S = spec(city, lake_root, near_repeat)
        if version is not None and S.version == version:
            return S
    return None
