"""The shape of one city's generating model (spec.py builds it from the city's profile).

Apart from spec.py so the export layouts and the dirt can name the type without importing the
module that imports them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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


@dataclass(frozen=True)
class NearRepeat:
    """The self-exciting component: each incident triggers Poisson(`branching`) offspring.

    An offspring happens a whole number of days after its parent's written time (the ceiling of an
    exponential with mean `mean_days`) and an isotropic Gaussian `sd_m` metres from its parent's
    written place, redrawn until inside the city box (or, with probability `same_place`, at that
    place itself); its type is drawn from the exact posterior at
    its own written place and time.
    """

    branching: float = 0.3
    mean_days: float = 5.0
    sd_m: float = 150.0
    same_place: float = 0.5  # share of offspring at the parent's very place (repeat victimisation)


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
    near_repeat: NearRepeat | None = None  # None: incidents are independent draws
