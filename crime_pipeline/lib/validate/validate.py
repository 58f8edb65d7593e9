"""Validation of raw incident rows: valid rows typed and flagged, the rest quarantined with reasons.

A row that fails any rule (schema.py) goes to quarantine with all its rules; a record with the
wrong number of fields goes there as `row_malformed`; nothing is dropped, and the counts add up
(checked on every call).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from crime_pipeline.lib.cities.columns import RESERVED_COLUMNS, SOURCE_COLUMNS
from crime_pipeline.lib.cities.profiles import CityProfile, default_profile, get_profile
from crime_pipeline.lib.validate.parse import NULL_TOKENS, clean_text, local_now, local_time
from crime_pipeline.lib.validate.schema import EARLIEST, coerce_incidents, rule_failures

GEOGRAPHY_COLUMNS = (
    "address",
    "address_2",
    "zip_code",
    "neighborhood",
    "council_district",
    "police_district",
    "census_tract",
    "census_block_group",
    "census_block",
)
# Columns validation adds to a row; an input column with one of these names would be overwritten.
ADDED_COLUMNS = tuple(c for c in RESERVED_COLUMNS if c not in (*SOURCE_COLUMNS, "raw_record"))


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


def validate_incidents(
    raw: pd.DataFrame, as_of: str | pd.Timestamp | None = None, profile: CityProfile | None = None
) -> ValidationResult:
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
    # One astype for every column: assigning column by column is quadratic in the column count.
    quarantine = quarantine.astype({c: "string" for c in quarantine.columns if c != "source_line"})

    valid = pd.concat([typed.loc[~bad], raw.loc[~bad, text_cols]], axis=1).reset_index(drop=True)
    for col in ("incident_datetime", "created_at", "updated_at"):  # the rules kept these in range
        valid[col] = valid[col].astype("datetime64[ns]")
    for col in GEOGRAPHY_COLUMNS:
        if col in valid:
            valid[col] = clean_text(valid, col, NULL_TOKENS)
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
    result = ValidationResult(
        valid=valid,
        quarantine=quarantine,
        rows_read=len(raw) + len(malformed),
        by_rule=dict(sorted(by_rule.items())),
        flags=flags,
    )
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
