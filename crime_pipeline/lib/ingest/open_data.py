"""A small client for Socrata (SODA) open-data endpoints that does not trust the server.

Each city's portal and dataset are in its profile (`open_data` in cities/<city>.yaml; Buffalo's
incidents, the default, are dataset `d6g9-xbgu`; `settings_for` builds the settings). Rows updated
since a watermark are asked for with `$where=:updated_at > '<watermark>'`, ordered by `:updated_at`
and paged with `$limit`/`$offset`.

Transient failures (HTTP 429 and 5xx, dropped or stalled connections) are retried with exponential
backoff. Everything else stops the pull with one `SodaError` sentence naming the URL and the cause
(never the app token). The server is bounded on every axis (see `SodaSettings`): bytes per page and
in total, pages, time per request and for the whole pull; a page that repeats an earlier one (the
server ignores `$offset`) stops paging. Redirects are followed only within the configured origin
(scheme, host and port): a redirect elsewhere is refused rather than followed without the token, so
rows never silently come from a host nobody configured and the token never reaches it.

The watermark is the server's word too: every row's `:updated_at` must be a strict SODA timestamp
(`YYYY-MM-DDTHH:MM:SS[.fff]Z`) not in the future (watermark.py), or the pull stops naming
the value, so a malformed or far-future value never becomes the next pull's `$where` (a query
injection, or every later pull silently empty). The stored watermark is checked the same way.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import http.client
import io
import json
import os
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from crime_pipeline.lib.cities.profiles import get_profile
from crime_pipeline.lib.ingest.watermark import instant, soql_string, timestamp_problem

RETRY_STATUSES = {429, 500, 502, 503, 504}
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
MAX_REDIRECTS = 5
CHUNK_BYTES = 64 * 1024


class SodaError(RuntimeError):
    """The open-data endpoint failed for good or answered something that is not a SODA page."""


@dataclass(frozen=True)
class SodaSettings:
    """Where to pull from and how far to trust the server; every limit has a sane default."""

    base_url: str
    dataset_id: str
    app_token: str | None = None
    page_size: int = 50_000
    max_retries: int = 4
    backoff_seconds: float = 1.0
    timeout_seconds: float = 120.0  # one request, connect to last byte
    deadline_seconds: float = 3600.0  # the whole pull, retries and backoff included
    max_page_bytes: int = 256 * 2**20  # a 50,000-row page of the real data is about 52 MB
    max_total_bytes: int = 2**30  # the whole data set is about 0.33 GB as JSON, ~4x that once parsed
    max_pages: int = 100  # 5 million rows at the default page size (the data set has ~323,000)


def settings_for(city: str | None = None, lake_root: str | os.PathLike | None = None, **limits) -> SodaSettings:
    """The settings of a city's portal and dataset, from its profile (the default city's by default;
    a profile in `<lake_root>/cities/` counts, the default lake's when `lake_root` is None)."""
    portal = get_profile(city, lake_root).open_data
    return SodaSettings(portal.base_url, portal.dataset_id, **limits)


class _Transient(Exception):
    """A failure worth retrying; `reason` is the human cause."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # redirects are checked and followed by _Pull
        return None


class _Tracked:
    """A connection that hands its socket to the pull, so a watchdog can cut it at the deadline."""

    def __init__(self, *args, pull: _Pull, **kwargs):
        super().__init__(*args, **kwargs)
        self._pull = pull

    def connect(self):
        super().connect()
        self._pull.adopt(self.sock)


class _TrackedHTTP(_Tracked, http.client.HTTPConnection):
    pass


class _TrackedHTTPS(_Tracked, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, pull: _Pull):
        super().__init__()
        self.pull = pull

    def http_open(self, req):
        return self.do_open(_TrackedHTTP, req, pull=self.pull)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, pull: _Pull):
        super().__init__()
        self.pull = pull

    def https_open(self, req):
        return self.do_open(_TrackedHTTPS, req, context=self._context, pull=self.pull)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def _page_url(settings: SodaSettings, since: str | None, offset: int) -> str:
    params = {
        "$limit": str(settings.page_size),
        "$offset": str(offset),
        "$order": ":updated_at, :id",
        "$select": ":*, *",
    }
    if since:
        params["$where"] = f":updated_at > {soql_string(since)}"
    return f"{settings.base_url.rstrip('/')}/resource/{settings.dataset_id}.json?{urllib.parse.urlencode(params)}"


class _Pull:
    """One pull: its deadline, bytes so far, the current request's socket, and the error wording.

    Each request runs under a watchdog that shuts its socket at min(request timeout, pull deadline):
    socket timeouts alone restart with every byte, so a server dripping its headers or body would
    outlast both.
    """

    def __init__(self, settings: SodaSettings, log: Callable[[str], None], sleep: Callable[[float], None]):
        self.settings, self.log, self.sleep = settings, log, sleep
        self.deadline = time.monotonic() + settings.deadline_seconds
        self.total_bytes = 0
        self.opener = urllib.request.build_opener(_NoRedirect, _HTTPHandler(self), _HTTPSHandler(self))
        self.sock: socket.socket | None = None
        self.cut = False  # the watchdog fired for the current request
        self.received = 0  # body bytes of the current request

    def error(self, url: str, cause: str) -> SodaError:
        if self.settings.app_token:  # the cause may quote the server, which could echo the token back
            cause = cause.replace(self.settings.app_token, "***")
        return SodaError(f"GET {url} failed: {cause}")

    def out_of_time(self, url: str) -> SodaError:
        return self.error(
            url,
            f"the pull ran out of time (deadline_seconds={self.settings.deadline_seconds:g})"
            + (f" after {self.received:,} bytes of the response" if self.received else ""),
        )

    def adopt(self, sock: socket.socket) -> None:
        self.sock = sock
        if self.cut:
            self._shut()

    def _shut(self) -> None:
        self.cut = True
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)

    def get(self, url: str) -> bytes:
        """The body at `url`, retrying transient failures with backoff within the deadline."""
        s = self.settings
        for attempt in range(s.max_retries + 1):
            try:
                return self._get_following_redirects(url)
            except _Transient as exc:
                tries = f"({attempt + 1} attempt{'s' if attempt else ''})"
                if attempt == s.max_retries:
                    raise self.error(url, f"{exc.reason} {tries}") from exc
                delay = s.backoff_seconds * 2**attempt
                if time.monotonic() + delay >= self.deadline:
                    raise self.error(
                        url,
                        f"{exc.reason} {tries}, and no time is left to retry (deadline_seconds={s.deadline_seconds:g})",
                    ) from exc
                self.log(f"{exc.reason}; retrying in {delay:.1f}s (attempt {attempt + 2} of {s.max_retries + 1})")
                self.sleep(delay)
        raise AssertionError("unreachable")

    def _get_following_redirects(self, url: str) -> bytes:
        home = _origin(self.settings.base_url)
        target = url
        for _ in range(MAX_REDIRECTS + 1):
            body, location = self._get_once(url, target)
            if location is None:
                return body
            nxt = urllib.parse.urljoin(target, location)
            if _origin(nxt) != home:
                scheme, host, port = home
                raise self.error(
                    url,
                    f"the server redirected to {nxt}, which is not {scheme}://{host}:{port} "
                    "(the configured base_url); refused so the app token and the rows stay with "
                    "the configured portal (if it moved, set CRIME_PIPELINE_SODA_URL)",
                )
            target = nxt
        raise self.error(url, f"more than {MAX_REDIRECTS} redirects")

    def _get_once(self, url: str, target: str) -> tuple[bytes, str | None]:
        """(body, None), or (b"", a redirect's Location). `url` is the page's, for messages."""
        s = self.settings
        headers = {"Accept": "application/json"}
        if s.app_token:
            headers["X-App-Token"] = s.app_token
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self.out_of_time(url)
        request_deadline = time.monotonic() + min(s.timeout_seconds, left)
        self.sock, self.cut, self.received = None, False, 0
        watchdog = threading.Timer(min(s.timeout_seconds, left), self._shut)
        watchdog.daemon = True
        watchdog.start()
        try:
            request = urllib.request.Request(target, headers=headers)
            with self.opener.open(request, timeout=min(s.timeout_seconds, left)) as response:
                body = self._read_bounded(url, response, request_deadline)
            if self.cut:  # the watchdog's shutdown can look like a clean end of the body
                raise TimeoutError
            return body, None
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code in REDIRECT_STATUSES and exc.headers.get("Location"):
                return b"", exc.headers["Location"]
            if exc.code in RETRY_STATUSES:
                raise _Transient(f"HTTP {exc.code} {exc.reason}") from exc
            raise self.error(url, f"HTTP {exc.code} {exc.reason} (not retried)") from exc
        except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets, TLS, bad status lines
            if self.cut or isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError):
                if request_deadline >= self.deadline:
                    raise self.out_of_time(url) from exc
                raise _Transient(
                    f"timed out (timeout_seconds={s.timeout_seconds:g}) after {self.received:,} bytes"
                ) from exc
            if isinstance(getattr(exc, "reason", None), ssl.SSLCertVerificationError):
                raise self.error(url, f"the server's TLS certificate was refused ({exc.reason})") from exc
            if isinstance(exc, urllib.error.URLError):
                raise _Transient(f"could not connect ({exc.reason})") from exc
            if isinstance(exc, http.client.IncompleteRead):
                raise _Transient(f"the connection dropped mid-response after {len(exc.partial):,} bytes") from exc
            raise _Transient(f"the connection failed ({type(exc).__name__}: {exc})") from exc
        except ValueError as exc:  # urllib refuses a malformed URL or an unknown scheme
            raise self.error(url, f"not a usable URL ({exc})") from exc
        finally:
            watchdog.cancel()

    def _read_bounded(self, url: str, response, request_deadline: float) -> bytes:
        """Read in chunks (a stalled read is ended by the watchdog), refusing past the byte limits."""
        s = self.settings
        limit = min(s.max_page_bytes, s.max_total_bytes - self.total_bytes)
        if limit == s.max_page_bytes:
            over = f"the {s.max_page_bytes:,}-byte limit for one page (max_page_bytes)"
        else:
            over = f"the {s.max_total_bytes:,}-byte limit for the whole pull (max_total_bytes)"
        declared = response.headers.get("Content-Length")
        declared = int(declared) if declared and declared.isdigit() else None
        if declared is not None and declared > limit:
            raise self.error(url, f"the server announced {declared:,} bytes, over {over}")
        chunks = []
        while True:
            left = request_deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            chunk = response.read1(CHUNK_BYTES)
            if not chunk:
                break
            self.received += len(chunk)
            if self.received > limit:
                raise self.error(url, f"the response is larger than {over}")
            chunks.append(chunk)
        if declared is not None and self.received < declared and not self.cut:  # read1 ends quietly on a drop
            raise _Transient(f"the connection dropped mid-response after {self.received:,} of {declared:,} bytes")
        self.total_bytes += self.received
        return b"".join(chunks)


def fetch_updated_since(
    settings: SodaSettings,
    since: str | None,
    log: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
    on_page: Callable[[int, int], None] | None = None,
) -> list[dict]:
    """Every row updated after `since` (all rows when None), page by page, in update order.
    `on_page(offset, rows)` is told of every page received."""
    if since is not None and (problem := timestamp_problem(since)):
        raise SodaError(
            f"the stored watermark is {problem}: refused; fix or remove last_updated_at in the pull's state "
            "(open_data_pull.json) to pull from a known time or from the start"
        )
    pull = _Pull(settings, log, sleep)
    rows: list[dict] = []
    seen: dict[str, int] = {}  # page digest -> offset, to catch a server that ignores $offset
    offset = 0
    for _ in range(settings.max_pages):
        url = _page_url(settings, since, offset)
        body = pull.get(url)
        try:
            page = json.loads(body)
        except ValueError as exc:
            raise pull.error(url, f"page at offset {offset} is not JSON ({body[:80]!r}...)") from exc
        if not isinstance(page, list) or not all(isinstance(r, dict) for r in page):
            raise pull.error(url, f"page at offset {offset} is not a list of rows")
        for i, row in enumerate(page):
            if ":updated_at" in row and (problem := timestamp_problem(row[":updated_at"])):
                raise pull.error(
                    url,
                    f"row {offset + i + 1} has :updated_at {problem}; refused so it never becomes the next "
                    "pull's watermark",
                )
        log(f"fetched {len(page)} rows at offset {offset}")
        if on_page:
            on_page(offset, len(page))
        if len(page) < settings.page_size:
            rows.extend(page)
            return rows
        digest = hashlib.sha256(body).hexdigest()
        if digest in seen:
            raise pull.error(
                url,
                f"page at offset {offset} repeats the page at offset {seen[digest]} "
                "(the server ignores $offset); stopped paging",
            )
        seen[digest] = offset
        rows.extend(page)
        offset += len(page)
    raise pull.error(
        _page_url(settings, since, offset),
        f"every one of {settings.max_pages} pages was full (max_pages); stopped paging after {len(rows):,} rows",
    )


def rows_to_csv(rows: list[dict]) -> str:
    """Rows as CSV with the API's field names (the union over all rows, first-seen order)."""
    fields: dict[str, None] = {}
    for row in rows:
        fields.update(dict.fromkeys(row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(fields), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in row.items()})
    return out.getvalue()


def newest_update(rows: list[dict], previous: str | None) -> str | None:
    """The new watermark: the latest `:updated_at` seen (each checked by fetch_updated_since), by instant."""
    stamps = [r[":updated_at"] for r in rows if r.get(":updated_at")]
    return max([*stamps, *([previous] if previous else [])], key=instant, default=None)
