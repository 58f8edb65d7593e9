"""Superseding: of several records of one case (a case updated, a file re-exported), the newest wins.

A case is a (city, case number) pair: each city's police numbers its cases on its own, so Buffalo's
and Chicago's case numbers are independent series and the same number in two cities is two cases.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# What `supersede` needs of a validated table: merging reads only these, then streams the kept rows.
KEY_COLUMNS = ("case_number", "incident_datetime", "created_at", "updated_at", "source_line")


def record_time(valid: pd.DataFrame) -> pd.Series:
    """When a record was last written: updated_at, else created_at, else the incident itself."""
    return valid["updated_at"].fillna(valid["created_at"]).fillna(valid["incident_datetime"])


def supersede(
    valid: pd.DataFrame,
    order_columns: tuple[str, ...] = ("ingest_seq", "source_line"),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep the newest record of each case (city, case number); return (kept, superseded), each in
    input order. A table without a `city` column is one city's.

    Newest means the latest record time; ties go to the later-ingested file, then the later line.
    Cases are sorted as integer codes (a narrow key, not millions of strings); the wide table is
    only filtered.
    """
    case = case_codes(valid)
    keys = [valid[c].to_numpy() for c in reversed(order_columns)]
    order = np.lexsort((*keys, record_time(valid).to_numpy().astype("datetime64[us]").astype(np.int64), case))
    sorted_case = case[order]
    last_of_case = np.append(sorted_case[1:] != sorted_case[:-1], True) if len(order) else np.zeros(0, dtype=bool)
    newest = np.zeros(len(valid), dtype=bool)
    newest[order[last_of_case]] = True
    return valid.iloc[np.flatnonzero(newest)], valid.iloc[np.flatnonzero(~newest)]


def case_codes(table: pd.DataFrame) -> np.ndarray:
    """One integer per distinct (city, case number) of the table's rows."""
    number = pd.factorize(table["case_number"])[0].astype(np.int64)
    if "city" not in table:
        return number
    city = pd.factorize(table["city"])[0].astype(np.int64)
    return pd.factorize(city * (number.max(initial=0) + 1) + number)[0]
