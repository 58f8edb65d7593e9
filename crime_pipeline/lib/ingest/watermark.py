"""The open-data watermark (`:updated_at`, the newest update a pull saw): checked, never trusted.

It comes from the server and goes back to it as the next pull's `$where`, so it must be a strict
SODA timestamp (`YYYY-MM-DDTHH:MM:SS[.fff]Z`, the `Z` optional) no later than now plus
FUTURE_TOLERANCE: anything else could be a query injection, or a far-future value that makes every
later pull silently return nothing. It is sent quoted as a SoQL string all the same.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

FUTURE_TOLERANCE = timedelta(hours=1)  # clock skew between the portal and this machine
_TIMESTAMP = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z?")


def _shown(value) -> str:
    """A server's value for a message: escaped (no control characters) and at most 60 characters."""
    if not isinstance(value, str):
        return repr(value)[:60]
    return repr(value[:60]) + ("..." if len(value) > 60 else "")


def timestamp_problem(value, now: datetime | None = None) -> str | None:
    """Why `value` cannot be a watermark (None when it can): not a strict SODA timestamp, or later
    than `now` (default: the clock) plus FUTURE_TOLERANCE."""
    match = _TIMESTAMP.fullmatch(value) if isinstance(value, str) else None
    try:
        when = instant(value) if match else None
    except ValueError:  # a 13th month, a 30th of February
        when = None
    if when is None:
        return f"{_shown(value)}, not a SODA timestamp (YYYY-MM-DDTHH:MM:SS[.fff]Z)"
    latest = (now or datetime.now(UTC)) + FUTURE_TOLERANCE
    if when > latest:
        return f"{_shown(value)}, which lies in the future (after {latest:%Y-%m-%dT%H:%M:%SZ})"
    return None


def instant(value: str) -> datetime:
    """A checked SODA timestamp as an aware UTC datetime (ValueError for an impossible date)."""
    year, month, day, hour, minute, second, fraction = _TIMESTAMP.fullmatch(value).groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=UTC)


def soql_string(value: str) -> str:
    """A SoQL string literal: single-quoted, quotes inside doubled."""
    return "'" + value.replace("'", "''") + "'"
