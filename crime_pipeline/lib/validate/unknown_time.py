"""The one rule for unknown times and dates, used by features, figures, the report, the notebook and forecasts.

Exports write 12:00:00 when an incident's time of day is unknown and often day 1 of the month when
its day is unknown; a real incident at exactly noon or on the 1st cannot be told apart, so both are
treated as unknown. Such incidents are left out of every time-of-day (resp. day-of-month / weekday)
statistic and figure, with a sentence saying how many, and models get an explicit "unknown" signal
instead of a fake noon or first-of-month. The month and year stay known either way.
"""

from __future__ import annotations

import pandas as pd

TIME_FLAG = "time_defaulted_noon"  # validation's flag on `incidents`: exactly 12:00:00
DAY_FLAG = "date_is_first_of_month"  # validation's flag on `incidents`: day 1 of the month


def _flag(frame: pd.DataFrame, column: str, derive) -> pd.Series:
    if column in frame.columns:
        return frame[column].fillna(False).astype(bool)
    when = pd.to_datetime(frame["incident_datetime"])
    return derive(when).fillna(False).astype(bool)


def time_unknown(frame: pd.DataFrame) -> pd.Series:
    """True where the time of day is the export's default (12:00:00): the hour is not known."""
    return _flag(frame, TIME_FLAG, lambda w: (w.dt.hour == 12) & (w.dt.minute == 0) & (w.dt.second == 0))


def day_unknown(frame: pd.DataFrame) -> pd.Series:
    """True where the date is day 1 of its month (the export's default day): the day is not known."""
    return _flag(frame, DAY_FLAG, lambda w: w.dt.day == 1)


def time_known(frame: pd.DataFrame) -> pd.Series:
    return ~time_unknown(frame)


def day_known(frame: pd.DataFrame) -> pd.Series:
    return ~day_unknown(frame)


REASONS = {
    "time of day": "the export's default time, 12:00:00",
    "day": "the export's default day, the 1st",
    "time of day or day": "the export's default time, 12:00:00, or day, the 1st",
}


def with_known_time(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows whose time of day is known: what every time-of-day statistic and figure counts."""
    return frame[time_known(frame).to_numpy()]


def with_known_day(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows whose day is known: what every weekday / day-of-month statistic and figure counts."""
    return frame[day_known(frame).to_numpy()]


def time_left_out(frame: pd.DataFrame) -> str:
    """`left_out_sentence` for the rows of `frame` whose time of day is unknown ("" when none)."""
    return left_out_sentence(int(time_unknown(frame).sum()), len(frame), "time of day")


def day_left_out(frame: pd.DataFrame) -> str:
    """`left_out_sentence` for the rows of `frame` whose day is unknown ("" when none)."""
    return left_out_sentence(int(day_unknown(frame).sum()), len(frame), "day")


def left_out_sentence(n_left_out: int, n_total: int, what: str = "time of day") -> str:
    """The sentence every time statistic carries: how many incidents the rule left out, and why."""
    if n_left_out == 0:
        return ""
    reason = REASONS.get(what, REASONS["day"])
    return (
        f"{n_left_out:,} of {n_total:,} incidents ({n_left_out / max(n_total, 1):.1%}) are left out: "
        f"their {what} is unknown ({reason})."
    )
