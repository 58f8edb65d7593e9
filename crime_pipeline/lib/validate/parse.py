"""Parsing raw text values: datetimes (the portal's formats and ISO 8601), numbers, coordinates, hours.

Pass one of validation (schema.py's `coerce_incidents`) types every text column with these; a
value that is present but does not parse comes back missing, and the caller records it as a problem.
Nothing here decides validity: the rules do.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa_arrow
import pyarrow.compute as pc

from crime_pipeline.lib.cities.profiles import default_profile

LOCAL_TIMEZONE = default_profile().timezone  # America/New_York
# "Missing geography fields hold the literal string UNKNOWN": these mean "no value" there.
NULL_TOKENS = ("", "UNKNOWN", "Unknown", "unknown", "N/A", "NULL", "null", "None", "nan", "NaN")
DATETIME_FORMATS = tuple(default_profile().date_formats)  # any city's come from its profile
# What the formats above must look like, field by field: strptime alone takes "19" as the year 0019
# and rolls 02/30 over to March 2, so a parse counts only if its fields read back as written.
# Two-digit years are refused, not guessed: the portal writes four digits, and a pivot year would
# put some incidents in the wrong century without a trace.
_MDY_FIELDS = (
    r"^(?P<month>\d{1,2})/(?P<day>\d{1,2})/(?P<year>\d{4})"
    r"(?:\s+(?P<hour>\d{1,2}):(?P<minute>\d{1,2})(?::(?P<second>\d{1,2}))?(?:\s*[AaPp][Mm])?)?$"
)
# ISO 8601 as the API writes it; at most 6 fractional digits keeps every year 1..9999 representable.
_ISO = r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?(?:Z|[+-]\d{2}:?\d{2})?"


def local_now() -> pd.Timestamp:
    """Now in Buffalo local time, naive, as the portal writes its values."""
    return pd.Timestamp.now(tz=LOCAL_TIMEZONE).tz_localize(None)


def local_time(when: str | pd.Timestamp) -> pd.Timestamp:
    """A time as naive Buffalo local time; an aware one (e.g. the ledger's UTC `ingested_at`) is converted."""
    stamp = pd.Timestamp(when)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert(LOCAL_TIMEZONE).tz_localize(None)
    return stamp


def clean_text(raw: pd.DataFrame, column: str, nulls: tuple[str, ...] = ("",)) -> pd.Series:
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


def parse_datetimes(
    text: pd.Series, formats: tuple[str, ...] = DATETIME_FORMATS, timezone: str = LOCAL_TIMEZONE
) -> pd.Series:
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
    out = pd.Series(
        pc.cast(pc.if_else(plain, values, None), pa_arrow.float64()).to_numpy(zero_copy_only=False),
        index=text.index,
        dtype="float64",
    )
    other = text.notna().to_numpy() & ~plain.to_numpy(zero_copy_only=False)
    if other.any():
        out[other] = pd.to_numeric(text[other], errors="coerce").astype("float64")
    return out


def parse_coordinates(raw: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Latitude/longitude as floats, from the two columns or else the WKT `location` point."""
    lat_text, lon_text = clean_text(raw, "latitude", NULL_TOKENS), clean_text(raw, "longitude", NULL_TOKENS)
    location = clean_text(raw, "location", NULL_TOKENS)
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


def parse_hour_of_day(raw: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The reported Hour of Day as Int16, and a mask of values present but not a whole hour 0..23.

    Checked as text before any cast, so 99999 cannot wrap around Int16 nor 6.5 truncate to 6.
    """
    text = clean_text(raw, "hour_of_day")
    whole = text.str.fullmatch(r"\d{1,2}(?:\.0+)?").fillna(False).astype(bool)
    number = _numbers(text.where(whole))
    ok = whole & number.between(0, 23).fillna(False).astype(bool)
    return number.where(ok).astype("Int16"), text.notna() & ~ok
