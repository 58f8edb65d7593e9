"""The contract of a valid incident row, in two passes, and the rules a row can fail.

Two passes, because a failed type coercion would hide a row's other failures: first every text
column is parsed (`coerce_incidents`, recording which non-empty values did not parse), then the
pandera `IncidentSchema` checks the typed table lazily and every failure becomes a named rule on
its row (`rule_failures`). `RULES` names and explains every rule.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from crime_pipeline.lib.cities.columns import CLASSES, canonical_label
from crime_pipeline.lib.cities.profiles import CityProfile, default_profile
from crime_pipeline.lib.validate.parse import clean_text, parse_coordinates, parse_datetimes, parse_hour_of_day

_BOX = default_profile().box  # the default city's; any city's rule comes from its profile
EARLIEST = pd.Timestamp("2009-01-01")  # the portal calls earlier data unreliable
EARLIEST_RECORD = pd.Timestamp("1900-01-01")  # a Created At / updated_at before this is a typo
FUTURE_TOLERANCE = pd.Timedelta(days=1)  # exports are local time; allow for the clock offset

RULES: dict[str, str] = {
    "row_malformed": "the CSV record has the wrong number of fields",
    "case_number_missing": "Case Number is empty",
    "incident_datetime_missing": "Incident Datetime is empty",
    "incident_datetime_unparseable": "Incident Datetime is not a real date and time in a known format "
    "(impossible dates such as 02/30 and 2-digit years included)",
    "incident_datetime_before_2009": "Incident Datetime is before 2009 (unreliable per the portal)",
    "incident_datetime_in_future": "Incident Datetime is after the file was ingested (as_of, plus a day)",
    "label_missing": "Parent Incident Type is empty",
    "label_not_canonical": "Parent Incident Type (the city profile's label column) is not one of the city's classes "
    "(Buffalo's 9 canonical types)",
    "coordinates_missing": "no latitude/longitude (nor a location point)",
    "coordinates_unparseable": "latitude/longitude (or the location point) are not numbers",
    "coordinates_outside_city": "the point lies outside the city's box (its profile's; Buffalo's city box by default)",
    "hour_of_day_invalid": "Hour of Day is present but not a whole number 0..23",
    "created_at_unparseable": "Created At is present but not a real date and time",
    "created_at_out_of_range": "Created At is before 1900 or after the file was ingested (as_of, plus a day)",
    "updated_at_unparseable": "updated_at is present but not a real date and time",
    "updated_at_out_of_range": "updated_at is before 1900 or after the file was ingested (as_of, plus a day)",
}


class IncidentSchema(pa.DataFrameModel):
    """The contract of a valid incident row. Check names are the quarantine rule names.

    The clock-based check (`incident_datetime_in_future`) needs the file's ingestion time, so it is
    added per call by `incident_schema(as_of)`.
    """

    case_number: Series[str] = pa.Field(nullable=False)
    incident_datetime: Series[pd.Timestamp] = pa.Field(nullable=False)
    label: Series[str] = pa.Field(nullable=False)
    latitude: Series[float] = pa.Field(nullable=False)
    longitude: Series[float] = pa.Field(nullable=False)

    @pa.check("incident_datetime", name="incident_datetime_before_2009")
    def _from_2009(cls, s: Series[pd.Timestamp]) -> Series[bool]:
        return s >= EARLIEST

    @pa.check("label", name="label_not_canonical")
    def _canonical(cls, s: Series[str]) -> Series[bool]:
        return s.isin(CLASSES)

    @pa.check("latitude", name="coordinates_outside_city")
    def _lat_in_city(cls, s: Series[float]) -> Series[bool]:
        return s.between(_BOX.lat_min, _BOX.lat_max)

    @pa.check("longitude", name="coordinates_outside_city")
    def _lon_in_city(cls, s: Series[float]) -> Series[bool]:
        return s.between(_BOX.lon_min, _BOX.lon_max)

    class Config:
        strict = False
        coerce = False


def incident_schema(as_of: pd.Timestamp, profile: CityProfile | None = None) -> pa.DataFrameSchema:
    """IncidentSchema plus `incident_datetime_in_future`, judged against `as_of`, not the clock; the
    classes and the box are the city profile's (IncidentSchema's own are the default city's)."""
    latest = as_of + FUTURE_TOLERANCE
    schema = IncidentSchema.to_schema()
    checks = [
        *schema.columns["incident_datetime"].checks,
        pa.Check(lambda s: s <= latest, name="incident_datetime_in_future"),
    ]
    schema = schema.update_column("incident_datetime", checks=checks)
    if profile is None or profile.key == default_profile().key:
        return schema
    classes, box = list(profile.class_names), profile.box
    return schema.update_columns(
        {
            "label": {"checks": [pa.Check(lambda s: s.isin(classes), name="label_not_canonical")]},
            "latitude": {
                "checks": [pa.Check(lambda s: s.between(box.lat_min, box.lat_max), name="coordinates_outside_city")]
            },
            "longitude": {
                "checks": [pa.Check(lambda s: s.between(box.lon_min, box.lon_max), name="coordinates_outside_city")]
            },
        }
    )


def coerce_incidents(
    raw: pd.DataFrame, as_of: pd.Timestamp, profile: CityProfile | None = None
) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """Pass one: typed columns, plus masks of values that were present but did not parse.

    Datetimes are datetime64[us] here (any year 1..9999); the rules decide what is valid. Date
    formats, time zone and the label's column and spellings are the city profile's.
    """
    profile = profile or default_profile()
    formats, zone = tuple(profile.date_formats), profile.timezone
    typed = pd.DataFrame(index=raw.index)
    typed["case_number"] = clean_text(raw, "case_number")
    dt_text = clean_text(raw, "incident_datetime")
    typed["incident_datetime"] = parse_datetimes(dt_text, formats, zone)
    label_text = clean_text(raw, profile.label_column)
    codes, uniques = pd.factorize(label_text)
    mapped = np.asarray([canonical_label(u, profile) for u in uniques] + [None], dtype=object)
    label = pd.Series(mapped[codes], index=raw.index, dtype="string")  # code -1 (missing) -> the trailing None
    typed["label"] = label.fillna(label_text)  # a non-canonical value is kept, and fails the rule
    lat, lon, coord_bad = parse_coordinates(raw)
    typed["latitude"], typed["longitude"] = lat, lon
    typed["hour_of_day_reported"], hour_bad = parse_hour_of_day(raw)
    problems = {
        "incident_datetime_unparseable": dt_text.notna() & typed["incident_datetime"].isna(),
        "coordinates_unparseable": coord_bad,
        "hour_of_day_invalid": hour_bad,
    }
    latest = as_of + FUTURE_TOLERANCE
    for column in ("created_at", "updated_at"):
        text = clean_text(raw, column)
        typed[column] = parse_datetimes(text, formats, zone)
        problems[f"{column}_unparseable"] = text.notna() & typed[column].isna()
        problems[f"{column}_out_of_range"] = (typed[column] < EARLIEST_RECORD) | (typed[column] > latest)
    return typed, {k: v.fillna(False).astype(bool) for k, v in problems.items()}


_NULL_RULE = {
    "case_number": "case_number_missing",
    "incident_datetime": "incident_datetime_missing",
    "label": "label_missing",
    "latitude": "coordinates_missing",
    "longitude": "coordinates_missing",
}
# A null the schema sees may be a value that did not parse: then that is the rule.
_PARSE_RULE_FOR_NULL = {
    "incident_datetime_missing": "incident_datetime_unparseable",
    "coordinates_missing": "coordinates_unparseable",
}
# Problems of optional columns, outside the schema: each is a rule on its own.
_DIRECT_RULES = (
    "hour_of_day_invalid",
    "created_at_unparseable",
    "created_at_out_of_range",
    "updated_at_unparseable",
    "updated_at_out_of_range",
)


def rule_failures(
    typed: pd.DataFrame, problems: dict[str, pd.Series], as_of: pd.Timestamp, profile: CityProfile | None = None
) -> pd.Series:
    """Pass two: pandera's lazy validation; returns the sorted rule names each row fails ('' = valid)."""
    out = pd.Series("", index=typed.index, dtype=object)
    found = [pd.DataFrame({"index": typed.index[problems[r].to_numpy()], "rule": r}) for r in _DIRECT_RULES]
    try:
        incident_schema(as_of, profile).validate(typed[list(_NULL_RULE)], lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        if cases["index"].isna().any():  # a whole-column failure would hide row failures: never pass it
            raise RuntimeError(f"schema-level validation failure: {cases[cases['index'].isna()]}") from exc
        index = cases["index"].to_numpy()
        rule = np.where(cases["check"] == "not_nullable", cases["column"].map(_NULL_RULE), cases["check"])
        for null_rule, parse_rule in _PARSE_RULE_FOR_NULL.items():
            hit = (rule == null_rule) & problems[parse_rule].reindex(index).to_numpy()
            rule = np.where(hit, parse_rule, rule)
        found.append(pd.DataFrame({"index": index, "rule": rule}))
    failures = pd.concat(found, ignore_index=True)
    if len(failures):
        rows, names = _joined_rules(failures["index"].to_numpy(), failures["rule"].to_numpy())
        out.loc[rows] = names
    return out


def _joined_rules(index: np.ndarray, rule: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, "rule_a;rule_b"): each failing row's distinct rules, sorted and joined. Rows share a
    few combinations, so each combination is joined once (a bit per rule), not once per row."""
    names, code = np.unique(rule.astype(str), return_inverse=True)
    if len(names) > 62:
        raise ValueError(f"{len(names)} distinct rules do not fit a 64-bit mask")
    rows, row_of = np.unique(index, return_inverse=True)
    bits = np.zeros(len(rows), dtype=np.int64)
    np.bitwise_or.at(bits, row_of, np.left_shift(np.int64(1), code.astype(np.int64)))
    combos, combo_of = np.unique(bits, return_inverse=True)
    text = [";".join(n for i, n in enumerate(names) if c >> i & 1) for c in combos.tolist()]
    return rows, np.asarray(text, dtype=object)[combo_of]
