"""The data-quality report: every row read is valid, quarantined with a reason, or superseded."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

DELIMITERS = (",", ";", "\t", "|")


def count_csv_records(source: bytes | str | Path, field_limit: int | None = None) -> int:
    """Records in a CSV file below its header, counted by Python's csv module: evidence for the
    row accounting that is independent of the pyarrow reader ingestion uses. Blank lines are not
    records; a record with the wrong number of fields is. A path is read as a stream (one record
    in memory at a time), so any size can be counted. `field_limit` is the csv module's (default:
    limits.MAX_RECORD_BYTES, what ingestion accepts; its own default of 131,072 is lower)."""
    if field_limit is None:  # imported here: the child process below runs on the standard library alone
        from crime_pipeline.lib.ingest.limits import MAX_RECORD_BYTES as field_limit
    previous = csv.field_size_limit(field_limit)
    try:
        if isinstance(source, bytes):
            return _count(io.StringIO(source.decode("utf-8-sig"), newline=""))
        with open(source, encoding="utf-8-sig", newline="") as fh:
            return _count(fh)
    finally:
        csv.field_size_limit(previous)


def _count(fh: io.TextIOBase) -> int:
    first_line = fh.readline()
    delimiter = max(DELIMITERS, key=first_line.split("\n", 1)[0].count)
    fh.seek(0)
    records = sum(1 for record in csv.reader(fh, delimiter=delimiter) if record)
    return max(records - 1, 0)


@contextmanager
def counting_records(path: str | Path) -> Iterator[Callable[[], int]]:
    """`count_csv_records(path)` in a child process, so the count runs on another core beside the
    parse; yields a function that waits for it. The child is this very file run as a script (only
    the standard library, isolated: -I; the field limit is passed to it), killed if the block is left
    by an exception."""
    from crime_pipeline.lib.ingest import limits

    child = subprocess.Popen(
        [sys.executable, "-I", __file__, str(path), str(limits.MAX_RECORD_BYTES)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def result() -> int:
        out, err = child.communicate()
        if child.returncode != 0 or not out.strip().isdigit():
            last = (err.strip().splitlines() or ["no message"])[-1][:500]  # the exception, not the traceback
            raise RuntimeError(
                f"the independent record count of {Path(path).name} failed (exit {child.returncode}): {last}"
            )
        return int(out)

    try:
        yield result
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()


if __name__ == "__main__":  # counting_records' child: print the count of one file
    print(count_csv_records(sys.argv[1], int(sys.argv[2])))
