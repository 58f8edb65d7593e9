"""Where each record of a CSV file starts: a quote-aware scan of its physical lines, block by block.

The reader (raw_csv.py) numbers every record by the physical line it starts on (1 = header),
correct even when quoted values span several lines. The fast scan counts quotes with numpy, checks
UTF-8 and looks for NUL bytes on the way, and measures the longest record (limits.py bounds it);
the slow one asks the csv module, for files whose quoting fools the fast one.
"""

from __future__ import annotations

import codecs
import csv
import io
from array import array
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np

from crime_pipeline.lib.ingest.limits import csv_field_limit


class LineScan(NamedTuple):
    starts: np.ndarray  # the physical 1-based line where each non-empty record starts
    quotes: int  # quote characters in the file
    longest: int  # bytes of the longest record (its line end excluded)
    longest_line: int  # the line where that record starts (0 when there is none)


def record_start_lines(stream: BinaryIO, newline: int = 10, block: int = 1 << 24) -> LineScan:
    """Where each non-empty CSV record starts (quote-aware), the file's quote count and its longest
    record, read in blocks (memory: one block, plus 8 bytes a record). NotUtf8 or NulByte, with the
    byte offset and line, for a byte that is not UTF-8 text.

    `newline` is the byte that ends a line: LF (also for CRLF), or CR in an old Mac file. A newline
    ends a record only outside quotes: an even number of quote chars precede it.
    """
    out: list[np.ndarray] = []
    quotes = newlines_before = offset = 0
    prev_end, next_line, last_byte = -1, 1, -1  # the last record boundary and the line after it
    longest = [0, 0]  # bytes, start line
    decoder = codecs.getincrementaldecoder("utf-8")()
    while data := stream.read(block):
        buf = np.frombuffer(data, dtype=np.uint8)
        newlines = np.flatnonzero(buf == newline)

        def line_of(at, before=newlines_before, ends=newlines):  # a byte's line, from this block's newlines
            return before + int(np.searchsorted(ends, at)) + 1

        _check_utf8(decoder, data, offset, line_of)
        nul = np.flatnonzero(buf == 0)
        if len(nul):  # after the first bytes (csv_layout.py refuses those as binary): text in name only
            raise NulByte(offset + int(nul[0]), line_of(int(nul[0])))
        quote_at = np.flatnonzero(buf == 34)
        local = newlines[((quotes + np.searchsorted(quote_at, newlines)) % 2) == 0]
        boundary = local + offset
        if len(local):
            _emit(out, longest, buf, offset, boundary, local, newlines, prev_end, next_line, newlines_before, last_byte)
            prev_end = int(boundary[-1])
            next_line = newlines_before + int(np.searchsorted(newlines, local[-1], "right")) + 1
        quotes += len(quote_at)
        newlines_before += len(newlines)
        last_byte, offset = int(buf[-1]), offset + len(buf)
    _check_utf8(decoder, b"", offset, lambda at: newlines_before + 1, final=True)
    length = offset - (prev_end + 1)  # the last record, when the file does not end with a newline
    if length > 0 and not (length == 1 and last_byte == 13):
        out.append(np.array([next_line]))
        if length > longest[0]:
            longest[:] = [length, next_line]
    starts = (np.concatenate(out) if out else np.zeros(0, dtype=np.int64)).astype(np.int64)
    return LineScan(starts, quotes, longest[0], longest[1])


class NotUtf8(Exception):
    def __init__(self, offset: int, line: int):
        super().__init__(offset, line)
        self.offset, self.line = offset, line


class NulByte(NotUtf8):
    """A NUL byte: valid UTF-8, but no text file holds one."""


def _check_utf8(decoder, data: bytes, offset: int, line_of, final: bool = False) -> None:
    """Decode one block (discarding the text); raise NotUtf8 with the byte offset and line of a bad byte."""
    pending = len(decoder.getstate()[0])
    try:
        decoder.decode(data, final=final)
    except UnicodeDecodeError as exc:
        at = offset - pending + exc.start
        raise NotUtf8(at, line_of(max(at - offset, 0))) from exc


def _emit(
    out, longest, buf, offset, boundary, local, newlines, prev_end, next_line, newlines_before, last_byte
) -> None:
    """Append the start lines of the non-empty records that end at this block's `boundary` newlines,
    and raise `longest` ([bytes, line]) to the longest of them."""
    starts = np.concatenate(([prev_end + 1], boundary[:-1] + 1))
    length = boundary - starts
    lines = np.concatenate(([next_line], newlines_before + np.searchsorted(newlines, local[:-1], "right") + 1))
    first_byte = np.where(starts >= offset, buf[np.clip(starts - offset, 0, len(buf) - 1)], last_byte)
    keep = (length > 0) & ~((length == 1) & (first_byte == 13))  # not the CR of an empty CRLF line
    out.append(lines[keep])
    if keep.any():
        at = int(np.argmax(np.where(keep, length, -1)))
        if length[at] > longest[0]:
            longest[:] = [int(length[at]), int(lines[at])]


def record_start_lines_slow(path: Path, skip: int) -> np.ndarray:
    """Fallback for odd quoting: the csv module's own notion of where each record starts."""
    lines, previous = array("q"), 0
    with open(path, "rb") as raw, csv_field_limit():
        raw.seek(skip)
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
        for record in reader:
            if record:
                lines.append(previous + 1)
            previous = reader.line_num
    return np.frombuffer(lines, dtype=np.int64) if len(lines) else np.zeros(0, dtype=np.int64)


def unclosed_quote_line(path: Path, skip: int, delimiter: str) -> int | None:
    """The line where the record starts whose quoted value runs to the end of the file, if any."""
    previous = 0
    with open(path, "rb") as raw, csv_field_limit():  # over it: None, and the record limit refuses the file
        raw.seek(skip)
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline=""), delimiter=delimiter, strict=True)
        try:
            for _ in reader:
                previous = reader.line_num
        except csv.Error as exc:
            return previous + 1 if "unexpected end of data" in str(exc) else None
    return None
