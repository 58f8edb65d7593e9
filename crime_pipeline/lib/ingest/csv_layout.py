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
from crime_pipeline.lib.cities.profiles import DEFAULT_CITY, CityProfile, city_from_filename, profiles

DELIMITERS = (",", ";", "\t", "|")
_HEAD_BYTES = 1 << 20


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
            raise UnreadableFileError(
                f"{name}: named city {named!r} by its prefix but not an incident export of "
                f"that city: missing required column(s) {', '.join(missing)} "
                f"({known[named].source})"
            )
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
        raise UnreadableFileError(
            f"{name}: the header fits the city profiles {', '.join(tied)} equally well; "
            f"name the city with a file-name prefix, e.g. {tied[-1]}{'__'}{name}"
        )
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
        raise UnreadableFileError(undecodable(name, exc.start, line)) from exc
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
    return CsvLayout(
        name, path, skip, delimiter, newline, columns, header_line, len(first_line.encode()) + 2, profile.key
    )


def undecodable(name: str, offset: int, line: int) -> str:
    return f"{name}: undecodable bytes at byte offset {offset} (line {line}); the file must be UTF-8 encoded"


def unreadable(name: str, exc: Exception) -> UnreadableFileError:
    detail = f"{type(exc).__name__}: {exc}"
    return UnreadableFileError(f"{name}: not a readable CSV file ({detail[:300]})")
