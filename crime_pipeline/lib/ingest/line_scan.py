"""Where each record of a CSV file starts: a quote-aware scan of its physical lines, block by block.

The reader (raw_csv.py) numbers every record by the physical line it starts on (1 = header),
correct even when quoted values span several lines. The fast scan counts quotes with numpy and
checks UTF-8 on the way; the slow one asks the csv module, for files whose quoting fools the fast one.
"""

from __future__ import annotations

import codecs
import csv
import io
from array import array
from pathlib import Path
from typing import BinaryIO

import numpy as np


def record_start_lines(stream: BinaryIO, newline: int = 10, block: int = 1 << 24) -> tuple[np.ndarray, int]:
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
        _check_utf8(
            decoder,
            data,
            offset,  # the line of a bad byte, found at once (this block's newlines)
            lambda at, before=newlines_before, ends=newlines: before + int(np.searchsorted(ends, at)) + 1,
        )
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


class NotUtf8(Exception):
    def __init__(self, offset: int, line: int):
        super().__init__(offset, line)
        self.offset, self.line = offset, line


def _check_utf8(decoder, data: bytes, offset: int, line_of, final: bool = False) -> None:
    """Decode one block (discarding the text); raise NotUtf8 with the byte offset and line of a bad byte."""
    pending = len(decoder.getstate()[0])
    try:
        decoder.decode(data, final=final)
    except UnicodeDecodeError as exc:
        at = offset - pending + exc.start
        raise NotUtf8(at, line_of(max(at - offset, 0))) from exc


def _emit(out, buf, offset, boundary, local, newlines, prev_end, next_line, newlines_before, last_byte) -> None:
    """Append the start lines of the non-empty records that end at this block's `boundary` newlines."""
    starts = np.concatenate(([prev_end + 1], boundary[:-1] + 1))
    length = boundary - starts
    lines = np.concatenate(([next_line], newlines_before + np.searchsorted(newlines, local[:-1], "right") + 1))
    first_byte = np.where(starts >= offset, buf[np.clip(starts - offset, 0, len(buf) - 1)], last_byte)
    keep = (length > 0) & ~((length == 1) & (first_byte == 13))  # not the CR of an empty CRLF line
    out.append(lines[keep])


def record_start_lines_slow(path: Path, skip: int) -> np.ndarray:
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


def unclosed_quote_line(path: Path, skip: int, delimiter: str) -> int | None:
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
