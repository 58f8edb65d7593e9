"""What a CSV file's first bytes say: encoding, delimiter, newline, header, and the city it belongs to.

`inspect_csv` refuses what is not a CSV export at all (empty, UTF-16, binary, undecodable, no
incident header) with `UnreadableFileError`, whose message names the file and the problem;
`choose_profile` picks the city profile whose columns the header has.
"""

from __future__ import annotations

import codecs
import csv
import re
from dataclasses import dataclass
from pathlib import Path

from crime_pipeline.lib.cities.columns import canonical_names, missing_required, normalise_header
from crime_pipeline.lib.cities.profiles import (
    CANONICAL_COLUMNS,
    DEFAULT_CITY,
    CityProfile,
    city_from_filename,
    profiles,
)
from crime_pipeline.lib.ingest import limits

DELIMITERS = (",", ";", "\t", "|")
_SNIFF_BYTES = 65536  # NUL bytes here mean a binary file; line_scan.py finds one anywhere else


class UnreadableFileError(ValueError):
    """The file cannot be ingested at all; the message names the file and the problem."""


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


def layout_names(profile: CityProfile) -> set[str]:
    """Normalised header names typical of a city's exports: its signature and its alias spellings."""
    return set(profile.signature) | {s for spelled in profile.header_aliases.values() for s in spelled}


def choose_profile(name: str, header: list[str], known: dict[str, CityProfile]) -> tuple[CityProfile, list[str]]:
    """The city profile a file belongs to, and its canonical column names; UnreadableFileError if none fits.

    A city is *contradicted* by a header with none of its layout names (`layout_names`) but some
    other city's own names (layout names that are neither canonical nor the first city's): a Buffalo
    export without its label column has Chicago's required columns, yet it is not Chicago's.
    A `<city>__` file-name prefix naming a known city decides, unless the header lacks that city's
    required columns or contradicts it. Otherwise the candidates are the cities whose required columns
    the header has and which it does not contradict; the one with most of its layout names present
    wins, and a tie needs the prefix. With no candidate, the caller's error names the closest profile
    (fewest required columns missing, then most layout names) and what it misses.
    """
    norm = {normalise_header(h) for h in header}
    own = {key: norm & layout_names(p) for key, p in known.items()}
    canonical = set(CANONICAL_COLUMNS)

    def contradicted_by(key: str) -> tuple[str, list[str]] | None:
        """The other city whose own names the header has while it has none of `key`'s, and those names."""
        if own[key]:
            return None
        foreign = {k: sorted(own[k] - canonical - layout_names(known[key])) for k in known if k != key}
        best = max(sorted(foreign), key=lambda k: len(foreign[k]), default=None)
        return (best, foreign[best]) if best is not None and foreign[best] else None

    named = city_from_filename(name)
    if named in known:
        columns = canonical_names(header, known[named])
        missing = missing_required(columns, known[named])
        if missing:
            raise UnreadableFileError(
                f"{name}: named city {named!r} by its prefix but not an incident export of "
                f"that city: missing required column(s) {', '.join(missing)} "
                f"({known[named].source})"
            )
        other = contradicted_by(named)
        if other:
            shown = ", ".join(other[1][:6]) + (", ..." if len(other[1]) > 6 else "")
            raise UnreadableFileError(
                f"{name}: the file-name prefix names city {named!r} but the header has none of its export's "
                f"column names and {len(other[1])} of {other[0]}'s ({shown}); rename the file with the right "
                "prefix, or none"
            )
        return known[named], columns
    fits = []  # (contradicted, required columns missing, -layout names present, key, columns)
    for key, profile in sorted(known.items(), key=lambda kv: (kv[0] != DEFAULT_CITY, kv[0])):
        columns = canonical_names(header, profile)
        fits.append(
            (contradicted_by(key) is not None, len(missing_required(columns, profile)), -len(own[key]), key, columns)
        )
    fits.sort(key=lambda f: f[:3])  # stable: the default city first among equals
    best = fits[0]
    if best[:2] == (False, 0) and len(fits) > 1 and fits[1][:3] == best[:3]:
        tied = [f[3] for f in fits if f[:3] == best[:3]]
        raise UnreadableFileError(
            f"{name}: the header fits the city profiles {', '.join(tied)} equally well; "
            f"name the city with a file-name prefix, e.g. {tied[-1]}{'__'}{name}"
        )
    if best[:2] != (False, 0):  # no candidate: the closest uncontradicted profile, by what it misses
        best = min([f for f in fits if not f[0]] or fits, key=lambda f: f[1:3])
    return known[best[3]], best[4]


def inspect_csv(path: str | Path, name: str | None = None, cities: dict[str, CityProfile] | None = None) -> CsvLayout:
    """Check the start of a file (encoding, binary, header, required columns of the city profile it
    matches, among `cities`, default every known one); UnreadableFileError if not a CSV export."""
    path = Path(path)
    name = name or path.name
    cities = cities or profiles()  # a bad profile raises ProfileError naming its file, not this one
    # The header line and its line end, at most: a longer first line is refused, never cut.
    head_bytes = max(limits.MAX_HEADER_BYTES + 2, _SNIFF_BYTES)
    with open(path, "rb") as fh:
        skip = 3 if fh.read(3) == b"\xef\xbb\xbf" else 0
        fh.seek(skip)
        head = fh.read(head_bytes + 1)
    whole = len(head) <= head_bytes
    if not head or (whole and head.isspace()):
        raise UnreadableFileError(f"{name}: the file is empty")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnreadableFileError(f"{name}: UTF-16 encoded; the file must be UTF-8 encoded")
    if b"\x00" in head[:_SNIFF_BYTES]:
        raise UnreadableFileError(f"{name}: binary content (NUL bytes), not a CSV text file")
    # Lines end with LF (or CRLF), or in an old Mac file with CR alone: the first line end decides.
    cr, lf = head.find(b"\r"), head.find(b"\n")
    newline = "\r" if cr >= 0 and (lf < 0 or cr < lf - 1) else "\n"
    header_end = head.find(newline.encode())
    header_end = len(head) if header_end < 0 else header_end
    if len(head[:header_end].rstrip(b"\r")) > limits.MAX_HEADER_BYTES:
        raise UnreadableFileError(
            f"{name}: its first line (the header) is longer than the limit of {limits.MAX_HEADER_BYTES:,} bytes, "
            "so it is not read (a real export's header is under 1 KB)"
        )
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=whole)
    except UnicodeDecodeError as exc:
        line = head[: exc.start].count(newline.encode()) + 1
        raise UnreadableFileError(undecodable(name, exc.start, line)) from exc
    first_newline = text.find(newline)
    first_line = text[: first_newline if first_newline >= 0 else len(text)].rstrip("\r")
    delimiter = max(DELIMITERS, key=first_line.count)  # exports saved by spreadsheets use ; or tabs
    header_line = next(csv.reader([first_line], delimiter=delimiter), [])
    if len(header_line) > limits.MAX_COLUMNS:
        raise UnreadableFileError(
            f"{name}: its header has {len(header_line):,} columns, over the limit of at most "
            f"{limits.MAX_COLUMNS:,} (a real export has 6 to 31)"
        )
    profile, columns = choose_profile(name, header_line, cities)
    missing = missing_required(columns, profile)
    if missing:
        raise UnreadableFileError(
            f"{name}: not an incident export: missing required column(s) {', '.join(missing)}; "
            + _describe_first_line(header_line, delimiter)
            # The default city is the implicit yardstick; any other closest profile is named.
            + (f"; the closest city profile is {profile.key} ({profile.source})" if profile.key != DEFAULT_CITY else "")
        )
    return CsvLayout(
        name, path, skip, delimiter, newline, columns, header_line, len(first_line.encode()) + 2, profile.key
    )


def undecodable(name: str, offset: int, line: int) -> str:
    return f"{name}: undecodable bytes at byte offset {offset} (line {line}); the file must be UTF-8 encoded"


def unreadable(name: str, exc: Exception) -> UnreadableFileError:
    detail = f"{type(exc).__name__}: {exc}"
    return UnreadableFileError(f"{name}: not a readable CSV file ({detail[:300]})")
