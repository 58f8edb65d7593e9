"""Dirt at realistic rates, each kind independent of the incident type, and re-issued records.

Missing coordinates, points geocoded far outside the city, `Hour of Day` disagreeing with the
datetime, `UNKNOWN` fills, mixed-case type names, re-issued case numbers (a newer record of the
same case), unparseable, pre-2009 and future dates, junk labels and missing case numbers. Being
independent of the type, the posterior on rows that pass validation is unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from crime_pipeline.lib.cities.profiles import DEFAULT_CITY
from crime_pipeline.lib.synthetic.formats import format_datetime, point_text

if TYPE_CHECKING:
    from crime_pipeline.lib.synthetic.city_spec import CitySpec

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

# Column names of the layouts' fields that dirt touches.
DIRT_COLUMNS = {
    "buffalo_portal": {
        "when": "Incident Datetime",
        "label": "Parent Incident Type",
        "location": "Location",
        "geography": ["neighborhood", "Council District", "Police District", "Census Tract"],
    },
    "chicago_portal": {
        "when": "Date",
        "label": "Primary Type",
        "location": "Location",
        "geography": ["X Coordinate", "Y Coordinate"],
    },
}


def far_points(S: CitySpec) -> np.ndarray:
    """Geocoding errors: just outside the city, another city, (0, 0), across the border."""
    if S.key == DEFAULT_CITY:
        return np.array([[42.7200, -78.6500], [40.7128, -74.0060], [0.0, 0.0], [43.0900, -79.0600]])
    lat_min, lat_max, lon_min, lon_max = S.box
    return np.array(
        [[lat_min - 0.1, lon_max + 0.15], [40.7128, -74.0060], [0.0, 0.0], [lat_max + 0.07, lon_min - 0.06]]
    )


def dirt_count(n: int) -> int:
    """How many of `n` rows `add_dirt` makes fail validation."""
    return sum(int(round(n * rate)) for rate in DIRT_RATES.values())


def add_dirt(
    out: pd.DataFrame,
    dirt: np.ndarray,
    year: np.ndarray,
    rng: np.random.Generator,
    S: CitySpec,
    dirty_rows: np.ndarray | None = None,
) -> None:
    """Apply each kind of dirt to a disjoint random subset of rows (in place): of `dirty_rows`
    (exactly `dirt_count(len(out))` positions) when given, else of all rows."""
    cols = DIRT_COLUMNS[S.layout]
    n = len(out)
    if dirty_rows is None:
        order = rng.permutation(n)
    else:
        order = np.concatenate([rng.permutation(dirty_rows), np.setdiff1d(np.arange(n), dirty_rows)])
    start = 0
    for rule, rate in DIRT_RATES.items():
        k = int(round(n * rate))
        idx = order[start : start + k]
        start += k
        dirt[idx] = rule
        if rule == "coordinates_missing":
            out.loc[idx, ["Latitude", "Longitude", cols["location"]]] = None
            out.loc[idx, cols["geography"]] = "UNKNOWN" if S.layout == "buffalo_portal" else None
        elif rule == "coordinates_outside_city":
            far = far_points(S)
            pick = far[rng.integers(0, len(far), k)]
            out.loc[idx, "Latitude"] = [f"{v:.6f}" for v in pick[:, 0]]
            out.loc[idx, "Longitude"] = [f"{v:.6f}" for v in pick[:, 1]]
            out.loc[idx, cols["location"]] = point_text(S.layout, pick[:, 0], pick[:, 1])
        elif rule == "incident_datetime_unparseable":
            bad = np.array(["13/45/2019 25:61:00 PM", "not recorded", "2019-02-30 10:00", "??/??/2018"])
            out.loc[idx, cols["when"]] = bad[rng.integers(0, len(bad), k)]
        elif rule == "incident_datetime_before_2009":
            old = np.array(
                ["03/06/1963 07:35:15 AM", "01/01/1910 12:00:00 PM", "07/04/2005 11:30:00 PM", "12/31/2008 11:59:59 PM"]
            )
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
    variants = {
        "Theft": "THEFT",
        "Assault": " assault",
        "Breaking & Entering": "Breaking and Entering",
        "Theft of Vehicle": "THEFT OF  VEHICLE",
        "Robbery": "robbery ",
    }
    clean = np.flatnonzero(dirt == "clean")
    pick = clean[rng.random(len(clean)) < LABEL_VARIANT_RATE]
    labels = out.loc[pick, "Parent Incident Type"]
    out.loc[pick, "Parent Incident Type"] = labels.map(lambda v: variants.get(v, v.upper()))


def dirty_export(
    out: pd.DataFrame,
    created: np.ndarray,
    labels: np.ndarray,
    when: np.ndarray,
    rng: np.random.Generator,
    n_reissued: int,
    record_column: str,
    S: CitySpec,
    dirty_rows: np.ndarray | None = None,
    generation: np.ndarray | None = None,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Dirt (on `dirty_rows` when given), then re-issued records (a newer `record_column` wins), then a shuffle.

    Returns the export, the true label of each row, its dirt ("clean", a quarantine rule name,
    or "reissued_original"/"reissued_newer") and its near-repeat generation (zeros when not given).
    """
    n = len(out)
    year = when.astype("datetime64[Y]").astype(int) + 1970
    dirt = np.full(n, "clean", dtype=object)
    add_dirt(out, dirt, year, rng, S, dirty_rows)
    true_label = labels
    generation = np.zeros(n, dtype=np.int64) if generation is None else generation

    if n_reissued:  # a newer record of an existing (clean) case: same facts, later record time
        candidates = np.flatnonzero(dirt == "clean")
        originals = rng.choice(candidates, size=n_reissued, replace=False)
        newer = out.iloc[originals].copy()
        later = created[originals] + rng.integers(86_400, 30 * 86_400, n_reissued).astype("timedelta64[s]")
        newer[record_column] = format_datetime(later)
        dirt[originals] = "reissued_original"
        out = pd.concat([out, newer], ignore_index=True)
        dirt = np.concatenate([dirt, np.full(n_reissued, "reissued_newer", dtype=object)])
        true_label = np.concatenate([labels, labels[originals]])
        generation = np.concatenate([generation, generation[originals]])
        order = rng.permutation(len(out))  # file order says nothing: the later Created At wins
        out = out.iloc[order].reset_index(drop=True)
        dirt, true_label, generation = dirt[order], true_label[order], generation[order]
    return out, true_label, dirt, generation
