"""Events to forecast: one row per incident with its time, place, whether its time of day is known, and its label.

An events frame has columns `time` (datetime64, naive local), `lat`, `lon`, `time_known` (bool) and
`label` (str), sorted by time. `time_known` is False where the time of day is the export's default
(lib/validate/unknown_time.py, the one rule); such events count in day and week periods, whose bounds
their day fixes, and are left out of 8-hour shifts (see `countable`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from crime_pipeline.lib.lake.errors import StageError
from crime_pipeline.lib.validate.unknown_time import time_known

EVENT_COLUMNS = ("time", "lat", "lon", "time_known", "label")
ONE_CLASS_LABEL = "event"
XYT_COLUMNS = ("X", "Y", "T")


def _frame(time, lat, lon, known, label) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "time": pd.to_datetime(time).astype("datetime64[ns]"),
            "lat": np.asarray(lat, dtype=float),
            "lon": np.asarray(lon, dtype=float),
            "time_known": np.asarray(known, dtype=bool),
            "label": np.asarray(label, dtype=object).astype(str),
        }
    )
    return out.sort_values("time", kind="stable").reset_index(drop=True)


def events_from_incidents(incidents: pd.DataFrame, labels: Iterable[str] | None = None) -> pd.DataFrame:
    """Events from the `incidents` table: all crime, or only rows whose `label` is one of `labels`.

    Rows without a time or coordinates are no event (validation quarantines them; this only guards).
    """
    frame = incidents
    if labels:
        wanted = set(labels)
        frame = frame[frame["label"].isin(wanted)]
    when = pd.to_datetime(frame["incident_datetime"])
    if getattr(when.dt, "tz", None) is not None:
        when = when.dt.tz_localize(None)  # wall-clock local time, as `incidents` holds it
    keep = when.notna() & frame["latitude"].notna() & frame["longitude"].notna()
    frame, when = frame[keep], when[keep]
    return _frame(when, frame["latitude"], frame["longitude"], time_known(frame), frame["label"])


def events_from_xyt(path: str | Path, year: int) -> pd.DataFrame:
    """Events from an XYT file (X longitude, Y latitude, T fractional days within `year`; one class).

    T = 1.0 is taken as 1 January 00:00 local time. The source (the Chicago shootings fixtures) does
    not say whether 1.0 is the start of 1 or of 2 January, so every time may be a day early; weekly
    forecasts barely notice, day and shift forecasts on such data inherit the doubt.
    """
    path = Path(path)
    raw = pd.read_csv(path)
    missing = [c for c in XYT_COLUMNS if c not in raw.columns]
    if missing:
        raise StageError(
            f"{path.name} lacks the column(s) {missing}: an XYT event file needs X (longitude), Y (latitude) "
            "and T (days since the year's start).",
            {"columns": list(raw.columns)},
        )
    values = raw[list(XYT_COLUMNS)].apply(pd.to_numeric, errors="coerce")
    bad = values.isna().any(axis=1) | (values["T"] < 0) | (values["T"] > 367)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise StageError(
            f"{path.name} row {row + 2} (line, header = 1) breaks the rule that X, Y are numbers and T is a "
            f"number of days within {year} (0..367): {raw.iloc[row].to_dict()}.",
            {"bad_rows": int(bad.sum())},
        )
    time = pd.Timestamp(year=int(year), month=1, day=1) + pd.to_timedelta(values["T"] - 1.0, unit="D")
    n = len(values)
    return _frame(time, values["Y"], values["X"], np.ones(n, bool), np.full(n, ONE_CLASS_LABEL))


def countable(events: pd.DataFrame, period: str) -> np.ndarray:
    """Which events a count in `period`s includes: all for weeks and days; time-known ones for shifts."""
    if period == "shift":
        return events["time_known"].to_numpy(dtype=bool)
    return np.ones(len(events), dtype=bool)
