"""Chicago's open-data export layout ("Crimes - 2001 to Present"), filled from clean rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from crime_pipeline.lib.synthetic import districts
from crime_pipeline.lib.synthetic.formats import format_datetime, point_text

if TYPE_CHECKING:
    from crime_pipeline.lib.synthetic.city_spec import CitySpec

CHICAGO_COLUMNS = (
    "ID",
    "Case Number",
    "Date",
    "Block",
    "IUCR",
    "Primary Type",
    "Description",
    "Location Description",
    "Arrest",
    "Domestic",
    "Beat",
    "District",
    "Ward",
    "Community Area",
    "FBI Code",
    "X Coordinate",
    "Y Coordinate",
    "Year",
    "Updated On",
    "Latitude",
    "Longitude",
    "Location",
)
CHICAGO_STREETS = np.array(
    [
        "N STATE ST",
        "W MADISON ST",
        "S HALSTED ST",
        "W CHICAGO AVE",
        "N CLARK ST",
        "S COTTAGE GROVE AVE",
        "W 63RD ST",
        "N PULASKI RD",
        "S ASHLAND AVE",
        "W NORTH AVE",
        "E 79TH ST",
        "W ROOSEVELT RD",
        "N MILWAUKEE AVE",
        "S KEDZIE AVE",
        "W CERMAK RD",
        "N BROADWAY",
        "S WESTERN AVE",
        "W DIVISION ST",
    ]
)
CHICAGO_PLACES = np.array(
    [
        "STREET",
        "RESIDENCE",
        "APARTMENT",
        "SIDEWALK",
        "PARKING LOT/GARAGE(NON.RESID.)",
        "SMALL RETAIL STORE",
        "ALLEY",
        "RESTAURANT",
        "CTA TRAIN",
        "SCHOOL, PUBLIC, BUILDING",
    ]
)
CHICAGO_DETAILS = np.array(
    [
        "SIMPLE",
        "OTHER",
        "$500 AND UNDER",
        "OVER $500",
        "TO VEHICLE",
        "TO PROPERTY",
        "AGGRAVATED",
        "DOMESTIC",
        "FORCIBLE ENTRY",
        "AUTOMOBILE",
        "ARMED: HANDGUN",
    ]
)


def chicago_frame(
    S: CitySpec, rng: np.random.Generator, label_idx: np.ndarray, lat: np.ndarray, lon: np.ndarray, when: np.ndarray
) -> tuple[pd.DataFrame, np.ndarray]:
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
    cell = np.clip(((lat - lat_min) / (lat_max - lat_min) * 9), 0, 8).astype(int) * 9 + np.clip(
        ((lon - lon_min) / (lon_max - lon_min) * 9), 0, 8
    ).astype(int)
    block = (
        pd.Series(rng.integers(0, 120, n)).map("{:03d}XX ".format)
        + CHICAGO_STREETS[rng.integers(0, len(CHICAGO_STREETS), n)]
    )
    box = (lat_min, lat_max, lon_min, lon_max)  # districts are areas: the nearest of a grid of centres
    district = districts.nearest_on_grid(lat, lon, districts.CHICAGO_DISTRICTS, box) + 1
    ward = districts.nearest_on_grid(lat, lon, districts.CHICAGO_WARDS, box) + 1
    area = districts.nearest_on_grid(lat, lon, districts.CHICAGO_AREAS, box) + 1
    out = pd.DataFrame(
        {
            "ID": (np.arange(n) + 10_000_000).astype(str).astype(object),
            "Case Number": case.to_numpy(dtype=object),
            "Date": format_datetime(when),
            "Block": block.to_numpy(dtype=object),
            "IUCR": pd.Series(code).map(lambda i: f"{(i * 37) % 9000 + 100:04d}").to_numpy(dtype=object),
            "Primary Type": primary,
            "Description": CHICAGO_DETAILS[(code * 7 + rng.integers(0, 3, n)) % len(CHICAGO_DETAILS)].astype(object),
            "Location Description": CHICAGO_PLACES[rng.integers(0, len(CHICAGO_PLACES), n)].astype(object),
            "Arrest": np.where(rng.random(n) < 0.2, "true", "false").astype(object),
            "Domestic": np.where(rng.random(n) < 0.15, "true", "false").astype(object),
            "Beat": (district * 100 + cell % 30 + 11).astype(str).astype(object),
            "District": np.char.zfill(district.astype(str), 3).astype(object),
            "Ward": ward.astype(str).astype(object),
            "Community Area": area.astype(str).astype(object),
            "FBI Code": pd.Series(code).map(lambda i: f"{i % 26 + 1:02d}").to_numpy(dtype=object),
            "X Coordinate": np.round((lon - lon_min) * 82_000 + 1_100_000).astype(int).astype(str).astype(object),
            "Y Coordinate": np.round((lat - lat_min) * 364_000 + 1_813_000).astype(int).astype(str).astype(object),
            "Year": year.astype(str).astype(object),
            "Updated On": format_datetime(created),
            "Latitude": pd.Series(lat).map("{:.6f}".format).to_numpy(dtype=object),
            "Longitude": pd.Series(lon).map("{:.6f}".format).to_numpy(dtype=object),
            "Location": np.asarray(point_text("chicago_portal", lat, lon), dtype=object),
        },
        columns=list(CHICAGO_COLUMNS),
    )
    return out, created
