"""Buffalo's open-data export layout ("Crime Incidents"): the portal's columns, filled from clean rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from crime_pipeline.lib.synthetic import districts
from crime_pipeline.lib.synthetic.formats import WEEKDAY_NAMES, format_datetime

if TYPE_CHECKING:
    from crime_pipeline.lib.synthetic.city_spec import CitySpec

BOILERPLATE = (
    "Buffalo Police are investigating this report of a crime.  It is important to note that this "
    "is very preliminary information and further investigation as to the facts and circumstances "
    "of this report may be necessary."
)
STREETS = np.array(
    [
        "MAIN ST",
        "GENESEE ST",
        "BROADWAY",
        "BAILEY AVE",
        "DELAWARE AVE",
        "ELMWOOD AVE",
        "NIAGARA ST",
        "GRANT ST",
        "HERTEL AVE",
        "FILLMORE AVE",
        "JEFFERSON AVE",
        "SENECA ST",
        "ABBOTT RD",
        "SOUTH PARK AVE",
        "KENSINGTON AVE",
        "EAST FERRY ST",
        "WILLIAM ST",
        "CHIPPEWA ST",
        "GOLD ST",
        "CULVER RD",
        "HOPKINS ST",
        "CONNECTICUT ST",
        "LOVEJOY ST",
        "AMHERST ST",
        "TONAWANDA ST",
    ]
)
COUNCIL = np.array(["NORTH", "DELAWARE", "UNIVERSITY", "NIAGARA", "MASTEN", "ELLICOTT", "FILLMORE", "LOVEJOY", "SOUTH"])
POLICE = np.array(["District A", "District B", "District C", "District D", "District E"])
EXPORT_COLUMNS = (
    "Case Number",
    "Incident Datetime",
    "Incident ID",
    "Incident Type Primary",
    "Incident Description",
    "Parent Incident Type",
    "Hour of Day",
    "Day of Week",
    "Address",
    "City",
    "State",
    "Location",
    "Latitude",
    "Longitude",
    "Created At",
    "updated_at",
    "zip_code",
    "neighborhood",
    "Council District",
    "Council District 2011",
    "Census Tract",
    "Census Block Group",
    "Census Block",
    "2010 Census Tract ",
    "2010 Census Block Group",
    "2010 Census Block",
    "Police District",
    "TRACTCE20",
    "GEOID20_TRACT",
    "GEOID20_BLOCKGROUP",
    "GEOID20_BLOCK",
)


def buffalo_frame(
    S: CitySpec,
    rng: np.random.Generator,
    label_idx: np.ndarray,
    labels: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    when: np.ndarray,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Buffalo's export: Incident Type Primary (the legacy UPPERCASE or newer Title Case category of the
    class) and Incident Description are the label's disguises; geography columns follow the place.
    Returns the frame and each record's Created At (the record time re-issued records move on)."""
    n = len(label_idx)
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
    cell = np.clip(((lat - LAT_MIN) / (LAT_MAX - LAT_MIN) * 9), 0, 8).astype(int) * 9 + np.clip(
        ((lon - LON_MIN) / (LON_MAX - LON_MIN) * 9), 0, 8
    ).astype(int)
    tract = (cell * 7 % 170 + 1).astype(str)
    # Districts are areas: the nearest district centre, the nearest hotspot's neighbourhood.
    police = districts.nearest_centre(lat, lon, districts.BUFFALO_POLICE, S.box)
    council = districts.nearest_on_grid(lat, lon, districts.BUFFALO_COUNCIL, S.box)
    neighbourhood = districts.nearest_point(lat, lon, np.array([[h.lat, h.lon] for h in S.hotspots]), S.box)
    out = pd.DataFrame(
        {
            "Case Number": case.to_numpy(dtype=object),
            "Incident Datetime": format_datetime(when),
            "Incident ID": None,
            "Incident Type Primary": primary,
            "Incident Description": description,
            "Parent Incident Type": labels.copy(),
            "Hour of Day": hour.astype(str).astype(object),
            "Day of Week": WEEKDAY_NAMES[weekday].astype(object),
            "Address": address.to_numpy(dtype=object),
            "City": "Buffalo",
            "State": "NY",
            "Location": (
                "POINT (" + pd.Series(lon).map("{:.6f}".format) + " " + pd.Series(lat).map("{:.6f}".format) + ")"
            ).to_numpy(dtype=object),
            "Latitude": pd.Series(lat).map("{:.6f}".format).to_numpy(dtype=object),
            "Longitude": pd.Series(lon).map("{:.6f}".format).to_numpy(dtype=object),
            "Created At": format_datetime(created),
            "updated_at": None,
            "zip_code": (14201 + cell % 27).astype(str).astype(object),
            "neighborhood": np.asarray([h.name for h in S.hotspots], dtype=object)[neighbourhood],
            "Council District": COUNCIL[council].astype(object),
            "Council District 2011": COUNCIL[council].astype(object),
            "Census Tract": tract.astype(object),
            "Census Block Group": (cell % 4 + 1).astype(str).astype(object),
            "Census Block": (cell * 13 % 3000 + 1000).astype(str).astype(object),
            "2010 Census Tract ": tract.astype(object),
            "2010 Census Block Group": (cell % 4 + 1).astype(str).astype(object),
            "2010 Census Block": (cell * 13 % 3000 + 1000).astype(str).astype(object),
            "Police District": POLICE[police].astype(object),
            "TRACTCE20": np.char.zfill(tract, 6).astype(object),
            "GEOID20_TRACT": ("36029" + tract).astype(object),
            "GEOID20_BLOCKGROUP": ("36029" + tract + "1").astype(object),
            "GEOID20_BLOCK": ("36029" + tract + "1001").astype(object),
        },
        columns=list(EXPORT_COLUMNS),
    )
    return out, created
