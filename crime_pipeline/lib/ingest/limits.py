"""The limits on an incoming CSV file, in one place. A file over any of them is refused whole, with
one sentence naming the file and the limit (never cut, never half-read), so the work a file costs is
bounded by its size: see RELIABILITY.md, "Limits".

Real exports are far inside them: 6 to 31 columns, a header under 1 KB, records under 2 KB (a long
boilerplate Incident Description included). Readers look up these names at call time (`limits.X`),
so a test may lower one to build a small file just over it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager

# The header line: read from the first bytes, so it must end within them.
MAX_HEADER_BYTES = 64 * 1024
# Header fields. Validation's fixed cost per batch grows with the column count (pandas keeps one
# block per text column), so the count is bounded: about 0.5 s a batch at this width.
MAX_COLUMNS = 1_000
# One record, all its physical lines: so also any one field. pyarrow parses blocks of 64 MiB, which
# must hold a whole record; the csv module's field limit in the independent count is set to this.
MAX_RECORD_BYTES = 16 * 1024 * 1024


@contextmanager
def csv_field_limit() -> Iterator[None]:
    """The csv module's field limit (a character count, at most the byte count) raised to
    MAX_RECORD_BYTES for the block, then restored: the module's default (131,072) would refuse
    a field the rest of ingestion accepts."""
    previous = csv.field_size_limit(MAX_RECORD_BYTES)
    try:
        yield
    finally:
        csv.field_size_limit(previous)
