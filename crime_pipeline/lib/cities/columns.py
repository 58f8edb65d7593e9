"""Canonical column names and header normalisation for every known layout of the data set.

The portal's CSV export uses display names ("Case Number", "2010 Census Tract "), the older
SODA API uses snake_case ("case_number", "address_1", "zip") and the newer one renamed a few
("zip_code", "neighborhood"). Headers are normalised (case, spacing, punctuation) and then
mapped through one alias table, so an export with a header spelled slightly differently still
lands in the same schema. Unknown columns are kept under their normalised name: nothing is lost.
"""

from __future__ import annotations

import re

from crime_pipeline.lib.cities.profiles import CityProfile, default_profile

# The default city's (Buffalo's) classes, in order of frequency, and its header aliases
# (canonical name -> accepted normalised spellings besides the canonical name itself).
CLASSES: tuple[str, ...] = default_profile().class_names
ALIASES: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in default_profile().header_aliases.items()}

# A file must carry these (after normalisation) to be ingestible at all: the default city's, see
# required_columns() for any city's ...
REQUIRED_COLUMNS: tuple[str, ...] = ("case_number", "incident_datetime", "parent_incident_type")
# ... and coordinates, either as two columns or as a WKT `location` point.
COORDINATE_COLUMN_SETS: tuple[tuple[str, ...], ...] = (("latitude", "longitude"), ("location",))


def required_columns(profile: CityProfile | None = None) -> tuple[str, ...]:
    """The case number, the datetime and the city's label column."""
    profile = profile or default_profile()
    return ("case_number", "incident_datetime", profile.label_column)


# Columns added by ingestion to every row; they name where the row came from (`city`: the key of
# the city profile the file was read with; an export's own "City" column is kept as `input_city`).
SOURCE_COLUMNS: tuple[str, ...] = ("source_file", "source_sha256", "source_line", "city")
# Every column our own code adds to a row (ingestion, validation, the merge). An input column with
# one of these names is renamed `input_<name>`, keeping its values, so it never collides with ours.
RESERVED_COLUMNS: tuple[str, ...] = (
    *SOURCE_COLUMNS,
    "raw_record",
    "rules",
    "label",
    "hour_of_day_reported",
    "hour_of_day_mismatch",
    "time_defaulted_noon",
    "date_is_first_of_month",
    "ingest_seq",
    "partition_key",
)


def normalise_header(name: str) -> str:
    """Lower-case, trim, and turn every run of non-alphanumerics into one underscore."""
    text = re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")
    return text


def canonical_names(headers: list[str], profile: CityProfile | None = None) -> list[str]:
    """Map raw headers to canonical names, unique whatever the input, none of them reserved.

    Unknown headers keep their normalised form; an empty one becomes `unnamed_<position>`; a
    reserved one becomes `input_<name>`. Each name goes first to the first header that asks for it;
    a later duplicate takes its own normalised spelling if free (both "zip" and "zip_code": the
    second stays "zip"), else `<name>_2`, `<name>_3`, ... skipping every name already taken.
    """
    lookup = (profile or default_profile()).header_lookup()
    wanted: list[tuple[str, str]] = []
    for position, raw in enumerate(headers):
        norm = normalise_header(raw)
        name = lookup.get(norm, norm) or f"unnamed_{position}"
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


def missing_required(columns: list[str], profile: CityProfile | None = None) -> list[str]:
    """Names of required columns a normalised header lacks (empty when the file is ingestible)."""
    missing = [c for c in required_columns(profile) if c not in columns]
    if not any(all(c in columns for c in group) for group in COORDINATE_COLUMN_SETS):
        missing.append("latitude+longitude or location")
    return missing


def canonical_label(value: object, profile: CityProfile | None = None) -> str | None:
    """The city's class for a raw label value, ignoring case, spacing and '&' vs 'and'; else None."""
    if not isinstance(value, str):
        return None
    key = re.sub(r"\s+", " ", value.replace("&", "and")).strip().casefold()
    return (profile or default_profile()).label_lookup().get(key)
