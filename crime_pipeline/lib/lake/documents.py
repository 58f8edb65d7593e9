"""Small JSON documents in the lake: read with a default, and updated by several writers at once.

Documents several writers update (the ingestion ledger) are kept as plain objects and updated by a
read-modify-write that never loses a concurrent writer's update: an fcntl lock on a local lake, a
conditional PUT (If-Match on the ETag read, If-None-Match: * when new) retried on conflict on S3.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from crime_pipeline.lib.lake import storage
from crime_pipeline.lib.lake.atomic import write_bytes
from crime_pipeline.lib.lake.errors import StageError

UPDATE_ATTEMPTS = 60
MAX_DOCUMENT_BYTES = 256 * 2**20  # the ledger grows by about 1 KB a file


def _parse(path, read: Callable[[], bytes]) -> dict:
    """A lake document's JSON, its size checked before parsing; StageError in one sentence otherwise."""
    size = None if storage.is_remote(path) else Path(path).stat().st_size
    raw = read() if size is None or size <= MAX_DOCUMENT_BYTES else None
    problem = None
    if raw is None or len(raw) > MAX_DOCUMENT_BYTES:  # `read` returns None or reads past the limit
        held = "" if size is None else f"{size:,} bytes, "
        problem = f"is {held}over the {MAX_DOCUMENT_BYTES:,}-byte limit for a lake document"
    else:
        try:
            return json.loads(raw)
        except RecursionError:
            problem = "nests arrays or objects too deeply to be a lake document"
        except ValueError as exc:
            detail = f"{exc.msg} at line {exc.lineno}, column {exc.colno}" if hasattr(exc, "msg") else str(exc)
            problem = f"is not valid JSON ({detail})"
    raise StageError(f"{path} {problem}; restore it from a backup or move it aside")


def read_json(path: Path, default: dict) -> dict:
    if not storage.exists(path):
        return default
    return _parse(path, lambda: storage.read_bytes_at_most(path, MAX_DOCUMENT_BYTES))


# -- read-modify-write of a small JSON document by several writers -------------------------------


def _precondition_failed(exc: BaseException) -> bool:
    for error in (exc, exc.__cause__, exc.__context__):
        response = getattr(error, "response", None)
        code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
        if code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
            return True
    return isinstance(exc, FileExistsError)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise read-modify-write of a small local JSON file across processes of one machine."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(path.suffix + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _dumps(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n").encode("utf-8")


def update_json(path, update: Callable[[dict], dict], default: dict) -> dict:
    """Apply `update` (a pure function of the current document) and store the result, never losing a
    concurrent writer's update: an fcntl lock locally, a conditional PUT retried on conflict on S3."""
    if not storage.is_remote(path):
        with _locked(path):
            current = _parse(path, path.read_bytes) if path.exists() else copy.deepcopy(default)
            new = update(current)
            write_bytes(path, _dumps(new))
            return new
    from s3fs.utils import FileExpired

    fs, key = path.fs, path.path
    for attempt in range(UPDATE_ATTEMPTS):
        try:
            with fs.open(key, "rb") as fh:  # the ETag and the bytes of one version (s3fs reads If-Match)
                raw, etag = fh.read(MAX_DOCUMENT_BYTES + 1), fh.details["ETag"]
        except FileNotFoundError:
            raw, etag = None, None
        except FileExpired:
            continue  # changed between the HEAD and the GET: read again
        if raw is not None and (version := storage._pointed(path, raw)) is not None:
            raw = fs.cat_file(version.path)
        new = update(_parse(path, lambda data=raw: data) if raw is not None else copy.deepcopy(default))
        try:
            if etag is None:
                fs.pipe_file(key, _dumps(new), mode="create")
            else:
                fs.pipe_file(key, _dumps(new), IfMatch=etag)
            return new
        except OSError as exc:
            if not _precondition_failed(exc):
                raise
        time.sleep(random.uniform(0, 0.02 * 2 ** min(attempt, 5)))  # another writer won: read it again
    raise storage.LakeError(f"{path} changed under {UPDATE_ATTEMPTS} attempts in a row to update it; try again")
