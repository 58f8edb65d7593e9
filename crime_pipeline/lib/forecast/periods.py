"""Forecast periods: a week (from Monday 00:00), a day, or an 8-hour shift (00-08, 08-16, 16-24), in local time.

Times are naive local datetimes, so every period of a kind has the same length (a daylight-saving
change does not shorten a week of wall-clock time).
"""

from __future__ import annotations

import pandas as pd

PERIODS = {"week", "day", "shift"}
_LENGTH = {"week": pd.Timedelta(days=7), "day": pd.Timedelta(days=1), "shift": pd.Timedelta(hours=8)}


def check_period(period: str) -> str:
    if period not in PERIODS:
        raise ValueError(f"period {period!r} is not one of {sorted(PERIODS)}")
    return period


def period_length(period: str) -> pd.Timedelta:
    return _LENGTH[check_period(period)]


def period_days(period: str) -> float:
    return period_length(period) / pd.Timedelta(days=1)


def period_start(time, period: str):
    """The start of the period holding `time` (a Timestamp, or a Series / DatetimeIndex of them)."""
    check_period(period)
    single = isinstance(time, pd.Timestamp | str) or not hasattr(time, "__len__")
    t = pd.DatetimeIndex([pd.Timestamp(time)]) if single else pd.DatetimeIndex(time)
    day = t.normalize()
    if period == "week":
        out = day - pd.to_timedelta(t.day_of_week, unit="D")
    elif period == "day":
        out = day
    else:
        out = day + pd.to_timedelta((t.hour // 8) * 8, unit="h")
    if single:
        return out[0]
    return pd.Series(out, index=time.index) if isinstance(time, pd.Series) else out


def issue_times(first, last, period: str) -> pd.DatetimeIndex:
    """Every period start from `first` to `last` inclusive; a `first` inside a period starts at the next one."""
    first, last = pd.Timestamp(first), pd.Timestamp(last)
    start = period_start(first, period)
    if start < first:
        start += period_length(period)
    if start > last:
        return pd.DatetimeIndex([])
    return pd.date_range(start, last, freq=period_length(period))
