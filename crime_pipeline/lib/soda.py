"""A small client for Socrata (SODA) open-data endpoints that does not trust the server.

Buffalo's incidents are dataset `d6g9-xbgu`. Rows updated since a watermark are asked for with
`$where=:updated_at > '<watermark>'`, ordered by `:updated_at` and paged with `$limit`/`$offset`.

Transient failures (HTTP 429 and 5xx, dropped or stalled connections) are retried with exponential
backoff. Everything else stops the pull with one `SodaError` sentence naming the URL and the cause
(never the app token). The server is bounded on every axis (see `SodaSettings`): bytes per page and
in total, pages, time per request and for the whole pull; a page that repeats an earlier one (the
server ignores `$offset`) stops paging. Redirects are followed only within the configured origin
(scheme, host and port): a redirect elsewhere is refused rather than followed without the token, so
rows never silently come from a host nobody configured and the token never reaches it.
"""

from __future__ import annotations

import csv
import hashlib
import http.client
import io
import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Callable

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
    max_page_bytes: int = 256 * 2**20  # a 50,000-row page of the real data is about 75 MB
    max_total_bytes: int = 2 * 2**30  # the whole data set is about 0.5 GB as JSON
    max_pages: int = 100  # 5 million rows at the default page size (the data set has ~323,000)


class _Transient(Exception):
    """A failure worth retrying; `reason` is the human cause."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # redirects are checked and followed in _get
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def _page_url(settings: SodaSettings, since: str | None, offset: int) -> str:
    params = {"$limit": str(settings.page_size), "$offset": str(offset), "$order": ":updated_at, :id",
              "$select": ":*, *"}
    if since:
        params["$where"] = f":updated_at > '{since}'"
    return f"{settings.base_url.rstrip('/')}/resource/{settings.dataset_id}.json?{urllib.parse.urlencode(params)}"


class _Pull:
    """One pull's shared state: the deadline, bytes so far, and the error wording."""

    def __init__(self, settings: SodaSettings, log, sleep, clock):
        self.settings, self.log, self.sleep, self.clock = settings, log, sleep, clock
        self.deadline = clock() + settings.deadline_seconds
        self.total_bytes = 0

    def error(self, url: str, cause: str) -> SodaError:
        message = f"GET {url} failed: {cause}"
        if self.settings.app_token:  # belt and braces: a server could echo the token back
            message = message.replace(self.settings.app_token, "***")
        return SodaError(message)

    def left(self, url: str) -> float:
        left = self.deadline - self.clock()
        if left <= 0:
            raise self.error(url, f"the pull ran out of time (deadline_seconds={self.settings.deadline_seconds:g})")
        return left

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
                if self.clock() + delay >= self.deadline:
                    raise self.error(url, f"{exc.reason} {tries}, and no time is left to retry "
                                          f"(deadline_seconds={s.deadline_seconds:g})") from exc
                self.log(f"{exc.reason}; retrying in {delay:.1f}s (attempt {attempt + 2} of {s.max_retries + 1})")
                self.sleep(delay)
        raise AssertionError("unreachable")

    def _get_following_redirects(self, url: str) -> bytes:
        home = _origin(self.settings.base_url)
        target = url
        for _ in range(MAX_REDIRECTS + 1):
            location = self._get_once(url, target)
            if location is None:
                return self._body
            nxt = urllib.parse.urljoin(target, location)
            if _origin(nxt) != home:
                scheme, host, port = home
                raise self.error(url, f"the server redirected to {nxt}, which is not {scheme}://{host}:{port} "
                                      "(the configured base_url); refused so the app token and the rows stay with "
                                      "the configured portal (if it moved, set CRIME_PIPELINE_SODA_URL)")
            target = nxt
        raise self.error(url, f"more than {MAX_REDIRECTS} redirects")

    def _get_once(self, url: str, target: str) -> str | None:
        """Fetch `target` into self._body, or return a redirect's Location. `url` is for messages."""
        s = self.settings
        headers = {"Accept": "application/json"}
        if s.app_token:
            headers["X-App-Token"] = s.app_token
        request_deadline = min(self.clock() + s.timeout_seconds, self.deadline)
        try:
            timeout = min(s.timeout_seconds, self.left(url))
            with _OPENER.open(urllib.request.Request(target, headers=headers), timeout=timeout) as response:
                self._body = self._read_bounded(url, response, request_deadline)
            return None
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code in REDIRECT_STATUSES and exc.headers.get("Location"):
                return exc.headers["Location"]
            if exc.code in RETRY_STATUSES:
                raise _Transient(f"HTTP {exc.code} {exc.reason}") from exc
            raise self.error(url, f"HTTP {exc.code} {exc.reason} (not retried)") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ssl.SSLCertVerificationError):
                raise self.error(url, f"the server's TLS certificate was refused: {exc.reason}") from exc
            raise _Transient(f"could not connect: {exc.reason}") from exc
        except http.client.IncompleteRead as exc:
            raise _Transient(f"the connection dropped mid-response (IncompleteRead: got {len(exc.partial)} bytes, "
                             f"{exc.expected} more expected)") from exc
        except (TimeoutError, http.client.HTTPException, ssl.SSLError, ConnectionError, OSError) as exc:
            if isinstance(exc, TimeoutError):
                raise _Transient(f"timed out (timeout_seconds={s.timeout_seconds:g})") from exc
            raise _Transient(f"the connection failed ({type(exc).__name__}: {exc})") from exc
        except ValueError as exc:  # urllib refuses a malformed URL or unknown scheme
            raise self.error(url, f"not a usable URL ({exc})") from exc

    def _read_bounded(self, url: str, response, request_deadline: float) -> bytes:
        """Read in chunks, each socket wait cut to the time left, refusing past the byte limits."""
        s = self.settings
        limit = min(s.max_page_bytes, s.max_total_bytes - self.total_bytes)
        if limit == s.max_page_bytes:
            over = f"the {s.max_page_bytes:,}-byte limit for one page (max_page_bytes)"
        else:
            over = f"the {s.max_total_bytes:,}-byte limit for the whole pull (max_total_bytes)"
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise self.error(url, f"the server announced {int(declared):,} bytes, over {over}")
        sock = getattr(getattr(response.fp, "raw", None), "_sock", None)  # CPython's socket under the response
        chunks, size = [], 0
        while True:
            left = min(request_deadline, self.deadline) - self.clock()
            try:
                if left <= 0:
                    raise TimeoutError
                if sock is not None:
                    sock.settimeout(left)
                chunk = response.read1(CHUNK_BYTES)
            except TimeoutError as exc:
                if request_deadline >= self.deadline:
                    raise self.error(url, f"the pull ran out of time (deadline_seconds={s.deadline_seconds:g}) "
                                          f"after {size:,} bytes of the response") from exc
                raise _Transient(f"timed out (timeout_seconds={s.timeout_seconds:g}) after {size:,} bytes") from exc
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise self.error(url, f"the response is larger than {over}")
            chunks.append(chunk)
        if declared and declared.isdigit() and size < int(declared):  # read1 returns b"" on a drop, no error
            raise _Transient(f"the connection dropped mid-response after {size:,} of {int(declared):,} bytes")
        self.total_bytes += size
        return b"".join(chunks)


def fetch_updated_since(settings: SodaSettings, since: str | None, log: Callable[[str], None] = print,
                        sleep: Callable[[float], None] = time.sleep,
                        clock: Callable[[], float] = time.monotonic) -> list[dict]:
    """Every row updated after `since` (all rows when None), page by page, in update order."""
    pull = _Pull(settings, log, sleep, clock)
    rows: list[dict] = []
    seen: dict[str, int] = {}  # page digest -> offset, to catch a server that ignores $offset
    offset = 0
    for number in range(settings.max_pages):
        url = _page_url(settings, since, offset)
        body = pull.get(url)
        try:
            page = json.loads(body)
        except ValueError as exc:
            raise pull.error(url, f"page at offset {offset} is not JSON ({body[:80]!r}...)") from exc
        if not isinstance(page, list) or not all(isinstance(r, dict) for r in page):
            raise pull.error(url, f"page at offset {offset} is not a list of rows")
        log(f"fetched {len(page)} rows at offset {offset}")
        if len(page) < settings.page_size:
            return rows + page
        digest = hashlib.sha256(body).hexdigest()
        if digest in seen:
            raise pull.error(url, f"page at offset {offset} repeats the page at offset {seen[digest]} "
                                  "(the server ignores $offset); stopped paging")
        seen[digest] = offset
        rows.extend(page)
        offset += len(page)
    raise pull.error(_page_url(settings, since, offset),
                     f"every one of {settings.max_pages} pages was full (max_pages); stopped paging "
                     f"after {len(rows):,} rows")


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
    """The new watermark: the latest `:updated_at` seen (ISO strings compare in time order)."""
    stamps = [r[":updated_at"] for r in rows if r.get(":updated_at")]
    return max([*stamps, *([previous] if previous else [])], default=None)
