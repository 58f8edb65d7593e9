"""Reading one raw CSV export into a table of text columns, losing nothing.

Every value is read as text (typing is validation's job, so a bad value is reported, not
silently turned into a null). Rows with the wrong number of fields are not dropped: they come
back as `malformed` with their source line number and text. Line numbers are physical lines of
the file (1 = header), correct even when quoted values span several lines.

The file's first bytes are checked and its city chosen in csv_layout.py; where each record starts
is found by line_scan.py. Whatever the bytes, the only error is `UnreadableFileError`, naming the file.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from crime_pipeline.lib.cities.profiles import DEFAULT_CITY, CityProfile, profiles
from crime_pipeline.lib.ingest import limits
from crime_pipeline.lib.ingest.csv_layout import UnreadableFileError, inspect_csv, undecodable, unreadable
from crime_pipeline.lib.ingest.line_scan import (
    NotUtf8,
    NulByte,
    record_start_lines,
    record_start_lines_slow,
    unclosed_quote_line,
)
from crime_pipeline.lib.lake import storage

DEFAULT_BLOCK_BYTES = 1 << 26  # pyarrow parses this much text per batch (about 150,000 export rows)


@dataclass(frozen=True)
class RawRead:
    """What one CSV file held: every record, in file order, with its physical line number.

    `rows` has the canonical text columns, `source_line`, and `raw_record`: the record's text
    where it had the wrong number of fields (its other columns are then empty), else null.
    """

    rows: pd.DataFrame
    original_headers: list[str]
    city: str = DEFAULT_CITY  # the key of the city profile the file was read with (also the `city` column)

    @property
    def rows_read(self) -> int:
        return len(self.rows)

    @property
    def malformed(self) -> int:
        return int(self.rows["raw_record"].notna().sum())


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with storage.open_read(storage.lake_path(path)) as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class _LineMapMismatch(Exception):
    """The quote-parity line scan disagrees with pyarrow's records: rescan with the csv module."""


class RawCsv:
    """One CSV export read as record batches of text, in file order, losing nothing.

    Each batch (a pyarrow Table) has the canonical text columns, `source_line` (the physical line
    where the record starts) and `raw_record`: the record's text where it had the wrong number of
    fields (its other columns are then null), else null. Memory is one parsed block plus 8 bytes a
    record for the line map, whatever the file's size. Construction scans the file once (UTF-8,
    quotes, where records start); `batches()` parses it with pyarrow.
    """

    def __init__(
        self,
        path: str | Path,
        name: str | None = None,
        block_bytes: int = DEFAULT_BLOCK_BYTES,
        slow_line_map: bool = False,
        cities: dict[str, CityProfile] | None = None,
    ):
        cities = cities or profiles()  # a bad profile raises ProfileError naming its file, not this one
        try:
            self._scan(path, name, block_bytes, slow_line_map, cities)
        except UnreadableFileError:
            raise
        except Exception as exc:
            raise unreadable(name or Path(path).name, exc) from exc

    def _scan(self, path, name, block_bytes: int, slow_line_map: bool, cities: dict[str, CityProfile]) -> None:
        self.layout = inspect_csv(path, name, cities)
        self.block_bytes = block_bytes
        self.rows_read = self.malformed = 0
        name, path, skip = self.layout.name, self.layout.path, self.layout.skip
        try:
            with open(path, "rb") as fh:
                fh.seek(skip)
                scan = record_start_lines(fh, ord(self.layout.newline))
        except NulByte as exc:
            raise UnreadableFileError(
                f"{name}: binary content (a NUL byte) at byte offset {exc.offset} (line {exc.line}), "
                "not a CSV text file"
            ) from exc
        except NotUtf8 as exc:
            raise UnreadableFileError(undecodable(name, exc.offset, exc.line)) from exc
        self.starts, self.longest_record = scan.starts, scan.longest
        if scan.quotes % 2:  # an odd count is the cheap sign of a quote that may never close
            line = unclosed_quote_line(path, skip, self.layout.delimiter)
            if line:
                raise UnreadableFileError(
                    f"{name}: a quoted value opened in the record on line {line} is never closed, "
                    "so the rest of the file would read as one value"
                )
        if scan.longest > limits.MAX_RECORD_BYTES:
            raise UnreadableFileError(
                f"{name}: the record on line {scan.longest_line} is {scan.longest:,} bytes long, over the limit "
                f"of {limits.MAX_RECORD_BYTES:,} bytes for one record (a real export's are under 2 KB)"
            )
        if slow_line_map:
            self.starts = record_start_lines_slow(path, skip)

    @property
    def original_headers(self) -> list[str]:
        return self.layout.header

    def _empty(self, rows: int = 0) -> pa.Table:
        return pa.table(
            {
                **{c: pa.nulls(rows, pa.string()) for c in self.layout.columns},
                "source_line": pa.nulls(rows, pa.int64()),
                "raw_record": pa.nulls(rows, pa.string()),
            }
        )

    def batches(self) -> Iterator[pa.Table]:
        """The records in file order, one table per parsed block (at least one table, maybe empty).

        Raises _LineMapMismatch when the line scan and pyarrow disagree on the records (odd quoting),
        else only UnreadableFileError, naming the file.
        """
        city = pa.scalar(self.layout.city, pa.string())
        try:
            for table in self._batches():  # every row carries the city its file was read as
                yield table.add_column(0, "city", pa.repeat(city, table.num_rows))
        except (UnreadableFileError, _LineMapMismatch):
            raise
        except Exception as exc:  # weird input must never surface as a bare traceback naming no file
            raise unreadable(self.layout.name, exc) from exc

    def _batches(self) -> Iterator[pa.Table]:
        layout = self.layout
        self.rows_read = self.malformed = 0
        if len(self.starts) <= 1:  # a header and nothing else (pyarrow cannot skip a header with no line end)
            yield self._empty()
            return
        malformed: list[tuple[int, str]] = []

        def on_invalid(row: pacsv.InvalidRow) -> str:
            malformed.append((row.number, row.text))
            return "skip"

        # A Python file, not pa.OSFile: pyarrow's background readahead then holds fewer blocks ahead of
        # a slower consumer (pool peak 326 vs 613 MB on 1 million rows). It still grows with the file.
        source = open(layout.path, "rb")
        source.seek(layout.skip)
        try:
            reader = pacsv.open_csv(
                source,
                read_options=pacsv.ReadOptions(
                    use_threads=False,
                    column_names=layout.columns,
                    skip_rows=1,
                    # a block must hold a whole record (the longest is bounded by limits.MAX_RECORD_BYTES)
                    block_size=max(self.block_bytes, 2 * layout.header_bytes, 2 * self.longest_record + 2),
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=layout.delimiter, newlines_in_values=True, invalid_row_handler=on_invalid
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types={c: pa.string() for c in layout.columns},
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
            next_record, emitted = 2, 0  # pyarrow numbers records from 1 = the (skipped) header line
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                # Good records are the record numbers from next_record on that are not malformed.
                bad = np.fromiter((m[0] for m in malformed[emitted:]), dtype=np.int64)
                window = np.arange(next_record, next_record + batch.num_rows + len(bad))
                numbers = window[~np.isin(window, bad)][: batch.num_rows]
                last = int(numbers[-1]) if len(numbers) else next_record - 1
                ready = [m for m in malformed[emitted:] if m[0] <= last]
                emitted += len(ready)
                next_record = last + 1
                yield self._assemble(pa.Table.from_batches([batch]), numbers, ready)
            if emitted < len(malformed) or self.rows_read == 0:
                yield self._assemble(
                    self._empty().drop_columns(["source_line", "raw_record"]),
                    np.zeros(0, dtype=np.int64),
                    malformed[emitted:],
                )
        except pa.ArrowInvalid as exc:
            raise UnreadableFileError(f"{layout.name}: not a readable CSV file: {str(exc)[:300]}") from exc
        finally:
            source.close()
        if len(self.starts) != self.rows_read + 1:
            raise _LineMapMismatch()

    def _assemble(self, good: pa.Table, numbers: np.ndarray, bad: list[tuple[int, str]]) -> pa.Table:
        """Good records and the malformed ones among them, with their lines, sorted by line."""
        bad_numbers = np.fromiter((m[0] for m in bad), dtype=np.int64, count=len(bad))
        for n in (numbers, bad_numbers):
            if len(n) and (n.min() < 1 or n.max() > len(self.starts)):
                raise _LineMapMismatch()
        self.rows_read += good.num_rows + len(bad)
        self.malformed += len(bad)
        good = good.append_column("source_line", pa.array(self.starts[numbers - 1], pa.int64()))
        good = good.append_column("raw_record", pa.nulls(good.num_rows, pa.string()))
        if not bad:
            return good
        rows = self._empty(len(bad))
        rows = rows.set_column(
            rows.schema.get_field_index("source_line"),
            "source_line",
            pa.array(self.starts[bad_numbers - 1], pa.int64()),
        )
        rows = rows.set_column(
            rows.schema.get_field_index("raw_record"), "raw_record", pa.array([m[1] for m in bad], pa.string())
        )
        both = pa.concat_tables([good, rows])
        return both.take(pc.sort_indices(both, [("source_line", "ascending")]))


def stream_raw_csv(
    path: str | Path,
    consume,
    name: str | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    cities: dict[str, CityProfile] | None = None,
):
    """`consume(raw_csv)` over the file's RawCsv; if the fast line scan disagrees with pyarrow (odd
    quoting), once more with the csv module's line map. `consume` must be restartable (write atomically)."""
    name = name or Path(path).name
    try:
        return consume(RawCsv(path, name, block_bytes, cities=cities))
    except _LineMapMismatch:
        pass
    try:
        return consume(RawCsv(path, name, block_bytes, slow_line_map=True, cities=cities))
    except _LineMapMismatch:
        raise UnreadableFileError(f"{name}: could not delimit records consistently (unbalanced quotes?)") from None


def read_raw_csv(
    path: str | Path,
    data: bytes | None = None,
    cities: dict[str, CityProfile] | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> RawRead:
    """Read a CSV export whole as text with canonical headers; raise UnreadableFileError if impossible.

    `cities` are the profiles to choose from (default: every known one). Whatever the bytes, the
    only exception is UnreadableFileError, and its message names the file. For small files (tests,
    `predict`); the assets stream with `RawCsv`.
    """
    path = storage.lake_path(path)
    cities = cities or profiles()  # a bad profile raises ProfileError naming its file, not this one
    try:
        if data is None and not storage.is_remote(path):
            return _read_whole(Path(path), path.name, block_bytes, cities)
        with tempfile.TemporaryDirectory() as tmp:  # pyarrow streams from a local file
            copy = Path(tmp) / "data.csv"
            copy.write_bytes(storage.read_bytes(path) if data is None else data)
            return _read_whole(copy, path.name, block_bytes, cities)
    except UnreadableFileError:
        raise
    except Exception as exc:  # weird input must never surface as a bare traceback naming no file
        raise unreadable(path.name, exc) from exc


def _read_whole(path: Path, name: str, block_bytes: int, cities: dict[str, CityProfile]) -> RawRead:
    def consume(raw: RawCsv) -> RawRead:
        table = pa.concat_tables(list(raw.batches()))
        frame = table.to_pandas()
        frame["raw_record"] = frame["raw_record"].astype("string")
        return RawRead(rows=frame, original_headers=raw.original_headers, city=raw.layout.city)

    return stream_raw_csv(path, consume, name, block_bytes, cities)
