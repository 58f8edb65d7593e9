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

from crime_pipeline.lib.cities.profiles import CityProfile, default_profile, get_profile
from crime_pipeline.lib.cities.columns import CLASSES, RESERVED_COLUMNS, SOURCE_COLUMNS, canonical_label

_BOX = default_profile().box  # the default city's; any city's rule comes from its profile
LOCAL_TIMEZONE = default_profile().timezone  # America/New_York
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
# "Missing geography fields hold the literal string UNKNOWN": these mean "no value" there.
NULL_TOKENS = ("", "UNKNOWN", "Unknown", "unknown", "N/A", "NULL", "null", "None", "nan", "NaN")
DATETIME_FORMATS = tuple(default_profile().date_formats)  # any city's come from its profile
# What the formats above must look like, field by field: strptime alone takes "19" as the year 0019
# and rolls 02/30 over to March 2, so a parse counts only if its fields read back as written.
# Two-digit years are refused, not guessed: the portal writes four digits, and a pivot year would
# put some incidents in the wrong century without a trace.
_MDY_FIELDS = (r"^(?P<month>\d{1,2})/(?P<day>\d{1,2})/(?P<year>\d{4})"
               r"(?:\s+(?P<hour>\d{1,2}):(?P<minute>\d{1,2})(?::(?P<second>\d{1,2}))?(?:\s*[AaPp][Mm])?)?$")
# ISO 8601 as the API writes it; at most 6 fractional digits keeps every year 1..9999 representable.
_ISO = r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?(?:Z|[+-]\d{2}:?\d{2})?"
GEOGRAPHY_COLUMNS = ("address", "address_2", "zip_code", "neighborhood", "council_district",
                     "police_district", "census_tract", "census_block_group", "census_block")
# Columns validation adds to a row; an input column with one of these names would be overwritten.
ADDED_COLUMNS = tuple(c for c in RESERVED_COLUMNS if c not in (*SOURCE_COLUMNS, "raw_record"))


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
    checks = [*schema.columns["incident_datetime"].checks,
              pa.Check(lambda s: s <= latest, name="incident_datetime_in_future")]
    schema = schema.update_column("incident_datetime", checks=checks)
    if profile is None or profile.key == default_profile().key:
        return schema
    classes, box = list(profile.class_names), profile.box
    return schema.update_columns({
        "label": {"checks": [pa.Check(lambda s: s.isin(classes), name="label_not_canonical")]},
        "latitude": {"checks": [pa.Check(lambda s: s.between(box.lat_min, box.lat_max), name="coordinates_outside_city")]},
        "longitude": {"checks": [pa.Check(lambda s: s.between(box.lon_min, box.lon_max), name="coordinates_outside_city")]},
    })


def local_now() -> pd.Timestamp:
    """Now in Buffalo local time, naive, as the portal writes its values."""
    return pd.Timestamp.now(tz=LOCAL_TIMEZONE).tz_localize(None)


def local_time(when: str | pd.Timestamp) -> pd.Timestamp:
    """A time as naive Buffalo local time; an aware one (e.g. the ledger's UTC `ingested_at`) is converted."""
    stamp = pd.Timestamp(when)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert(LOCAL_TIMEZONE).tz_localize(None)
    return stamp


def _text(raw: pd.DataFrame, column: str, nulls: tuple[str, ...] = ("",)) -> pd.Series:
    """A text column with whitespace trimmed and the given null tokens turned into missing values."""
    if column not in raw:
        return pd.Series(pd.NA, index=raw.index, dtype="string")
    s = raw[column].astype("string").str.strip()
    return s.mask(s.isin(nulls))


def _read_back(values: pa_arrow.Array, parsed: pa_arrow.Array) -> pa_arrow.Array:
    """True where a strptime result has exactly the fields written in the text (no rollover)."""
    fields = pc.extract_regex(values, _MDY_FIELDS)

    def written(name: str) -> np.ndarray:  # an absent optional field ("") reads as 0
        text = fields.field(name)
        return pc.fill_null(pc.cast(pc.if_else(pc.equal(text, ""), None, text), pa_arrow.int64()), 0).to_numpy()

    def got(part) -> np.ndarray:
        return pc.fill_null(part(parsed), -1).to_numpy()

    ok = pc.fill_null(pc.is_valid(fields), False).to_numpy(zero_copy_only=False)
    ok &= got(pc.year) == written("year")
    ok &= got(pc.month) == written("month")
    ok &= got(pc.day) == written("day")
    ok &= got(pc.hour) % 12 == written("hour") % 12  # 12-hour clock: 7 PM reads back as 19
    ok &= got(pc.minute) == written("minute")
    ok &= got(pc.second) == written("second")
    return pa_arrow.array(ok)


def _arrow_text(text: pd.Series) -> pa_arrow.Array:
    """A pandas text column as one Arrow string array (zero-copy when it is Arrow-backed)."""
    values = pa_arrow.array(text, type=pa_arrow.string())
    return values.combine_chunks() if isinstance(values, pa_arrow.ChunkedArray) else values


def _strptime_first_fit(values: pa_arrow.Array, formats: tuple[str, ...]) -> pa_arrow.Array:
    """Each value parsed with the first format it fits; only what is still unparsed tries the next."""
    parsed = pa_arrow.nulls(len(values), pa_arrow.timestamp("s"))
    todo = pc.is_valid(values)
    for fmt in formats:  # pyarrow's strptime: C speed, null where the format does not fit
        rows = np.flatnonzero(todo.to_numpy(zero_copy_only=False))
        if not len(rows):
            break
        got = pc.strptime(values.take(rows), format=fmt, unit="s", error_is_null=True)
        parsed = pc.replace_with_mask(parsed, todo, got)
        todo = pc.and_(todo, pc.is_null(parsed))
    return parsed


def parse_datetimes(text: pd.Series, formats: tuple[str, ...] = DATETIME_FORMATS,
                    timezone: str = LOCAL_TIMEZONE) -> pd.Series:
    """Parse the portal's formats and ISO 8601 (the API's) to datetime64[us]; anything else is NaT.

    Microseconds, not nanoseconds, so that every year 1..9999 is a value the rules can judge
    (12/31/9999 is "in the future", not an exception). Impossible dates are NaT, never rolled over.
    """
    values = _arrow_text(text)
    parsed = _strptime_first_fit(values, formats)
    parsed = pc.if_else(_read_back(values, parsed), parsed, None)
    out = pd.Series(parsed.to_numpy(zero_copy_only=False), index=text.index).astype("datetime64[us]")
    rest = text.notna() & out.isna()
    rest &= text.str.fullmatch(_ISO).fillna(False).astype(bool)
    if rest.any():
        # ISO 8601 (the API's). A value with an offset is converted to Buffalo local time; one
        # without is local time already, as the portal's own values are.
        has_offset = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True, na=False)
        for mask, aware in ((rest & ~has_offset, False), (rest & has_offset, True)):
            if mask.any():
                parsed = pd.to_datetime(text[mask], format="ISO8601", errors="coerce", utc=aware)
                if aware:
                    parsed = parsed.dt.tz_convert(timezone).dt.tz_localize(None)
                out.loc[mask] = parsed.astype("datetime64[us]")
    return out


_PLAIN_NUMBER = r"^[+-]?(?:\d+\.?\d*|\.\d+)$"


def _numbers(text: pd.Series) -> pd.Series:
    """Text as float64, NaN where it is no number: plain decimals by Arrow's cast (fast), anything
    else (exponents, "inf", junk) by pandas' to_numeric, as before."""
    values = _arrow_text(text)
    plain = pc.fill_null(pc.match_substring_regex(values, _PLAIN_NUMBER), False)
    out = pd.Series(pc.cast(pc.if_else(plain, values, None), pa_arrow.float64()).to_numpy(zero_copy_only=False),
                    index=text.index, dtype="float64")
    other = text.notna().to_numpy() & ~plain.to_numpy(zero_copy_only=False)
    if other.any():
        out[other] = pd.to_numeric(text[other], errors="coerce").astype("float64")
    return out


def _coordinates(raw: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Latitude/longitude as floats, from the two columns or else the WKT `location` point."""
    lat_text, lon_text = _text(raw, "latitude", NULL_TOKENS), _text(raw, "longitude", NULL_TOKENS)
    location = _text(raw, "location", NULL_TOKENS)
    use_point = lat_text.isna() & lon_text.isna() & location.notna()
    point_bad = pd.Series(False, index=raw.index)
    if use_point.any():
        # WKT "POINT (lon lat)" (the current API), or the older "(lat, lon)".
        wkt = location[use_point].str.extract(r"POINT\s*\(\s*(-?[\d.]+)\s+(-?[\d.]+)\s*\)", expand=True)
        pair = location[use_point].str.extract(r"^\(\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*\)$", expand=True)
        lat_text = lat_text.mask(use_point, wkt[1].fillna(pair[0]).reindex(lat_text.index))
        lon_text = lon_text.mask(use_point, wkt[0].fillna(pair[1]).reindex(lon_text.index))
        point_bad = use_point & lat_text.isna()  # a location that is no point of either form
    lat, lon = _numbers(lat_text), _numbers(lon_text)
    unparseable = (lat_text.notna() & lat.isna()) | (lon_text.notna() & lon.isna()) | point_bad
    return lat, lon, unparseable.fillna(False)


def _hour_of_day(raw: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The reported Hour of Day as Int16, and a mask of values present but not a whole hour 0..23.

    Checked as text before any cast, so 99999 cannot wrap around Int16 nor 6.5 truncate to 6.
    """
    text = _text(raw, "hour_of_day")
    whole = text.str.fullmatch(r"\d{1,2}(?:\.0+)?").fillna(False).astype(bool)
    number = _numbers(text.where(whole))
    ok = whole & number.between(0, 23).fillna(False).astype(bool)
    return number.where(ok).astype("Int16"), text.notna() & ~ok


def coerce_incidents(raw: pd.DataFrame, as_of: pd.Timestamp,
                     profile: CityProfile | None = None) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """Pass one: typed columns, plus masks of values that were present but did not parse.

    Datetimes are datetime64[us] here (any year 1..9999); the rules decide what is valid. Date
    formats, time zone and the label's column and spellings are the city profile's.
    """
    profile = profile or default_profile()
    formats, zone = tuple(profile.date_formats), profile.timezone
    typed = pd.DataFrame(index=raw.index)
    typed["case_number"] = _text(raw, "case_number")
    dt_text = _text(raw, "incident_datetime")
    typed["incident_datetime"] = parse_datetimes(dt_text, formats, zone)
    label_text = _text(raw, profile.label_column)
    codes, uniques = pd.factorize(label_text)
    mapped = np.asarray([canonical_label(u, profile) for u in uniques] + [None], dtype=object)
    label = pd.Series(mapped[codes], index=raw.index, dtype="string")  # code -1 (missing) -> the trailing None
    typed["label"] = label.fillna(label_text)  # a non-canonical value is kept, and fails the rule
    lat, lon, coord_bad = _coordinates(raw)
    typed["latitude"], typed["longitude"] = lat, lon
    typed["hour_of_day_reported"], hour_bad = _hour_of_day(raw)
    problems = {
        "incident_datetime_unparseable": dt_text.notna() & typed["incident_datetime"].isna(),
        "coordinates_unparseable": coord_bad,
        "hour_of_day_invalid": hour_bad,
    }
    latest = as_of + FUTURE_TOLERANCE
    for column in ("created_at", "updated_at"):
        text = _text(raw, column)
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
_DIRECT_RULES = ("hour_of_day_invalid", "created_at_unparseable", "created_at_out_of_range",
                 "updated_at_unparseable", "updated_at_out_of_range")


def rule_failures(typed: pd.DataFrame, problems: dict[str, pd.Series], as_of: pd.Timestamp,
                  profile: CityProfile | None = None) -> pd.Series:
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


@dataclass
class ValidationResult:
    """One file's rows split into valid and quarantined, with the counts that must add up."""

    valid: pd.DataFrame
    quarantine: pd.DataFrame
    rows_read: int
    by_rule: dict[str, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)


def city_of(raw: pd.DataFrame) -> CityProfile:
    """The profile of the city a raw table belongs to: its `city` column (one city per file), else the default."""
    if "city" not in raw or not len(raw):
        return default_profile()
    cities = raw["city"].dropna().unique()
    if len(cities) != 1:
        raise ValueError(f"a raw table must hold one city's rows, not {sorted(map(str, cities))}")
    return get_profile(str(cities[0]))


def validate_incidents(raw: pd.DataFrame, as_of: str | pd.Timestamp | None = None,
                       profile: CityProfile | None = None) -> ValidationResult:
    """Validate raw text rows into valid + quarantined rows; `raw_record` marks malformed records.

    `as_of` is the moment the file is judged at, in Buffalo local time (an aware time is converted):
    the clock-based rules (`incident_datetime_in_future`, `*_out_of_range`) compare with it, so the
    same file always validates the same way. Assets pass the file's recorded ingestion time
    (`local_time(ledger_entry["ingested_at"])`); only `predict`, scoring a file now, leaves it None
    to mean now. `profile` is the city's (default: the one its `city` column names).
    """
    profile = profile or city_of(raw)
    as_of = local_now() if as_of is None else local_time(as_of)
    if not EARLIEST <= as_of <= pd.Timestamp("2200-01-01"):
        raise ValueError(f"as_of {as_of} is not a plausible ingestion time")
    clash = [c for c in raw.columns if c in ADDED_COLUMNS]
    if clash:  # read_raw_csv renames such input columns (canonical_names); a frame built otherwise must too
        raise ValueError(f"input columns {clash} would be overwritten by validation; rename them first")
    raw = raw.reset_index(drop=True)
    if "raw_record" in raw:
        malformed = raw.loc[raw["raw_record"].notna()]
        raw = raw.loc[raw["raw_record"].isna()].drop(columns="raw_record").reset_index(drop=True)
    else:
        malformed = raw.iloc[:0]
    typed, problems = coerce_incidents(raw, as_of, profile)
    failed = rule_failures(typed, problems, as_of, profile)
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
    for col in ("incident_datetime", "created_at", "updated_at"):  # the rules kept these in range
        valid[col] = valid[col].astype("datetime64[ns]")
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


@dataclass
class ValidationTotals:
    """Counts of a file validated batch by batch: the sums of each batch's ValidationResult."""

    rows_read: int = 0
    valid: int = 0
    quarantined: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)

    def add(self, result: ValidationResult) -> None:
        self.rows_read += result.rows_read
        self.valid += len(result.valid)
        self.quarantined += len(result.quarantine)
        for mine, theirs in ((self.by_rule, result.by_rule), (self.flags, result.flags)):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + int(v)
        self.by_rule = dict(sorted(self.by_rule.items()))


# What `supersede` needs of a validated table: merging reads only these, then streams the kept rows.
KEY_COLUMNS = ("case_number", "incident_datetime", "created_at", "updated_at", "source_line")


def record_time(valid: pd.DataFrame) -> pd.Series:
    """When a record was last written: updated_at, else created_at, else the incident itself."""
    return valid["updated_at"].fillna(valid["created_at"]).fillna(valid["incident_datetime"])


def supersede(valid: pd.DataFrame, order_columns: tuple[str, ...] = ("ingest_seq", "source_line")) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep the newest record of each case number; return (kept, superseded), each in input order.

    Newest means the latest record time; ties go to the later-ingested file, then the later line.
    Case numbers are sorted as integer codes (a narrow key, not millions of strings); the wide
    table is only filtered.
    """
    case = pd.factorize(valid["case_number"])[0]
    keys = [valid[c].to_numpy() for c in reversed(order_columns)]
    order = np.lexsort((*keys, record_time(valid).to_numpy().astype("datetime64[us]").astype(np.int64), case))
    sorted_case = case[order]
    last_of_case = np.append(sorted_case[1:] != sorted_case[:-1], True) if len(order) else np.zeros(0, dtype=bool)
    newest = np.zeros(len(valid), dtype=bool)
    newest[order[last_of_case]] = True
    return valid.iloc[np.flatnonzero(newest)], valid.iloc[np.flatnonzero(~newest)]
