"""Reading one raw CSV export into a table of text columns, losing nothing.

Every value is read as text (typing is validation's job, so a bad value is reported, not
silently turned into a null). Rows with the wrong number of fields are not dropped: they come
back as `malformed` with their source line number and text. Line numbers are physical lines of
the file (1 = header), correct even when quoted values span several lines.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
import tempfile
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from crime_pipeline.lib.lake import storage
from crime_pipeline.lib.cities.profiles import DEFAULT_CITY, CityProfile, city_from_filename, profiles
from crime_pipeline.lib.cities.columns import canonical_names, missing_required, normalise_header

DELIMITERS = (",", ";", "\t", "|")


class UnreadableFileError(ValueError):
    """The file cannot be ingested at all; the message names the file and the problem."""


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


def _record_start_lines(stream: BinaryIO, newline: int = 10, block: int = 1 << 24) -> tuple[np.ndarray, int]:
    """Physical 1-based line number where each non-empty CSV record starts (quote-aware), and the
    number of quote characters in the file, read in blocks (memory: one block, plus 8 bytes a record).

    `newline` is the byte that ends a line: LF (also for CRLF), or CR in an old Mac file. A newline
    ends a record only outside quotes: an even number of quote chars precede it.
    """
    out: list[np.ndarray] = []
    quotes = newlines_before = offset = 0
    prev_end, next_line, last_byte = -1, 1, -1  # the last record boundary and the line after it
    decoder = codecs.getincrementaldecoder("utf-8")()
    while data := stream.read(block):
        buf = np.frombuffer(data, dtype=np.uint8)
        newlines = np.flatnonzero(buf == newline)
        _check_utf8(decoder, data, offset, lambda at: newlines_before + int(np.searchsorted(newlines, at)) + 1)
        quote_at = np.flatnonzero(buf == 34)
        local = newlines[((quotes + np.searchsorted(quote_at, newlines)) % 2) == 0]
        boundary = local + offset
        if len(local):
            _emit(out, buf, offset, boundary, local, newlines, prev_end, next_line, newlines_before, last_byte)
            prev_end = int(boundary[-1])
            next_line = newlines_before + int(np.searchsorted(newlines, local[-1], "right")) + 1
        quotes += len(quote_at)
        newlines_before += len(newlines)
        last_byte, offset = int(buf[-1]), offset + len(buf)
    _check_utf8(decoder, b"", offset, lambda at: newlines_before + 1, final=True)
    length = offset - (prev_end + 1)  # the last record, when the file does not end with a newline
    if length > 0 and not (length == 1 and last_byte == 13):
        out.append(np.array([next_line]))
    return (np.concatenate(out) if out else np.zeros(0, dtype=np.int64)).astype(np.int64), quotes


class _NotUtf8(Exception):
    def __init__(self, offset: int, line: int):
        super().__init__(offset, line)
        self.offset, self.line = offset, line


def _check_utf8(decoder, data: bytes, offset: int, line_of, final: bool = False) -> None:
    """Decode one block (discarding the text); raise _NotUtf8 with the byte offset and line of a bad byte."""
    pending = len(decoder.getstate()[0])
    try:
        decoder.decode(data, final=final)
    except UnicodeDecodeError as exc:
        at = offset - pending + exc.start
        raise _NotUtf8(at, line_of(max(at - offset, 0))) from exc


def _emit(out, buf, offset, boundary, local, newlines, prev_end, next_line, newlines_before, last_byte) -> None:
    """Append the start lines of the non-empty records that end at this block's `boundary` newlines."""
    starts = np.concatenate(([prev_end + 1], boundary[:-1] + 1))
    length = boundary - starts
    lines = np.concatenate(([next_line], newlines_before + np.searchsorted(newlines, local[:-1], "right") + 1))
    first_byte = np.where(starts >= offset, buf[np.clip(starts - offset, 0, len(buf) - 1)], last_byte)
    keep = (length > 0) & ~((length == 1) & (first_byte == 13))  # not the CR of an empty CRLF line
    out.append(lines[keep])


def _record_start_lines_slow(path: Path, skip: int) -> np.ndarray:
    """Fallback for odd quoting: the csv module's own notion of where each record starts."""
    lines, previous = array("q"), 0
    with open(path, "rb") as raw:
        raw.seek(skip)
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
        for record in reader:
            if record:
                lines.append(previous + 1)
            previous = reader.line_num
    return np.frombuffer(lines, dtype=np.int64) if len(lines) else np.zeros(0, dtype=np.int64)


def _unclosed_quote_line(path: Path, skip: int, delimiter: str) -> int | None:
    """The line where the record starts whose quoted value runs to the end of the file, if any."""
    previous = 0
    with open(path, "rb") as raw:
        raw.seek(skip)
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline=""), delimiter=delimiter, strict=True)
        try:
            for _ in reader:
                previous = reader.line_num
        except csv.Error as exc:
            return previous + 1 if "unexpected end of data" in str(exc) else None
    return None


# A header field worth echoing in an error: short, printable, no colon (a password file's line is
# colon-separated). Anything else is not shown: the first line of an arbitrary file may be secret.
_HEADER_FIELD = re.compile(r"[\w .()/#&%'-]{1,64}")


def _describe_first_line(fields: list[str], delimiter: str) -> str:
    named = [f for f in fields if f.strip()]
    count = f"its first line has {len(fields)} field(s) separated by {delimiter!r}"
    if len(named) < 2 or not all(_HEADER_FIELD.fullmatch(f) for f in named):
        return f"{count} and does not look like a CSV header, so it is not shown"
    shown = ", ".join(repr(h) for h in fields[:12]) + (" ..." if len(fields) > 12 else "")
    return f"{count}; header was: {shown}"


DEFAULT_BLOCK_BYTES = 1 << 26  # pyarrow parses this much text per batch (about 150,000 export rows)
_HEAD_BYTES = 1 << 20


@dataclass(frozen=True)
class CsvLayout:
    """What a file's first bytes say: where the text starts, its delimiter, newline and header."""

    name: str
    path: Path
    skip: int  # bytes of a UTF-8 byte-order mark
    delimiter: str
    newline: str
    columns: list[str]  # canonical names
    header: list[str]  # as written
    header_bytes: int  # the first line's length (pyarrow's first block must hold it)
    city: str = DEFAULT_CITY  # the key of the city profile the header matched


def choose_profile(name: str, header: list[str], known: dict[str, CityProfile]) -> tuple[CityProfile, list[str]]:
    """The city profile a file belongs to, and its canonical column names; UnreadableFileError if none fits.

    A `<city>__` file-name prefix naming a known city decides. Otherwise every profile whose
    required columns the header has is a candidate, and the one with most of its signature and
    alias spellings present wins; a tie needs the prefix. With no candidate, the error names the
    closest profile (fewest columns missing) and what it misses.
    """
    named = city_from_filename(name)
    if named in known:
        columns = canonical_names(header, known[named])
        missing = missing_required(columns, known[named])
        if missing:
            raise UnreadableFileError(f"{name}: named city {named!r} by its prefix but not an incident export of "
                                      f"that city: missing required column(s) {', '.join(missing)} ({known[named].source})")
        return known[named], columns
    norm = {normalise_header(h) for h in header}
    fits = []
    for key, profile in sorted(known.items(), key=lambda kv: (kv[0] != DEFAULT_CITY, kv[0])):
        columns = canonical_names(header, profile)
        spellings = {s for spelled in profile.header_aliases.values() for s in spelled}
        score = len(norm & (set(profile.signature) | spellings | set(profile.header_aliases)))
        fits.append((len(missing_required(columns, profile)), -score, key, columns))
    fits.sort(key=lambda f: f[:2])  # stable: the default city first among equals
    best = fits[0]
    if best[0] == 0 and len(fits) > 1 and fits[1][:2] == best[:2]:
        tied = [f[2] for f in fits if f[:2] == best[:2]]
        raise UnreadableFileError(f"{name}: the header fits the city profiles {', '.join(tied)} equally well; "
                                  f"name the city with a file-name prefix, e.g. {tied[-1]}{'__'}{name}")
    return known[best[2]], best[3]


def inspect_csv(path: str | Path, name: str | None = None, cities: dict[str, CityProfile] | None = None) -> CsvLayout:
    """Check the start of a file (encoding, binary, header, required columns of the city profile it
    matches, among `cities`, default every known one); UnreadableFileError if not a CSV export."""
    path = Path(path)
    name = name or path.name
    cities = cities or profiles()  # a bad profile raises ProfileError naming its file, not this one
    with open(path, "rb") as fh:
        head = fh.read(_HEAD_BYTES + 3)
    skip = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    head = head[skip:]
    whole = len(head) <= _HEAD_BYTES
    if not head or (whole and head.isspace()):
        raise UnreadableFileError(f"{name}: the file is empty")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnreadableFileError(f"{name}: UTF-16 encoded; the file must be UTF-8 encoded")
    if b"\x00" in head[:65536]:
        raise UnreadableFileError(f"{name}: binary content (NUL bytes), not a CSV text file")
    # Lines end with LF (or CRLF), or in an old Mac file with CR alone: the first line end decides.
    cr, lf = head.find(b"\r"), head.find(b"\n")
    newline = "\r" if cr >= 0 and (lf < 0 or cr < lf - 1) else "\n"
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=whole)
    except UnicodeDecodeError as exc:
        line = head[: exc.start].count(newline.encode()) + 1
        raise UnreadableFileError(_undecodable(name, exc.start, line)) from exc
    first_newline = text.find(newline)
    first_line = text[: first_newline if first_newline >= 0 else len(text)].rstrip("\r")
    delimiter = max(DELIMITERS, key=first_line.count)  # exports saved by spreadsheets use ; or tabs
    header_line = next(csv.reader([first_line], delimiter=delimiter), [])
    profile, columns = choose_profile(name, header_line, cities)
    missing = missing_required(columns, profile)
    if missing:
        raise UnreadableFileError(
            f"{name}: not an incident export: missing required column(s) {', '.join(missing)}; "
            + _describe_first_line(header_line, delimiter)
            # The default city is the implicit yardstick; any other closest profile is named.
            + (f"; the closest city profile is {profile.key} ({profile.source})" if profile.key != DEFAULT_CITY else "")
        )
    return CsvLayout(name, path, skip, delimiter, newline, columns, header_line, len(first_line.encode()) + 2,
                     profile.key)


def _undecodable(name: str, offset: int, line: int) -> str:
    return (f"{name}: undecodable bytes at byte offset {offset} (line {line}); "
            "the file must be UTF-8 encoded")


def _unreadable(name: str, exc: Exception) -> UnreadableFileError:
    detail = f"{type(exc).__name__}: {exc}"
    return UnreadableFileError(f"{name}: not a readable CSV file ({detail[:300]})")


class RawCsv:
    """One CSV export read as record batches of text, in file order, losing nothing.

    Each batch (a pyarrow Table) has the canonical text columns, `source_line` (the physical line
    where the record starts) and `raw_record`: the record's text where it had the wrong number of
    fields (its other columns are then null), else null. Memory is one parsed block plus 8 bytes a
    record for the line map, whatever the file's size. Construction scans the file once (UTF-8,
    quotes, where records start); `batches()` parses it with pyarrow.
    """

    def __init__(self, path: str | Path, name: str | None = None, block_bytes: int = DEFAULT_BLOCK_BYTES,
                 slow_line_map: bool = False, cities: dict[str, CityProfile] | None = None):
        cities = cities or profiles()  # a bad profile raises ProfileError naming its file, not this one
        try:
            self._scan(path, name, block_bytes, slow_line_map, cities)
        except UnreadableFileError:
            raise
        except Exception as exc:
            raise _unreadable(name or Path(path).name, exc) from exc

    def _scan(self, path, name, block_bytes: int, slow_line_map: bool, cities: dict[str, CityProfile]) -> None:
        self.layout = inspect_csv(path, name, cities)
        self.block_bytes = block_bytes
        self.rows_read = self.malformed = 0
        name, path, skip = self.layout.name, self.layout.path, self.layout.skip
        try:
            with open(path, "rb") as fh:
                fh.seek(skip)
                self.starts, quotes = _record_start_lines(fh, ord(self.layout.newline))
        except _NotUtf8 as exc:
            raise UnreadableFileError(_undecodable(name, exc.offset, exc.line)) from exc
        if quotes % 2:  # an odd count is the cheap sign of a quote that may never close
            line = _unclosed_quote_line(path, skip, self.layout.delimiter)
            if line:
                raise UnreadableFileError(
                    f"{name}: a quoted value opened in the record on line {line} is never closed, "
                    "so the rest of the file would read as one value"
                )
        if slow_line_map:
            self.starts = _record_start_lines_slow(path, skip)

    @property
    def original_headers(self) -> list[str]:
        return self.layout.header

    def _empty(self, rows: int = 0) -> pa.Table:
        return pa.table({**{c: pa.nulls(rows, pa.string()) for c in self.layout.columns},
                         "source_line": pa.nulls(rows, pa.int64()), "raw_record": pa.nulls(rows, pa.string())})

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
            raise _unreadable(self.layout.name, exc) from exc

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
                read_options=pacsv.ReadOptions(use_threads=False, column_names=layout.columns, skip_rows=1,
                                               block_size=max(self.block_bytes, 2 * layout.header_bytes)),
                parse_options=pacsv.ParseOptions(delimiter=layout.delimiter, newlines_in_values=True,
                                                 invalid_row_handler=on_invalid),
                convert_options=pacsv.ConvertOptions(
                    column_types={c: pa.string() for c in layout.columns},
                    strings_can_be_null=False, quoted_strings_can_be_null=False),
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
                yield self._assemble(self._empty().drop_columns(["source_line", "raw_record"]),
                                     np.zeros(0, dtype=np.int64), malformed[emitted:])
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
        rows = rows.set_column(rows.schema.get_field_index("source_line"), "source_line",
                               pa.array(self.starts[bad_numbers - 1], pa.int64()))
        rows = rows.set_column(rows.schema.get_field_index("raw_record"), "raw_record",
                               pa.array([m[1] for m in bad], pa.string()))
        both = pa.concat_tables([good, rows])
        return both.take(pc.sort_indices(both, [("source_line", "ascending")]))


def stream_raw_csv(path: str | Path, consume, name: str | None = None, block_bytes: int = DEFAULT_BLOCK_BYTES,
                   cities: dict[str, CityProfile] | None = None):
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


def read_raw_csv(path: str | Path, data: bytes | None = None, cities: dict[str, CityProfile] | None = None,
                 block_bytes: int = DEFAULT_BLOCK_BYTES) -> RawRead:
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
        raise _unreadable(path.name, exc) from exc


def _read_whole(path: Path, name: str, block_bytes: int, cities: dict[str, CityProfile]) -> RawRead:
    def consume(raw: RawCsv) -> RawRead:
        table = pa.concat_tables(list(raw.batches()))
        frame = table.to_pandas()
        frame["raw_record"] = frame["raw_record"].astype("string")
        return RawRead(rows=frame, original_headers=raw.original_headers, city=raw.layout.city)

    return stream_raw_csv(path, consume, name, block_bytes, cities)
