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
