"""Atomic file writes: write a temporary sibling, fsync, then rename over the target.

A crash mid-write leaves the previous good file in place, never half a file. Temporary names
carry the writer's pid, so `remove_stale_temp_files` can clear what a killed writer left behind
without touching a live writer's file.

On an object store (an s3:// lake, storage.py) the same functions write the bytes under a new
version key and publish by a pointer PUT; `publish` and `reject` move pointers, not data.

A write that fails (disk full, read-only file system, ...) raises `WriteError`, an OSError that
names the file: `could not write <path>: <the OS's reason>`. A published file gets the mode `open()`
would give it (0o666 less the umask: 0644 under the usual umask 022), so reports can be served.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from crime_pipeline.lib.lake import storage
from crime_pipeline.lib.lake.faults import fault_point

_TEMP_NAME = re.compile(r"^\..+\.pid(\d+)\.[^.]+\.tmp$")
# Errors of the code filling a temporary file that are about writing it (others, e.g. a missing
# input read inside the block, are about another file and pass through unchanged).
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO, errno.EACCES, errno.EPERM}


class WriteError(OSError):
    """A lake file could not be written; the message names it (`could not write <path>: <reason>`)."""

    def __str__(self) -> str:
        return str(self.strerror)


@contextlib.contextmanager
def _naming(target, filling: Path | None = None) -> Iterator[None]:
    """Re-raise an OSError as a WriteError naming `target`; while `filling` (the temporary file) is
    being written by the caller, only errors about writing it."""
    try:
        yield
    except WriteError:
        raise
    except OSError as exc:
        if filling is not None and exc.errno not in _WRITE_ERRNOS and exc.filename != str(filling):
            raise
        raise WriteError(exc.errno, f"could not write {target}: {exc.strerror or exc}") from exc


def _new_temp(target: Path) -> Path:
    """An empty temporary file beside `target`, created as `open()` would (mode 0o666 less the umask;
    mkstemp's 0600 would make every published file private)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = target.with_name(f".{target.name}.pid{os.getpid()}.{secrets.token_hex(6)}.tmp")
        try:
            os.close(os.open(tmp, flags, 0o666))
            return tmp
        except FileExistsError:
            continue


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `target`; rename it onto `target` if the block succeeds.
    (On an object store: a local temporary file, uploaded as a new version, then the pointer.)"""
    target = storage.lake_path(target)
    if storage.is_remote(target):
        with _remote_atomic_path(target) as tmp:
            yield tmp
        return
    with _naming(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp_path = _new_temp(target)
    try:
        with _naming(target, filling=tmp_path):
            yield tmp_path
        with _naming(target):
            with open(tmp_path, "rb") as fh:
                os.fsync(fh.fileno())
            fault_point(f"write:{target.name}")  # the crash tests stop here: temp file written, not renamed
            os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def _remote_atomic_path(target) -> Iterator[Path]:
    fd, tmp = tempfile.mkstemp(prefix=f"crime_pipeline.{target.name}.pid{os.getpid()}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        with _naming(target, filling=tmp_path):
            yield tmp_path
        with _naming(target):
            _publish_version(target, lambda: storage.upload_version(target, local_file=str(tmp_path)))
    finally:
        tmp_path.unlink(missing_ok=True)


def _publish_version(target, upload) -> None:
    version = upload()
    try:
        fault_point(f"write:{target.name}")  # the crash tests stop here: version uploaded, pointer not yet
        storage.put_pointer(target, version)
    except BaseException:
        with contextlib.suppress(Exception):
            target.fs.rm_file(version.path)
        raise


def write_bytes(target: str | os.PathLike, data: bytes) -> Path:
    target = storage.lake_path(target)
    if storage.is_remote(target):  # no temporary file: the bytes go straight into a new version
        with _naming(target):
            _publish_version(target, lambda: storage.upload_version(target, data=data))
        return target
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return target


def write_text(target: str | os.PathLike, text: str) -> Path:
    return write_bytes(target, text.encode("utf-8"))


def write_json(target: str | os.PathLike, obj: Any) -> Path:
    return write_text(target, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def staged_path(target: str | os.PathLike) -> Path:
    """Where a file is written before its checks run: beside the target, so publishing is a rename."""
    target = storage.lake_path(target)
    return target.with_name(f"{target.stem}.staged{target.suffix}")


def rejected_path(target: str | os.PathLike) -> Path:
    target = storage.lake_path(target)
    return target.with_name(f"{target.stem}.rejected{target.suffix}")


def publish(target: str | os.PathLike) -> Path:
    """Make the staged version of `target` the one readers see (an atomic rename; on an object
    store, one PUT of the target's pointer naming the staged version)."""
    target = storage.lake_path(target)
    with _naming(target):
        fault_point(f"publish:{target.name}")
        if storage.is_remote(target):
            storage.move_pointer(staged_path(target), target)
        else:
            os.replace(staged_path(target), target)
    return target


def reject(target: str | os.PathLike) -> Path:
    """Keep a staged version that failed its checks for inspection; readers keep the previous one."""
    target = storage.lake_path(target)
    if storage.is_remote(target):
        storage.move_pointer(staged_path(target), rejected_path(target))
    else:
        os.replace(staged_path(target), rejected_path(target))
    return rejected_path(target)


def pid_alive(pid: int) -> bool:
    """Whether a process of this machine with that pid still exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temp_files(
    root: str | os.PathLike, grace_seconds: float = storage.STALE_VERSION_SECONDS
) -> list[Path]:
    """Delete temporary files under `root` whose writing process is gone; return what was removed.
    On an object store: versions no pointer names, older than `grace_seconds` (storage.sweep_versions)."""
    root = storage.lake_path(root)
    if storage.is_remote(root):
        return storage.sweep_versions(root, grace_seconds)
    removed = []
    for path in Path(root).rglob(".*.tmp"):
        match = _TEMP_NAME.match(path.name)
        if match and path.is_file() and not pid_alive(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
