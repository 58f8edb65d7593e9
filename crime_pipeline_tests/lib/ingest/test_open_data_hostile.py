"""The open-data client against a hostile server on 127.0.0.1: every way out is bounded and explained.

Each case uses tiny limits so it ends in a second or two, and asserts the whole error sentence.
"""

from __future__ import annotations

import re
import time

import dagster as dg
import pytest

from crime_pipeline.defs.open_data import open_data_pull
from crime_pipeline.lib.ingest.open_data import SodaError, SodaSettings, fetch_updated_since
from crime_pipeline.resources import LakeResource, OpenDataResource
from crime_pipeline_tests.soda_server import SodaServer, api_rows

TOKEN = "sekrit-token-4711"


def settings(server: SodaServer, **overrides) -> SodaSettings:
    limits = dict(
        app_token=TOKEN,
        page_size=4,
        max_retries=0,
        backoff_seconds=0.01,
        timeout_seconds=3.0,
        deadline_seconds=6.0,
        max_page_bytes=100_000,
        max_total_bytes=1_000_000,
        max_pages=5,
    )
    return SodaSettings(overrides.pop("base_url", server.url), "d6g9-xbgu", **{**limits, **overrides})


def failure(s: SodaSettings, within: float) -> str:
    """The SodaError sentence of a pull that must fail in under `within` seconds."""
    started = time.monotonic()
    with pytest.raises(SodaError) as info:
        fetch_updated_since(s, None, log=lambda _: None)
    assert time.monotonic() - started < within
    message = str(info.value)
    assert TOKEN not in message and "\n" not in message
    return message


def page_url(server: SodaServer, offset: int = 0, limit: int = 4, base: str = "") -> str:
    """A regex for the URL of the page at `offset` on `server` (or at `base`)."""
    return (
        re.escape(f"{base or server.url}/resource/d6g9-xbgu.json?$limit={limit}&$offset={offset}".replace("$", "%24"))
        + r"&\S+"
    )


def test_an_endless_body_is_cut_at_the_page_limit():
    with SodaServer(api_rows(3)) as server:
        server.hostile = "oversize"
        message = failure(settings(server), within=3)
    assert re.fullmatch(
        f"GET {page_url(server)} failed: the response is larger than the 100,000-byte limit for "
        r"one page \(max_page_bytes\)",
        message,
    ), message


def test_an_announced_oversize_body_is_refused_before_reading():
    with SodaServer(api_rows(3)) as server:
        server.hostile = "oversize_declared"
        message = failure(settings(server), within=3)
    assert re.fullmatch(
        f"GET {page_url(server)} failed: the server announced 53,687,091,200 bytes, over the "
        r"100,000-byte limit for one page \(max_page_bytes\)",
        message,
    ), message


def test_the_whole_pull_is_bounded_in_bytes():
    with SodaServer(api_rows(3)) as server:
        server.hostile = "endless"  # pages of about 1,560 bytes: the third would pass 4,000 in all
        message = failure(settings(server, max_total_bytes=4_000, max_pages=100), within=3)
        assert len(server.requests) == 3
    assert re.fullmatch(
        f"GET {page_url(server, offset=8)} failed: the server announced 1,[0-9]{{3}} bytes, over the "
        r"4,000-byte limit for the whole pull \(max_total_bytes\)",
        message,
    ), message


def test_endless_full_pages_stop_at_max_pages():
    with SodaServer(api_rows(3)) as server:
        server.hostile = "endless"
        message = failure(settings(server), within=3)
        assert [int(q["$offset"]) for q in server.requests] == [0, 4, 8, 12, 16]
    assert re.fullmatch(
        f"GET {page_url(server, offset=20)} failed: every one of 5 pages was full \\(max_pages\\); "
        "stopped paging after 20 rows",
        message,
    ), message


def test_a_server_ignoring_the_offset_is_caught_on_the_second_page():
    with SodaServer(api_rows(10)) as server:
        server.hostile = "repeat"
        message = failure(settings(server, max_pages=1000), within=3)
        assert len(server.requests) == 2
    assert re.fullmatch(
        f"GET {page_url(server, offset=4)} failed: page at offset 4 repeats the page at offset 0 "
        r"\(the server ignores \$offset\); stopped paging",
        message,
    ), message


def test_a_dripping_server_is_cut_at_the_request_timeout():
    # The reported case: one byte per 0.5 s ran 21 s past a 3 s timeout. Here a byte every 0.9 s and a
    # 1 s timeout: the wait for the second byte (due at 1.8 s) must end at 1 s.
    with SodaServer(api_rows(10)) as server:
        server.hostile, server.drip_seconds = "drip", 0.9
        message = failure(settings(server, timeout_seconds=1.0), within=1.6)
    assert re.fullmatch(
        f"GET {page_url(server)} failed: timed out \\(timeout_seconds=1\\) after 1 bytes "
        r"\(1 attempt\)",
        message,
    ), message


def test_a_server_dripping_its_status_line_is_cut_at_the_request_timeout():
    with SodaServer(api_rows(10)) as server:
        server.hostile, server.drip_seconds = "drip_headers", 0.1
        message = failure(settings(server, timeout_seconds=1.0), within=1.5)
    assert re.fullmatch(
        f"GET {page_url(server)} failed: timed out \\(timeout_seconds=1\\) after 0 bytes "
        r"\(1 attempt\)",
        message,
    ), message


def test_a_dripping_server_is_cut_at_the_pull_deadline_across_retries():
    with SodaServer(api_rows(10)) as server:
        server.hostile = "drip"
        message = failure(settings(server, timeout_seconds=0.7, deadline_seconds=1.5, max_retries=5), within=2.5)
        assert len(server.requests) >= 2  # the first timeout was retried
    assert re.fullmatch(
        f"GET {page_url(server)} failed: the pull ran out of time \\(deadline_seconds=1.5\\)"
        r"( after \d bytes of the response)?",
        message,
    ), message


def test_backoff_never_sleeps_past_the_deadline():
    with SodaServer(api_rows(3)) as server:
        server.status = 503
        message = failure(settings(server, max_retries=3, backoff_seconds=5.0, deadline_seconds=1.0), within=2.0)
        assert len(server.requests) == 1
    assert re.fullmatch(
        f"GET {page_url(server)} failed: HTTP 503 Service Unavailable \\(1 attempt\\), and no time "
        r"is left to retry \(deadline_seconds=1\)",
        message,
    ), message


def test_a_connection_dropped_mid_body_is_retried_then_explained():
    with SodaServer(api_rows(10)) as server:
        server.hostile = "drop"
        body = len(__import__("json").dumps(server.rows).encode())
        message = failure(settings(server, max_retries=2), within=3)
        assert len(server.requests) == 3
    assert re.fullmatch(
        f"GET {page_url(server)} failed: the connection dropped mid-response after "
        f"{body // 2:,} of {body:,} bytes \\(3 attempts\\)",
        message,
    ), message


def test_a_redirect_to_another_host_is_refused_and_the_token_never_arrives_there():
    with SodaServer(api_rows(10)) as elsewhere, SodaServer(api_rows(10)) as server:
        server.hostile, server.redirect_to = "redirect", elsewhere.url
        message = failure(settings(server), within=3)
        assert server.headers[0]["X-App-Token"] == TOKEN
        assert elsewhere.requests == [] and not any("X-App-Token" in h for h in elsewhere.headers)
    assert elsewhere.url.split(":")[-1] != server.url.split(":")[-1]  # same host, another port
    assert re.fullmatch(
        f"GET {page_url(server)} failed: the server redirected to {re.escape(elsewhere.url)}"
        f"/resource/\\S+, which is not {re.escape(server.url)} \\(the configured base_url\\); "
        r"refused so the app token and the rows stay with the configured portal "
        r"\(if it moved, set CRIME_PIPELINE_SODA_URL\)",
        message,
    ), message


def test_a_redirect_within_the_portal_is_followed_with_the_token():
    with SodaServer(api_rows(6)) as server:
        rows = fetch_updated_since(settings(server, base_url=server.url + "/old"), None, log=lambda _: None)
        assert len(rows) == 6
        assert [h.get("X-App-Token") for h in server.headers] == [TOKEN] * 4  # 2 pages, each redirected once


def test_a_non_json_page_is_not_retried():
    with SodaServer(api_rows(10)) as server:
        server.malformed_offsets = {4}
        message = failure(settings(server, max_retries=3), within=3)
        assert len(server.requests) == 2
    assert re.fullmatch(
        f"GET {page_url(server, offset=4)} failed: page at offset 4 is not JSON "
        r"\(b'<html>maintenance</html>'\.\.\.\)",
        message,
    ), message


def test_a_page_echoing_the_token_does_not_put_it_in_the_message():
    with SodaServer(api_rows(3)) as server:
        server.body = f"<p>bad token {TOKEN}</p>".encode()
        message = failure(settings(server), within=3)
    assert re.fullmatch(
        f"GET {page_url(server)} failed: page at offset 0 is not JSON "
        r"\(b'<p>bad token \*\*\*</p>'\.\.\.\)",
        message,
    ), message


def test_server_errors_are_retried_with_backoff_then_succeed():
    sleeps: list[float] = []
    with SodaServer(api_rows(3)) as server:
        server.fail_next = 2
        rows = fetch_updated_since(
            settings(server, max_retries=2, backoff_seconds=0.05), None, log=lambda _: None, sleep=sleeps.append
        )
        assert len(rows) == 3 and len(server.requests) == 3
    assert sleeps == [0.05, 0.1]


def test_persistent_server_errors_name_the_attempts():
    with SodaServer(api_rows(3)) as server:
        server.status = 503
        message = failure(settings(server, max_retries=2), within=3)
        assert len(server.requests) == 3
    assert re.fullmatch(f"GET {page_url(server)} failed: HTTP 503 Service Unavailable \\(3 attempts\\)", message), (
        message
    )


def test_a_client_error_is_not_retried():
    with SodaServer(api_rows(3)) as server:
        server.status = 403
        message = failure(settings(server, max_retries=3), within=3)
        assert len(server.requests) == 1
    assert re.fullmatch(f"GET {page_url(server)} failed: HTTP 403 Forbidden \\(not retried\\)", message), message


def test_a_refused_connection_is_one_sentence():
    with SodaServer([]) as server:
        url = server.url
    message = failure(settings(server, base_url=url, max_retries=1), within=3)
    assert re.fullmatch(
        f"GET {page_url(server)} failed: could not connect \\(.*[Cc]onnection refused\\) "
        r"\(2 attempts\)",
        message,
    ), message


def test_an_untrusted_certificate_is_refused_without_retry():
    with SodaServer(api_rows(3), tls=True) as server:
        message = failure(settings(server, max_retries=3), within=3)
        assert server.requests == []
    assert server.url.startswith("https://")
    assert re.fullmatch(
        f"GET {page_url(server)} failed: the server's TLS certificate was refused "
        r"\(.*certificate verify failed.*\)",
        message,
    ), message


def test_tls_to_a_plain_http_server_is_one_sentence():
    with SodaServer(api_rows(3)) as server:
        https = server.url.replace("http://", "https://")
        message = failure(settings(server, base_url=https, max_retries=1), within=3)
    assert re.fullmatch(
        f"GET {page_url(server, base=https)} failed: could not connect \\(.*SSL.*\\) "
        r"\(2 attempts\)",
        message,
    ), message


@pytest.mark.e2e
def test_the_job_fails_with_the_sentence_and_writes_nothing(lake):
    with SodaServer(api_rows(3)) as server:
        server.hostile = "endless"
        result = dg.materialize(
            [open_data_pull],
            resources={
                "lake": LakeResource(root=str(lake.root)),
                "open_data": OpenDataResource(base_url=server.url, page_size=4, max_pages=3, app_token=TOKEN),
            },
            raise_on_error=False,
        )
        assert len(server.requests) == 3
    assert not result.success
    description = result.failure_data_for_node("open_data_pull").user_failure_data.description
    assert description.startswith("open-data pull failed, nothing written: GET ")
    assert description.endswith("every one of 3 pages was full (max_pages); stopped paging after 12 rows")
    assert list(lake.incoming.iterdir()) == []
    assert not (lake.ledger.parent / "open_data_pull.json").exists()
