"""Canonical column names and header normalisation for every known layout of the data set.

The portal's CSV export uses display names ("Case Number", "2010 Census Tract "), the older
SODA API uses snake_case ("case_number", "address_1", "zip") and the newer one renamed a few
("zip_code", "neighborhood"). Headers are normalised (case, spacing, punctuation) and then
mapped through one alias table, so an export with a header spelled slightly differently still
lands in the same schema. Unknown columns are kept under their normalised name: nothing is lost.
"""

from __future__ import annotations

import re

# The canonical classes: Buffalo's nine parent incident types, in order of frequency.
CLASSES: tuple[str, ...] = (
    "Theft",
    "Assault",
    "Breaking & Entering",
    "Theft of Vehicle",
    "Robbery",
    "Sexual Assault",
    "Other Sexual Offense",
    "Homicide",
    "Sexual Offense",
)

# Canonical name -> accepted normalised spellings (besides the canonical name itself).
ALIASES: dict[str, tuple[str, ...]] = {
    "case_number": ("case_no", "case_num", "casenumber"),
    "incident_datetime": ("incident_date_time", "incident_date"),
    "incident_id": ("id",),
    "incident_type_primary": ("incident_type",),
    "incident_description": ("description",),
    "parent_incident_type": ("parent_type",),
    "clearance_type": (),
    "hour_of_day": ("hour",),
    "day_of_week": ("weekday",),
    "address": ("address_1", "address1", "street_address"),
    "address_2": ("address2",),
    "city": (),
    "state": (),
    "zip_code": ("zip", "zipcode"),
    "country": (),
    "neighborhood": ("neighborhood_1", "neighbourhood"),
    "location": ("geocoded_location",),
    "latitude": ("lat",),
    "longitude": ("lon", "lng", "long"),
    "created_at": ("created",),
    "updated_at": ("updated",),
    "council_district": (),
    "police_district": (),
    "census_tract": (),
}

_LOOKUP: dict[str, str] = {}
for _canonical, _spellings in ALIASES.items():
    _LOOKUP[_canonical] = _canonical
    for _spelling in _spellings:
        _LOOKUP[_spelling] = _canonical

# A file must carry these (after normalisation) to be ingestible at all.
REQUIRED_COLUMNS: tuple[str, ...] = ("case_number", "incident_datetime", "parent_incident_type")
# ... and coordinates, either as two columns or as a WKT `location` point.
COORDINATE_COLUMN_SETS: tuple[tuple[str, ...], ...] = (("latitude", "longitude"), ("location",))

# Columns added by ingestion to every row; they name where the row came from.
SOURCE_COLUMNS: tuple[str, ...] = ("source_file", "source_sha256", "source_line")
# Every column our own code adds to a row (ingestion, validation, the merge). An input column with
# one of these names is renamed `input_<name>`, keeping its values, so it never collides with ours.
RESERVED_COLUMNS: tuple[str, ...] = (
    *SOURCE_COLUMNS, "raw_record", "rules", "label", "hour_of_day_reported", "hour_of_day_mismatch",
    "time_defaulted_noon", "date_is_first_of_month", "ingest_seq", "partition_key",
)


def normalise_header(name: str) -> str:
    """Lower-case, trim, and turn every run of non-alphanumerics into one underscore."""
    text = re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")
    return text


def canonical_names(headers: list[str]) -> list[str]:
    """Map raw headers to canonical names, unique whatever the input, none of them reserved.

    Unknown headers keep their normalised form; an empty one becomes `unnamed_<position>`; a
    reserved one becomes `input_<name>`. Each name goes first to the first header that asks for it;
    a later duplicate takes its own normalised spelling if free (both "zip" and "zip_code": the
    second stays "zip"), else `<name>_2`, `<name>_3`, ... skipping every name already taken.
    """
    wanted: list[tuple[str, str]] = []
    for position, raw in enumerate(headers):
        norm = normalise_header(raw)
        name = _LOOKUP.get(norm, norm) or f"unnamed_{position}"
        wanted.append((f"input_{name}" if name in RESERVED_COLUMNS else name, norm))
    out = [""] * len(wanted)
    taken: set[str] = set()
    for position, (name, _) in enumerate(wanted):
        if name not in taken:
            taken.add(name)
            out[position] = name
    for position, (name, norm) in enumerate(wanted):
        if out[position]:
            continue
        if norm and norm not in taken and norm not in RESERVED_COLUMNS:
            name = norm
        else:
            base, k = name, 2
            while (name := f"{base}_{k}") in taken:
                k += 1
        taken.add(name)
        out[position] = name
    return out


def missing_required(columns: list[str]) -> list[str]:
    """Names of required columns a normalised header lacks (empty when the file is ingestible)."""
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if not any(all(c in columns for c in group) for group in COORDINATE_COLUMN_SETS):
        missing.append("latitude+longitude or location")
    return missing


_CLASS_LOOKUP = {re.sub(r"\s+", " ", c.replace("&", "and")).casefold(): c for c in CLASSES}


def canonical_label(value: object) -> str | None:
    """Canonical class for a raw parent type, ignoring case, spacing and '&' vs 'and'; else None."""
    if not isinstance(value, str):
        return None
    key = re.sub(r"\s+", " ", value.replace("&", "and")).strip().casefold()
    return _CLASS_LOOKUP.get(key)
