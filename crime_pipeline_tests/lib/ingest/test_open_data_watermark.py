"""The open-data watermark (`:updated_at`) is the server's word: checked before it is kept or sent back.

A value that is not a strict SODA timestamp, or that lies in the future, stops the pull naming the
value (escaped, shortened); it never becomes the next pull's `$where`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from crime_pipeline.lib.ingest.open_data import SodaError, SodaSettings, fetch_updated_since, newest_update
from crime_pipeline.lib.ingest.watermark import FUTURE_TOLERANCE, soql_string, timestamp_problem
from crime_pipeline_tests.soda_server import SodaServer, api_rows

INJECTION = "9999-12-31T00:00:00.000Z' OR '1'='1"


def _settings(server: SodaServer) -> SodaSettings:
    return SodaSettings(server.url, "d6g9-xbgu", page_size=4, max_retries=0, deadline_seconds=10.0)


def _pull_with(updated_at, since: str | None = None) -> tuple[str, SodaServer]:
    rows = api_rows(6)
    rows[5][":updated_at"] = updated_at
    with SodaServer(rows) as server:
        with pytest.raises(SodaError) as info:
            fetch_updated_since(_settings(server), since, log=lambda _: None)
    message = str(info.value)
    assert "\n" not in message and len(message) < 600, message
    return message, server


def test_a_query_injection_in_updated_at_is_refused_naming_the_value():
    message, _ = _pull_with(INJECTION)
    assert re.search(
        r"failed: row 6 has :updated_at \"9999-12-31T00:00:00.000Z' OR '1'='1\", not a SODA timestamp "
        r"\(YYYY-MM-DDTHH:MM:SS\[\.fff\]Z\); refused so it never becomes the next pull's watermark$",
        message,
    ), message


def test_a_far_future_watermark_is_refused():
    message, _ = _pull_with("9999-12-31T00:00:00.000Z")
    assert re.search(
        r"row 6 has :updated_at '9999-12-31T00:00:00.000Z', which lies in the future \(after \d{4}-\d\d-\d\dT"
        r"\d\d:\d\d:\d\dZ\); refused so it never becomes the next pull's watermark$",
        message,
    ), message


@pytest.mark.parametrize(
    "value, shown",
    [
        ("2025-13-01T00:00:00.000Z", "'2025-13-01T00:00:00.000Z'"),  # no 13th month
        ("x" * 5000 + "\n", "'" + "x" * 60 + "'..."),  # shortened, and the newline never printed
    ],
)
def test_malformed_watermarks_are_shown_escaped_and_short(value, shown):
    message, _ = _pull_with(value)
    assert f"row 6 has :updated_at {shown}, not a SODA timestamp" in message, message


def test_a_bad_stored_watermark_is_refused_before_asking_the_server():
    rows = api_rows(2)
    with SodaServer(rows) as server:
        for since in (INJECTION, "9999-12-31T00:00:00.000Z"):
            with pytest.raises(SodaError, match="^the stored watermark .* refused; fix or remove last_updated_at"):
                fetch_updated_since(_settings(server), since, log=lambda _: None)
        assert server.requests == []


def test_a_good_watermark_is_sent_quoted_and_only_newer_rows_come_back():
    rows = api_rows(6)
    with SodaServer(rows) as server:
        got = fetch_updated_since(_settings(server), rows[3][":updated_at"], log=lambda _: None)
        assert server.requests[0]["$where"] == f":updated_at > '{rows[3][':updated_at']}'"
    assert [r[":id"] for r in got] == ["row-0004", "row-0005"]
    near_future = (datetime.now(UTC) + FUTURE_TOLERANCE / 2).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    rows[5][":updated_at"] = near_future  # within the clock-skew tolerance
    with SodaServer(rows) as server:
        assert len(fetch_updated_since(_settings(server), None, log=lambda _: None)) == 6
    assert FUTURE_TOLERANCE <= timedelta(hours=1)


def test_a_watermark_must_be_text_in_the_strict_format():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert timestamp_problem(20250301, now) == "20250301, not a SODA timestamp (YYYY-MM-DDTHH:MM:SS[.fff]Z)"
    assert timestamp_problem("2025-03-01 00:00:00", now).endswith("not a SODA timestamp (YYYY-MM-DDTHH:MM:SS[.fff]Z)")
    assert timestamp_problem("2025-03-01T00:00:00.123456789Z", now) is None
    assert timestamp_problem("2026-01-01T00:59:00Z", now) is None  # within the tolerance
    assert "lies in the future" in timestamp_problem("2026-01-01T01:01:00Z", now)


def test_soql_strings_double_their_quotes():
    assert soql_string("it's") == "'it''s'"


def test_the_newest_update_is_the_latest_instant_not_the_largest_string():
    rows = [{":updated_at": "2025-03-01T00:00:00Z"}, {":updated_at": "2025-03-01T00:00:00.500Z"}]
    assert newest_update(rows, None) == "2025-03-01T00:00:00.500Z"
    assert newest_update(rows, "2025-03-02T00:00:00.000Z") == "2025-03-02T00:00:00.000Z"
