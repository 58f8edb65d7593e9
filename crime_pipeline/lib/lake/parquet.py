"""Parquet in the lake: written atomically with page checksums, read back verifying them.

A flipped byte fails loudly instead of reading back silently; large tables are written and read
batch by batch (one row group per batch), so memory stays bounded whatever the table's size.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from crime_pipeline.lib.lake import storage
from crime_pipeline.lib.lake.atomic import atomic_path


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


def read_parquet(
    source: str | os.PathLike, columns: list[str] | None = None, filters: list | None = None
) -> pd.DataFrame:
    """Read Parquet verifying page checksums, so a flipped byte fails loudly."""
    return read_table(source, columns=columns, filters=filters).to_pandas()


def parquet_metadata(source: str | os.PathLike) -> pq.FileMetaData:
    """A Parquet file's footer (row count, schema) without reading its data."""
    with storage.open_read(storage.lake_path(source)) as fh:
        return pq.ParquetFile(fh).metadata


def iter_parquet(
    source: str | os.PathLike, columns: list[str] | None = None, batch_rows: int = 250_000
) -> Iterator[pa.Table]:
    """A Parquet file as tables of at most `batch_rows` rows, checksums verified (bounded memory)."""
    with (
        storage.open_read(storage.lake_path(source)) as fh,
        pq.ParquetFile(fh, page_checksum_verification=True) as file,
    ):
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
