"""Where the lake's bytes live: a local folder, or an S3 bucket (or MinIO, or any S3-compatible server).

`lake_path(root)` turns the lake root into a path object: a `pathlib.Path` for a local folder, a
universal_pathlib `UPath` for `s3://bucket/prefix` (endpoint and credentials from the standard AWS
environment variables, plus `CRIME_PIPELINE_S3_ENDPOINT` for an S3-compatible server). Every read
and write of a lake file goes through the functions here (and atomic.py), which behave exactly
as before on local paths.

On S3 a rename is a copy and a delete, so it cannot publish atomically. Instead every write puts
the bytes under a new, never-reused key, `<folder>/.versions/<name>/<time>-<random><suffix>`, and
then publishes by writing a small pointer object at the file's own key (one PUT, atomic) naming
that version. Readers follow the pointer. A crash between the two leaves the old pointer, so the
previous version is still served; the orphaned version is removed later by `sweep_versions`.
Publishing a staged file copies its pointer (no data moves). A plain object at a key (a CSV
uploaded into raw/incoming by hand) is read as it is.

Small JSON documents several writers update (the ingestion ledger) are kept as plain objects and
updated by a conditional PUT (If-Match on the ETag read, If-None-Match: * when new), retried when
another writer got there first, so no update is ever lost without a lock.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePath
from typing import Any, BinaryIO

ENDPOINT_ENV = "CRIME_PIPELINE_S3_ENDPOINT"
VERSIONS = ".versions"
POINTER_MAX_BYTES = 4096
_POINTER_KEY = "crime_pipeline_pointer"
_POINTER_MAGIC = b'{"' + _POINTER_KEY.encode() + b'": 1,'
_VERSION_ID = re.compile(r"^\d{8}T\d{12}Z-[0-9a-f]{12}(\.[A-Za-z0-9]+)?$")
_STAGED_OR_REJECTED = re.compile(r"^(?P<stem>.+)\.(?:staged|rejected)(?P<suffix>\.[^.]*)?$")
STALE_VERSION_SECONDS = 600  # an unreferenced version younger than this may belong to a live writer


class LakeError(RuntimeError):
    """The lake root is not usable (a bad URL, an unreachable endpoint, a missing bucket)."""


def is_remote(path: Any) -> bool:
    return getattr(path, "protocol", "") not in ("", "file", "local")


def _options(protocol: str) -> dict:
    if protocol not in ("s3", "s3a"):
        raise ValueError(f"unsupported scheme {protocol}://; the lake is a local folder or an s3:// URL")
    endpoint = os.environ.get(ENDPOINT_ENV)
    return {
        # Bounded retries and timeouts: an unreachable endpoint fails in seconds, not minutes.
        "config_kwargs": {
            "connect_timeout": 5,
            "read_timeout": 120,
            "retries": {"max_attempts": 3, "mode": "standard"},
        },
        "use_listings_cache": False,  # other processes (the sensor, other runs) change the listing
        **({"client_kwargs": {"endpoint_url": endpoint}} if endpoint else {}),
    }


def lake_path(root: str | os.PathLike) -> Path:
    """The lake root (or any lake file) as a path: `Path` locally, `UPath` for an s3:// URL."""
    if is_remote(root) or isinstance(root, PurePath):
        return root  # type: ignore[return-value]
    text = os.fspath(root)
    if "://" not in text:
        return Path(text)
    protocol = text.split("://", 1)[0].lower()
    if protocol == "file":
        return Path(text[len("file://") :])
    try:
        from upath import UPath

        path = UPath(text, **_options(protocol))
    except (ValueError, ImportError) as exc:
        hint = " (install the s3 extra: pip install 'crime_pipeline[s3]')" if isinstance(exc, ImportError) else ""
        raise LakeError(f"the lake URL {text} is not usable: {exc}{hint}") from exc
    if not path.path.strip("/"):
        raise LakeError(f"the lake URL {text} names no bucket; use s3://bucket or s3://bucket/prefix")
    return path


_checked: set[str] = set()


def check_reachable(root: Path) -> None:
    """Fail in one sentence naming the URL when the bucket cannot be used (checked once per process)."""
    endpoint = os.environ.get(ENDPOINT_ENV) or os.environ.get("AWS_ENDPOINT_URL") or "the default AWS endpoint"
    if f"{root} {endpoint}" in _checked:
        return
    bucket = root.path.strip("/").split("/", 1)[0]
    try:
        root.fs.call_s3("head_bucket", Bucket=bucket)
    except FileNotFoundError as exc:
        raise LakeError(f"the lake at {root} cannot be used: bucket {bucket!r} does not exist at {endpoint}") from exc
    except Exception as exc:  # connection refused, DNS, credentials, permissions: all one sentence
        cause = " ".join(str(exc).split()) or type(exc).__name__
        raise LakeError(f"the lake at {root} cannot be reached through {endpoint}: {cause}") from exc
    _checked.add(f"{root} {endpoint}")


def relative(path: Path, root: Path) -> str:
    """`path` relative to the lake root, as a POSIX string."""
    if is_remote(root):
        base, full = str(root).rstrip("/") + "/", str(path)
        if not full.startswith(base):
            raise ValueError(f"{path} is not inside the lake {root}")
        return full[len(base) :]
    return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()


# -- pointers and versions (object stores only) ------------------------------------------------


def family(name: str) -> str:
    """The published name a staged or rejected file belongs to (`x.staged.parquet` -> `x.parquet`)."""
    match = _STAGED_OR_REJECTED.match(name)
    return f"{match['stem']}{match['suffix'] or ''}" if match else name


def _siblings(path) -> list:
    base = path.with_name(family(path.name))
    stem, suffix = base.stem, base.suffix
    return [base, base.with_name(f"{stem}.staged{suffix}"), base.with_name(f"{stem}.rejected{suffix}")]


def new_version(target) -> Any:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    suffix = target.suffix if re.fullmatch(r"\.[A-Za-z0-9]+", target.suffix) else ""
    return target.parent / VERSIONS / family(target.name) / f"{stamp}-{uuid.uuid4().hex[:12]}{suffix}"


def pointer_bytes(target, version) -> bytes:
    return json.dumps({_POINTER_KEY: 1, "version": f"{VERSIONS}/{family(target.name)}/{version.name}"}).encode()


def _pointed(path, data: bytes):
    """The version a pointer object names, or None when `data` is not a pointer (a plain object)."""
    if len(data) > POINTER_MAX_BYTES or not data.startswith(_POINTER_MAGIC):
        return None
    version = json.loads(data)["version"]
    head, _, version_id = version.rpartition("/")
    if head != f"{VERSIONS}/{family(path.name)}" or not _VERSION_ID.match(version_id):
        raise LakeError(f"{path} points to {version!r}, which is not one of its own versions; refusing to follow it")
    return path.parent / VERSIONS / family(path.name) / version_id


def put_pointer(target, version) -> None:
    target.fs.pipe_file(target.path, pointer_bytes(target, version))


def upload_version(target, local_file: str | None = None, data: bytes | None = None):
    """Put new bytes under a fresh version key of `target` (not yet published); return that key."""
    version = new_version(target)
    if local_file is not None:
        target.fs.put_file(local_file, version.path)
    else:
        target.fs.pipe_file(version.path, data)
    return version


def _resolve(path):
    """(key to read, bytes already read or None) for a remote lake file, following its pointer."""
    info = path.fs.info(path.path)
    if info.get("type") == "directory":
        raise IsADirectoryError(f"{path} is a folder, not a file")
    if info["size"] > POINTER_MAX_BYTES:
        return path, None
    data = path.fs.cat_file(path.path)
    version = _pointed(path, data)
    return (version, None) if version is not None else (path, data)


def follows_own_pointer(path) -> bool:
    """False for an object shaped like a pointer that names anything but one of its own versions."""
    try:
        _resolve(path)
    except LakeError:
        return False
    return True


def _with_retry(path, read: Callable):
    try:
        return read(*_resolve(path))
    except FileNotFoundError:  # the version was swept between reading the pointer and the data
        return read(*_resolve(path))


# -- the operations every lake access goes through ----------------------------------------------


def read_bytes(path) -> bytes:
    if not is_remote(path):
        return Path(path).read_bytes()
    return _with_retry(path, lambda key, data: data if data is not None else key.fs.cat_file(key.path))


def read_bytes_at_most(path, limit: int) -> bytes | None:
    """The file's bytes, or None when it holds more than `limit`: a remote object's size is asked
    first (HEAD), so an oversized file is never downloaded, and a local one is read no further."""
    if not is_remote(path):
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    else:

        def read(key, inline):
            if inline is not None:
                return inline
            return None if key.fs.size(key.path) > limit else key.fs.cat_file(key.path)

        data = _with_retry(path, read)
    return None if data is None or len(data) > limit else data


def open_read(path) -> BinaryIO:
    """A binary file object (seekable) over the current version of a lake file."""
    if not is_remote(path):
        return open(path, "rb")
    return _with_retry(path, lambda key, data: io.BytesIO(data) if data is not None else key.fs.open(key.path, "rb"))


@contextlib.contextmanager
def local_copy(path) -> Iterator[Path]:
    """A local file with the lake file's bytes, for readers that stream from disk (pyarrow's CSV
    reader): the file itself when local, else a temporary download, copied in blocks."""
    if not is_remote(path):
        yield Path(path)
        return
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / path.name
        with open_read(path) as source, open(local, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
        yield local


def content_hash(*paths) -> str:
    """A short SHA-256 of the files' bytes, read in blocks: the data version of what an asset
    published, and the name of the exact data a downstream artifact was built from."""
    digest = hashlib.sha256()
    for path in paths:
        with open_read(path) as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()[:16]


def exists(path) -> bool:
    return path.fs.exists(path.path) if is_remote(path) else Path(path).exists()


def is_file(path) -> bool:
    return path.fs.isfile(path.path) if is_remote(path) else Path(path).is_file()


def listdir(folder) -> list:
    """The entries of a folder, sorted by name; an object store's version area is not listed."""
    if not is_remote(folder):
        return sorted(Path(folder).iterdir()) if Path(folder).is_dir() else []
    try:
        names = folder.fs.ls(folder.path, detail=False)
    except FileNotFoundError:
        return []
    entries = {name.rstrip("/").rsplit("/", 1)[-1] for name in names} - {VERSIONS, ""}
    return [folder / name for name in sorted(entries)]


def glob(folder, pattern: str) -> list:
    return [p for p in listdir(folder) if fnmatch.fnmatchcase(p.name, pattern)]


def remove(path) -> None:
    """Unpublish a file (its version goes with the next sweep)."""
    if is_remote(path):
        path.fs.rm_file(path.path)
    else:
        Path(path).unlink(missing_ok=True)


def fingerprint(path) -> dict:
    """What changes when a file changes, for the sensor's stable-size wait."""
    if is_remote(path):
        info = path.fs.info(path.path)
        return {"size": int(info["size"]), "etag": str(info.get("ETag", ""))}
    stat = Path(path).stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def move_pointer(source, target) -> None:
    """Publish `source`'s current version at `target` (one PUT), then drop `source`'s pointer."""
    data = source.fs.cat_file(source.path)
    version = _pointed(source, data)
    if version is None:  # written by another tool as a plain object: make it a version first
        version = upload_version(target, data=data)
    put_pointer(target, version)
    source.fs.rm_file(source.path)


def sweep_versions(root, grace_seconds: float = STALE_VERSION_SECONDS) -> list:
    """Delete versions no pointer names (left by a crash before publication, or superseded) once
    older than `grace_seconds`; return what was removed. One listing; pointers are read only for
    folders holding more versions than one, or versions without any pointer."""
    try:
        objects = root.fs.find(root.path, detail=True)
    except FileNotFoundError:
        return []
    marker = f"/{VERSIONS}/"
    keys = set(objects)
    groups: dict[str, list[str]] = {}
    for key in objects:
        if marker in key:
            groups.setdefault(key.rsplit("/", 1)[0], []).append(key)
    cutoff = datetime.now(UTC) - timedelta(seconds=grace_seconds)
    removed = []
    for group, versions in groups.items():
        parent, name = group.split(marker, 1)
        pointers = [p for p in _siblings(_under(root, parent, name)) if p.path in keys]
        if len(versions) == 1 and pointers:
            continue
        named = set()
        for pointer in pointers:
            with contextlib.suppress(FileNotFoundError, LakeError):
                version = _pointed(pointer, root.fs.cat_file(pointer.path))
                if version is not None:
                    named.add(version.path)
        for key in versions:
            modified = objects[key].get("LastModified")
            if key not in named and modified is not None and modified.astimezone(UTC) <= cutoff:
                root.fs.rm_file(key)
                removed.append(_under(root, *key.rsplit("/", 1)))
    return removed


def _under(root, parent_key: str, name: str):
    """The lake path of object key `parent_key/name`, keeping the root's storage options."""
    base = root.path.rstrip("/")
    relative_parent = parent_key[len(base) :].strip("/")
    return (root / relative_parent / name) if relative_parent else root / name
