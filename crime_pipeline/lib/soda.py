"""A small client for Socrata (SODA) open-data endpoints: paging, an update-time filter, retries.

Buffalo's incidents are dataset `d6g9-xbgu`. Rows updated since a watermark are asked for with
`$where=:updated_at > '<watermark>'`, ordered by `:updated_at` and paged with `$limit`/`$offset`.
Transient failures (HTTP 429 and 5xx, dropped connections) are retried with exponential backoff; a
page that is not a JSON list of objects is an error that names the page.
"""

from __future__ import annotations

import csv
import io
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Callable

RETRY_STATUSES = {429, 500, 502, 503, 504}


class SodaError(RuntimeError):
    """The open-data endpoint failed for good or answered something that is not a SODA page."""


@dataclass(frozen=True)
class SodaSettings:
    base_url: str
    dataset_id: str
    app_token: str | None = None
    page_size: int = 50_000
    max_retries: int = 4
    backoff_seconds: float = 1.0
    timeout_seconds: float = 60.0


def _page_url(settings: SodaSettings, since: str | None, offset: int) -> str:
    params = {"$limit": str(settings.page_size), "$offset": str(offset), "$order": ":updated_at, :id",
              "$select": ":*, *"}
    if since:
        params["$where"] = f":updated_at > '{since}'"
    return f"{settings.base_url.rstrip('/')}/resource/{settings.dataset_id}.json?{urllib.parse.urlencode(params)}"


def _get(url: str, settings: SodaSettings, log: Callable[[str], None], sleep: Callable[[float], None]) -> bytes:
    headers = {"Accept": "application/json"}
    if settings.app_token:
        headers["X-App-Token"] = settings.app_token
    for attempt in range(settings.max_retries + 1):
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=settings.timeout_seconds) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            if exc.code not in RETRY_STATUSES or attempt == settings.max_retries:
                raise SodaError(f"GET {url} failed: HTTP {exc.code} {exc.reason}") from exc
            reason = f"HTTP {exc.code}"
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            if attempt == settings.max_retries:
                raise SodaError(f"GET {url} failed after {attempt + 1} attempts: {exc}") from exc
            reason = str(exc)
        delay = settings.backoff_seconds * 2**attempt
        log(f"{reason}; retrying in {delay:.1f}s (attempt {attempt + 2} of {settings.max_retries + 1})")
        sleep(delay)
    raise AssertionError("unreachable")


def fetch_updated_since(settings: SodaSettings, since: str | None, log: Callable[[str], None] = print,
                        sleep: Callable[[float], None] = time.sleep) -> list[dict]:
    """Every row updated after `since` (all rows when None), page by page, in update order."""
    rows: list[dict] = []
    offset = 0
    while True:
        url = _page_url(settings, since, offset)
        body = _get(url, settings, log, sleep)
        try:
            page = json.loads(body)
        except ValueError as exc:
            raise SodaError(f"page at offset {offset} is not JSON ({body[:80]!r}...): {url}") from exc
        if not isinstance(page, list) or not all(isinstance(r, dict) for r in page):
            raise SodaError(f"page at offset {offset} is not a list of rows: {url}")
        rows.extend(page)
        log(f"fetched {len(page)} rows at offset {offset}")
        if len(page) < settings.page_size:
            return rows
        offset += len(page)


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
