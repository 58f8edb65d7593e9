"""Declared reads: a stage reads a lake file only if the file's producer is itself or a dependency.

`DeclaredReads` looks up each file's producer in the catalog (catalog.py) and refuses a file no
declared input publishes, so a hidden data dependency fails loudly instead of hiding from the
lineage graph. Every read is recorded (`reads`); the Dagster layer shows them as the `lake/reads`
metadata entry, and the lineage test checks those against the asset graph.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd
import pyarrow as pa

from crime_pipeline.lib.lake import storage
from crime_pipeline.lib.lake.catalog import producers_of
from crime_pipeline.lib.lake.layout import LakeLayout
from crime_pipeline.lib.lake.parquet import iter_parquet, parquet_metadata, parquet_rows, read_parquet


class UndeclaredReadError(RuntimeError):
    """An asset tried to read a file that none of its declared inputs publishes."""


class DeclaredReads:
    """Reads of lake files on behalf of one asset step, checked against its declared inputs."""

    def __init__(self, layout: LakeLayout, step: str, allowed: set[str]):
        self.layout, self.step, self.allowed = layout, step, allowed
        self.reads: list[str] = []

    def path(self, path: Path) -> Path:
        """The path itself, once checked and recorded (for readers of their own, e.g. Parquet metadata)."""
        relative = storage.relative(path, self.layout.root)
        producers = producers_of(relative)
        if not producers & self.allowed:
            raise UndeclaredReadError(
                f"{self.step} reads {relative}, published by {', '.join(sorted(producers)) or 'no asset'}, "
                f"which is not among its declared inputs ({', '.join(sorted(self.allowed - {self.step}))})"
            )
        if relative not in self.reads:
            self.reads.append(relative)
        return path

    def exists(self, path: Path) -> bool:
        return storage.exists(self.path(path))

    def parquet(self, path: Path, columns: list[str] | None = None, filters: list | None = None) -> pd.DataFrame:
        return read_parquet(self.path(path), columns=columns, filters=filters)

    def parquet_batches(
        self, path: Path, columns: list[str] | None = None, batch_rows: int = 250_000
    ) -> Iterator[pa.Table]:
        """The table in batches of at most `batch_rows` rows (bounded memory), checksums verified."""
        return iter_parquet(self.path(path), columns, batch_rows)

    def parquet_rows_where(self, path: Path, keep, columns: list[str] | None = None) -> pa.Table:
        """The rows whose flag in `keep` (a boolean array, one per row) is set, in file order, read
        batch by batch: only the kept rows of the wide columns are ever held."""
        tables, offset = [], 0
        for batch in self.parquet_batches(path, columns):
            tables.append(batch.filter(pa.array(keep[offset : offset + batch.num_rows])))
            offset += batch.num_rows
        if not tables:  # a table without rows
            schema = self.parquet_schema(path)
            return schema.empty_table().select(columns or schema.names)
        return pa.concat_tables(tables)

    def parquet_rows(self, path: Path) -> int:
        return parquet_rows(self.path(path))

    def parquet_schema(self, path: Path) -> pa.Schema:
        return parquet_metadata(self.path(path)).schema.to_arrow_schema()

    def parquet_metadata(self, path: Path):
        """The Parquet footer (row count, schema) without reading the data."""
        return parquet_metadata(self.path(path))

    def open(self, path: Path) -> BinaryIO:
        """A binary file object, for readers of their own (e.g. `pq.ParquetFile(reads.open(p))`);
        on an object store a plain path cannot be opened directly."""
        return storage.open_read(self.path(path))

    def json(self, path: Path, default: Any = None) -> Any:
        path = self.path(path)
        if default is not None and not storage.exists(path):
            return default
        return json.loads(storage.read_bytes(path))

    def bytes(self, path: Path) -> bytes:
        return storage.read_bytes(self.path(path))
