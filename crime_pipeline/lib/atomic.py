"""Atomic file writes: write a temporary sibling, fsync, then rename over the target.

A crash mid-write leaves the previous good file in place, never half a file. Temporary names
carry the writer's pid, so `remove_stale_temp_files` can clear what a killed writer left behind
without touching a live writer's file.

On an object store (an s3:// lake, lib/storage.py) the same functions write the bytes under a new
version key and publish by a pointer PUT; `publish` and `reject` move pointers, not data.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from crime_pipeline.lib import storage
from crime_pipeline.lib.faults import fault_point

_TEMP_NAME = re.compile(r"^\..+\.pid(\d+)\.[^.]+\.tmp$")


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `target`; rename it onto `target` if the block succeeds.
    (On an object store: a local temporary file, uploaded as a new version, then the pointer.)"""
    target = storage.lake_path(target)
    if storage.is_remote(target):
        with _remote_atomic_path(target) as tmp:
            yield tmp
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.pid{os.getpid()}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
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
        yield tmp_path
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
        _publish_version(target, lambda: storage.upload_version(target, data=data))
        return target
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return target


def write_text(target: str | os.PathLike, text: str) -> Path:
    return write_bytes(target, text.encode("utf-8"))


def write_json(target: str | os.PathLike, obj: Any) -> Path:
    return write_text(target, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def write_parquet(target: str | os.PathLike, frame: pd.DataFrame) -> Path:
    """Write a DataFrame as Parquet with page checksums, atomically."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp, write_page_checksum=True, compression="zstd")
    return storage.lake_path(target)


def read_table(source: str | os.PathLike, columns: list[str] | None = None, filters: list | None = None) -> pa.Table:
    """Read Parquet as an Arrow table verifying page checksums, so a flipped byte fails loudly."""
    source = storage.lake_path(source)
    if not storage.is_remote(source):
        return pq.read_table(source, columns=columns, filters=filters, page_checksum_verification=True)
    with storage.open_read(source) as fh:
        return pq.read_table(fh, columns=columns, filters=filters, page_checksum_verification=True)


class ParquetBatches:
    """Appends tables (or DataFrames) to one Parquet file; the first fixes the schema (an all-null
    column is typed as text), later ones are cast to it. See `parquet_batch_writer`."""

    def __init__(self, path: Path):
        self.path, self.writer, self.rows = path, None, 0

    def write(self, data: pa.Table | pd.DataFrame) -> None:
        table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
        if self.writer is None:
            fields = [pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in table.schema]
            self.schema = pa.schema(fields, metadata=table.schema.metadata)
            self.writer = pq.ParquetWriter(self.path, self.schema, write_page_checksum=True, compression="zstd")
        if not table.schema.equals(self.schema, check_metadata=False):
            table = table.select(self.schema.names).cast(self.schema)
        self.writer.write_table(table)
        self.rows += table.num_rows


@contextlib.contextmanager
def parquet_batch_writer(target: str | os.PathLike) -> Iterator[ParquetBatches]:
    """Write a Parquet file batch by batch (one row group each), atomically: readers see the previous
    file until the block ends without error; at least one (possibly empty) batch must be written."""
    with atomic_path(target) as tmp:
        sink = ParquetBatches(tmp)
        try:
            yield sink
            if sink.writer is None:
                raise ValueError(f"no batch was written to {Path(target).name}")
        finally:
            if sink.writer is not None:
                sink.writer.close()


def write_parquet_batches(target: str | os.PathLike, batches) -> Path:
    """Write an iterable of tables / DataFrames as one Parquet file, atomically, in bounded memory."""
    with parquet_batch_writer(target) as sink:
        for batch in batches:
            sink.write(batch)
    return storage.lake_path(target)


def read_parquet(source: str | os.PathLike, columns: list[str] | None = None, filters: list | None = None) -> pd.DataFrame:
    """Read Parquet verifying page checksums, so a flipped byte fails loudly."""
    return read_table(source, columns=columns, filters=filters).to_pandas()


def parquet_metadata(source: str | os.PathLike) -> pq.FileMetaData:
    """A Parquet file's footer (row count, schema) without reading its data."""
    with storage.open_read(storage.lake_path(source)) as fh:
        return pq.ParquetFile(fh).metadata


def iter_parquet(source: str | os.PathLike, columns: list[str] | None = None,
                 batch_rows: int = 250_000) -> Iterator[pa.Table]:
    """A Parquet file as tables of at most `batch_rows` rows, checksums verified (bounded memory)."""
    with storage.open_read(storage.lake_path(source)) as fh, pq.ParquetFile(fh, page_checksum_verification=True) as file:
        empty = True
        for batch in file.iter_batches(batch_size=batch_rows, columns=columns):
            empty = False
            yield pa.Table.from_batches([batch])
        if empty:  # a table with no rows still has its columns
            schema = file.schema_arrow
            yield schema.empty_table() if columns is None else schema.empty_table().select(columns)


def parquet_rows(source: str | os.PathLike) -> int:
    """Rows in a Parquet file, from its footer."""
    return parquet_metadata(source).num_rows


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


def remove_stale_temp_files(root: str | os.PathLike, grace_seconds: float = storage.STALE_VERSION_SECONDS) -> list[Path]:
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
