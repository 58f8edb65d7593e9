"""Reading one raw CSV export into a table of text columns, losing nothing.

Every value is read as text (typing is validation's job, so a bad value is reported, not
silently turned into a null). Rows with the wrong number of fields are not dropped: they come
back as `malformed` with their source line number and text. Line numbers are physical lines of
the file (1 = header), correct even when quoted values span several lines.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from crime_pipeline.lib.cities import DEFAULT_CITY, CityProfile, city_from_filename, profiles
from crime_pipeline.lib.columns import canonical_names, missing_required, normalise_header
from crime_pipeline.lib.storage import lake_path, open_read, read_bytes

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
    with open_read(lake_path(path)) as fh:  # a lake file, local or on an object store
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _record_start_lines(data: bytes, newline: int = 10) -> np.ndarray:
    """Physical 1-based line number where each non-empty CSV record starts (quote-aware).

    `newline` is the byte that ends a line: LF (also for CRLF), or CR in an old Mac file.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == newline)
    quotes = np.flatnonzero(buf == 34)
    # A newline ends a record only outside quotes: an even number of quote chars precede it.
    boundary = newlines[(np.searchsorted(quotes, newlines) % 2) == 0]
    starts = np.concatenate(([0], boundary + 1))
    ends = np.concatenate((boundary, [len(buf)]))
    length = ends - starts
    cr_only = (length == 1) & (buf[np.minimum(starts, len(buf) - 1)] == 13)  # the CR of an empty CRLF line
    keep = (length > 0) & ~cr_only
    lines = np.searchsorted(newlines, starts) + 1  # newlines before the start, plus one
    return lines[keep]


def _record_start_lines_slow(text: str) -> np.ndarray:
    """Fallback for odd quoting: the csv module's own notion of where each record starts."""
    reader = csv.reader(io.StringIO(text, newline=""))
    lines, previous = [], 0
    for record in reader:
        if record:
            lines.append(previous + 1)
        previous = reader.line_num
    return np.asarray(lines, dtype=np.int64)


def _unclosed_quote_line(text: str, delimiter: str) -> int | None:
    """The line where the record starts whose quoted value runs to the end of the file, if any."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    previous = 0
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


def read_raw_csv(path: str | Path, data: bytes | None = None, cities: dict[str, CityProfile] | None = None) -> RawRead:
    """Read a CSV export as text with canonical headers; raise UnreadableFileError if impossible.

    `cities` are the profiles to choose from (default: every known one). Whatever the bytes, the
    only exception is UnreadableFileError, and its message names the file.
    """
    path = lake_path(path)
    cities = cities or profiles()  # a bad profile raises ProfileError naming its file, not this one
    try:
        return _read_raw_csv(path.name, read_bytes(path) if data is None else data, cities)
    except UnreadableFileError:
        raise
    except Exception as exc:  # weird input must never surface as a bare traceback naming no file
        detail = f"{type(exc).__name__}: {exc}"
        raise UnreadableFileError(f"{path.name}: not a readable CSV file ({detail[:300]})") from exc


def _read_raw_csv(name: str, data: bytes, cities: dict[str, CityProfile]) -> RawRead:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data or data.isspace():
        raise UnreadableFileError(f"{name}: the file is empty")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnreadableFileError(f"{name}: UTF-16 encoded; the file must be UTF-8 encoded")
    if b"\x00" in data[:65536]:
        raise UnreadableFileError(f"{name}: binary content (NUL bytes), not a CSV text file")
    # Lines end with LF (or CRLF), or in an old Mac file with CR alone: the first line end decides.
    cr, lf = data.find(b"\r"), data.find(b"\n")
    newline = "\r" if cr >= 0 and (lf < 0 or cr < lf - 1) else "\n"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(newline.encode()) + 1
        raise UnreadableFileError(
            f"{name}: undecodable bytes at byte offset {exc.start} (line {line}); "
            "the file must be UTF-8 encoded"
        ) from exc

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

    if data.count(b'"') % 2:  # an odd count is the cheap sign of a quote that may never close
        line = _unclosed_quote_line(text, delimiter)
        if line:
            raise UnreadableFileError(
                f"{name}: a quoted value opened in the record on line {line} is never closed, "
                "so the rest of the file would read as one value"
            )
    if not data.endswith((b"\n", b"\r")):  # pyarrow cannot skip a header line that has no end
        data += newline.encode()

    malformed: list[tuple[int, str, int, int]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        malformed.append((row.number, row.text, row.expected_columns, row.actual_columns))
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(
                use_threads=False, column_names=columns, skip_rows=1, block_size=1 << 24
            ),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                             invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in columns},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise UnreadableFileError(f"{name}: not a readable CSV file: {str(exc)[:300]}") from exc

    # Map record numbers (1 = header) to physical lines; verify against what pyarrow saw.
    starts = _record_start_lines(data, ord(newline))
    if len(starts) != table.num_rows + len(malformed) + 1:
        starts = _record_start_lines_slow(text)
    if len(starts) != table.num_rows + len(malformed) + 1:
        raise UnreadableFileError(f"{name}: could not delimit records consistently (unbalanced quotes?)")
    # pyarrow numbers records from 1 = the (skipped) header line, as `starts` does.
    bad_records = np.fromiter((m[0] for m in malformed), dtype=np.int64, count=len(malformed))
    is_good = np.ones(len(starts) + 1, dtype=bool)
    is_good[[0, 1, *bad_records]] = False
    good_records = np.flatnonzero(is_good)
    frame = table.to_pandas()
    frame["source_line"] = starts[good_records - 1]
    frame["raw_record"] = pd.Series(None, index=frame.index, dtype="string")
    if len(malformed):
        bad = pd.DataFrame(
            {
                "source_line": starts[bad_records - 1],
                "raw_record": pd.array([m[1] for m in malformed], dtype="string"),
            }
        )
        frame = pd.concat([frame, bad], ignore_index=True).sort_values("source_line", kind="stable")
        frame = frame.reset_index(drop=True)
    frame.insert(0, "city", profile.key)
    return RawRead(rows=frame, original_headers=header_line, city=profile.key)
