"""Validation of raw incident rows: a pandera contract, a quarantine with reasons, exact accounting.

Two passes, because a failed type coercion would hide a row's other failures: first every text
column is parsed here (recording which non-empty values did not parse), then the pandera
`IncidentSchema` checks the typed table lazily and every failure becomes a named rule on its row.
A row that fails any rule goes to quarantine with all its rules; nothing is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.compute as pc
from pandera.typing import Series

from crime_pipeline.lib.buffalo import LAT_MAX, LAT_MIN, LON_MAX, LON_MIN
from crime_pipeline.lib.columns import CLASSES, canonical_label

LOCAL_TIMEZONE = "America/New_York"
EARLIEST = pd.Timestamp("2009-01-01")  # the portal calls earlier data unreliable
FUTURE_TOLERANCE = pd.Timedelta(days=1)  # exports are local time; allow for the clock offset

RULES: dict[str, str] = {
    "row_malformed": "the CSV record has the wrong number of fields",
    "case_number_missing": "Case Number is empty",
    "incident_datetime_missing": "Incident Datetime is empty",
    "incident_datetime_unparseable": "Incident Datetime is not a date and time",
    "incident_datetime_before_2009": "Incident Datetime is before 2009 (unreliable per the portal)",
    "incident_datetime_in_future": "Incident Datetime is in the future",
    "label_missing": "Parent Incident Type is empty",
    "label_not_canonical": "Parent Incident Type is not one of the 9 canonical types",
    "coordinates_missing": "no latitude/longitude (nor a location point)",
    "coordinates_unparseable": "latitude/longitude are not numbers",
    "coordinates_outside_city": "the point lies outside Buffalo's city box",
}
# "Missing geography fields hold the literal string UNKNOWN": these mean "no value" there.
NULL_TOKENS = ("", "UNKNOWN", "Unknown", "unknown", "N/A", "NULL", "null", "None", "nan", "NaN")
DATETIME_FORMATS = ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y")
GEOGRAPHY_COLUMNS = ("address", "address_2", "zip_code", "neighborhood", "council_district",
                     "police_district", "census_tract", "census_block_group", "census_block")

class IncidentSchema(pa.DataFrameModel):
    """The contract of a valid incident row. Check names are the quarantine rule names."""

    case_number: Series[str] = pa.Field(nullable=False)
    incident_datetime: Series[pd.Timestamp] = pa.Field(nullable=False)
    label: Series[str] = pa.Field(nullable=False)
    latitude: Series[float] = pa.Field(nullable=False)
    longitude: Series[float] = pa.Field(nullable=False)

    @pa.check("incident_datetime", name="incident_datetime_before_2009")
    def _from_2009(cls, s: Series[pd.Timestamp]) -> Series[bool]:
        return s >= EARLIEST

    @pa.check("incident_datetime", name="incident_datetime_in_future")
    def _not_future(cls, s: Series[pd.Timestamp]) -> Series[bool]:
        return s <= pd.Timestamp.now() + FUTURE_TOLERANCE

    @pa.check("label", name="label_not_canonical")
    def _canonical(cls, s: Series[str]) -> Series[bool]:
        return s.isin(CLASSES)

    @pa.check("latitude", name="coordinates_outside_city")
    def _lat_in_city(cls, s: Series[float]) -> Series[bool]:
        return s.between(LAT_MIN, LAT_MAX)

    @pa.check("longitude", name="coordinates_outside_city")
    def _lon_in_city(cls, s: Series[float]) -> Series[bool]:
        return s.between(LON_MIN, LON_MAX)

    class Config:
        strict = False
        coerce = False


def _text(raw: pd.DataFrame, column: str, nulls: tuple[str, ...] = ("",)) -> pd.Series:
    """A text column with whitespace trimmed and the given null tokens turned into missing values."""
    if column not in raw:
        return pd.Series(pd.NA, index=raw.index, dtype="string")
    s = raw[column].astype("string").str.strip()
    return s.mask(s.isin(nulls))


def parse_datetimes(text: pd.Series) -> pd.Series:
    """Parse the portal's formats and ISO 8601 (the API's); unparseable values become NaT."""
    values = pa_arrow.array(text.astype(object).where(text.notna(), None), type=pa_arrow.string())
    parsed = pa_arrow.nulls(len(values), pa_arrow.timestamp("s"))
    for fmt in DATETIME_FORMATS:  # pyarrow's strptime: C speed, null where the format does not fit
        parsed = pc.coalesce(parsed, pc.strptime(values, format=fmt, unit="s", error_is_null=True))
    out = pd.Series(parsed.to_numpy(zero_copy_only=False), index=text.index).astype("datetime64[ns]")
    rest = text.notna() & out.isna()
    if rest.any():
        # ISO 8601 (the API's). A value with an offset is converted to Buffalo local time; one
        # without is local time already, as the portal's own values are.
        has_offset = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True, na=False)
        for mask, aware in ((rest & ~has_offset, False), (rest & has_offset, True)):
            if mask.any():
                parsed = pd.to_datetime(text[mask], format="ISO8601", errors="coerce", utc=aware)
                if aware:
                    parsed = parsed.dt.tz_convert(LOCAL_TIMEZONE).dt.tz_localize(None)
                out.loc[mask] = parsed.astype("datetime64[ns]")
    return out


def _coordinates(raw: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Latitude/longitude as floats, from the two columns or else the WKT `location` point."""
    lat_text, lon_text = _text(raw, "latitude", NULL_TOKENS), _text(raw, "longitude", NULL_TOKENS)
    location = _text(raw, "location", NULL_TOKENS)
    use_point = lat_text.isna() & lon_text.isna() & location.notna()
    if use_point.any():
        # WKT "POINT (lon lat)" (the current API), or the older "(lat, lon)".
        wkt = location[use_point].str.extract(r"POINT\s*\(\s*(-?[\d.]+)\s+(-?[\d.]+)\s*\)", expand=True)
        pair = location[use_point].str.extract(r"^\(\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*\)$", expand=True)
        lat_text = lat_text.mask(use_point, wkt[1].fillna(pair[0]).reindex(lat_text.index))
        lon_text = lon_text.mask(use_point, wkt[0].fillna(pair[1]).reindex(lon_text.index))
    lat = pd.to_numeric(lat_text, errors="coerce").astype("float64")
    lon = pd.to_numeric(lon_text, errors="coerce").astype("float64")
    unparseable = (lat_text.notna() & lat.isna()) | (lon_text.notna() & lon.isna())
    return lat, lon, unparseable.fillna(False)


def coerce_incidents(raw: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """Pass one: typed columns, plus masks of values that were present but did not parse."""
    typed = pd.DataFrame(index=raw.index)
    typed["case_number"] = _text(raw, "case_number")
    dt_text = _text(raw, "incident_datetime")
    typed["incident_datetime"] = parse_datetimes(dt_text)
    label_text = _text(raw, "parent_incident_type")
    codes, uniques = pd.factorize(label_text)
    mapped = np.asarray([canonical_label(u) for u in uniques] + [None], dtype=object)
    label = pd.Series(mapped[codes], index=raw.index, dtype="string")  # code -1 (missing) -> the trailing None
    typed["label"] = label.fillna(label_text)  # a non-canonical value is kept, and fails the rule
    lat, lon, coord_bad = _coordinates(raw)
    typed["latitude"], typed["longitude"] = lat, lon
    typed["hour_of_day_reported"] = pd.to_numeric(_text(raw, "hour_of_day"), errors="coerce").astype("Int16")
    typed["created_at"] = parse_datetimes(_text(raw, "created_at"))
    typed["updated_at"] = parse_datetimes(_text(raw, "updated_at"))
    unparsed = {
        "incident_datetime_unparseable": dt_text.notna() & typed["incident_datetime"].isna(),
        "coordinates_unparseable": coord_bad,
        "label_not_canonical": label_text.notna() & ~typed["label"].isin(CLASSES),
    }
    return typed, {k: v.fillna(False).astype(bool) for k, v in unparsed.items()}


_NULL_RULE = {
    "case_number": "case_number_missing",
    "incident_datetime": "incident_datetime_missing",
    "label": "label_missing",
    "latitude": "coordinates_missing",
    "longitude": "coordinates_missing",
}
_PARSE_RULE_FOR_NULL = {
    "incident_datetime_missing": "incident_datetime_unparseable",
    "coordinates_missing": "coordinates_unparseable",
}


def rule_failures(typed: pd.DataFrame, unparsed: dict[str, pd.Series]) -> pd.Series:
    """Pass two: pandera's lazy validation; returns the sorted rule names each row fails ('' = valid)."""
    out = pd.Series("", index=typed.index, dtype=object)
    try:
        IncidentSchema.validate(typed[list(_NULL_RULE)], lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        if cases["index"].isna().any():  # a whole-column failure would hide row failures: never pass it
            raise RuntimeError(f"schema-level validation failure: {cases[cases['index'].isna()]}") from exc
        index = cases["index"].to_numpy()
        rule = np.where(cases["check"] == "not_nullable", cases["column"].map(_NULL_RULE), cases["check"])
        for null_rule, parse_rule in _PARSE_RULE_FOR_NULL.items():
            hit = (rule == null_rule) & unparsed[parse_rule].reindex(index).to_numpy()
            rule = np.where(hit, parse_rule, rule)
        joined = (
            pd.DataFrame({"index": index, "rule": rule}).drop_duplicates()
            .sort_values("rule").groupby("index")["rule"].agg(";".join)
        )
        out.loc[joined.index] = joined.to_numpy()
    return out


@dataclass
class ValidationResult:
    """One file's rows split into valid and quarantined, with the counts that must add up."""

    valid: pd.DataFrame
    quarantine: pd.DataFrame
    rows_read: int
    by_rule: dict[str, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)


def validate_incidents(raw: pd.DataFrame, as_of=None) -> ValidationResult:
    """Validate raw text rows into valid + quarantined rows; `raw_record` marks malformed records."""
    raw = raw.reset_index(drop=True)
    if "raw_record" in raw:
        malformed = raw.loc[raw["raw_record"].notna()]
        raw = raw.loc[raw["raw_record"].isna()].drop(columns="raw_record").reset_index(drop=True)
    else:
        malformed = raw.iloc[:0]
    typed, unparsed = coerce_incidents(raw)
    failed = rule_failures(typed, unparsed)
    bad = failed != ""
    text_cols = [c for c in raw.columns if c not in typed.columns]

    quarantine = raw.loc[bad].copy()
    quarantine["rules"] = failed[bad]
    quarantine["raw_record"] = None
    if len(malformed):
        quarantine = pd.concat([quarantine, malformed.assign(rules="row_malformed")], ignore_index=True)
    quarantine = quarantine.sort_values("source_line", kind="stable").reset_index(drop=True)
    for col in quarantine.columns:
        if col not in ("source_line",):
            quarantine[col] = quarantine[col].astype("string")

    valid = pd.concat([typed.loc[~bad], raw.loc[~bad, text_cols]], axis=1).reset_index(drop=True)
    for col in GEOGRAPHY_COLUMNS:
        if col in valid:
            valid[col] = _text(valid, col, NULL_TOKENS)
    when = valid["incident_datetime"]
    valid["hour_of_day"] = when.dt.hour.astype("int16")
    valid["hour_of_day_mismatch"] = (
        valid["hour_of_day_reported"].notna() & (valid["hour_of_day_reported"] != valid["hour_of_day"])
    ).astype(bool)
    valid["time_defaulted_noon"] = (when.dt.hour == 12) & (when.dt.minute == 0) & (when.dt.second == 0)
    valid["date_is_first_of_month"] = when.dt.day == 1
    by_rule: dict[str, int] = {}
    for names in quarantine["rules"]:
        for name in str(names).split(";"):
            by_rule[name] = by_rule.get(name, 0) + 1
    flags = {
        "hour_of_day_mismatch": int(valid["hour_of_day_mismatch"].sum()),
        "time_defaulted_noon": int(valid["time_defaulted_noon"].sum()),
        "date_is_first_of_month": int(valid["date_is_first_of_month"].sum()),
    }
    result = ValidationResult(valid=valid, quarantine=quarantine, rows_read=len(raw) + len(malformed),
                              by_rule=dict(sorted(by_rule.items())), flags=flags)
    if len(result.valid) + len(result.quarantine) != result.rows_read:
        raise AssertionError("validation lost rows: valid + quarantined != rows read")
    return result


def record_time(valid: pd.DataFrame) -> pd.Series:
    """When a record was last written: updated_at, else created_at, else the incident itself."""
    return valid["updated_at"].fillna(valid["created_at"]).fillna(valid["incident_datetime"])


def supersede(valid: pd.DataFrame, order_columns: tuple[str, ...] = ("ingest_seq", "source_line")) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep the newest record of each case number; return (kept, superseded).

    Newest means the latest record time; ties go to the later-ingested file, then the later line.
    Only the key columns are sorted; the wide table is reordered once.
    """
    keys = pd.DataFrame({"case_number": valid["case_number"], "_t": record_time(valid),
                         **{c: valid[c] for c in order_columns}}).reset_index(drop=True)
    order = keys.sort_values(["case_number", "_t", *order_columns], kind="stable").index.to_numpy()
    sorted_case = keys["case_number"].to_numpy()[order]
    last_of_case = np.append(sorted_case[1:] != sorted_case[:-1], True)
    newest = np.zeros(len(keys), dtype=bool)
    newest[order[last_of_case]] = True
    kept_rows = np.flatnonzero(newest)
    when = valid["incident_datetime"].to_numpy()[kept_rows]
    kept_rows = kept_rows[np.lexsort((keys["case_number"].to_numpy()[kept_rows], when))]
    kept = valid.iloc[kept_rows].reset_index(drop=True)
    return kept, valid.iloc[np.flatnonzero(~newest)]
