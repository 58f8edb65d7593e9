"""Buffalo, NY's geography, as its city profile (cities/buffalo.yaml) gives it; kept for old imports.

New code takes these from the row's city profile (lib/cities.py) instead.
"""

from crime_pipeline.lib.cities import default_profile

_PROFILE = default_profile()
LAT_MIN, LAT_MAX = _PROFILE.box.lat_min, _PROFILE.box.lat_max
LON_MIN, LON_MAX = _PROFILE.box.lon_min, _PROFILE.box.lon_max
DOWNTOWN = tuple(_PROFILE.center)  # Niagara Square, Buffalo City Hall
