"""Atomic file writes: write a temporary sibling, fsync, then rename over the target.

A crash mid-write leaves the previous good file in place, never half a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `target`; rename it onto `target` if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(target: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text(target: str | os.PathLike, text: str) -> Path:
    return write_bytes(target, text.encode("utf-8"))


def write_json(target: str | os.PathLike, obj: Any) -> Path:
    return write_text(target, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def write_parquet(target: str | os.PathLike, frame: pd.DataFrame) -> Path:
    """Write a DataFrame as Parquet with page checksums, atomically."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp, write_page_checksum=True, compression="zstd")
    return Path(target)


def read_parquet(source: str | os.PathLike) -> pd.DataFrame:
    """Read Parquet verifying page checksums, so a flipped byte fails loudly."""
    return pq.read_table(source, page_checksum_verification=True).to_pandas()
