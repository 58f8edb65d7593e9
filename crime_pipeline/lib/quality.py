"""The data-quality report: every row read is valid, quarantined with a reason, or superseded."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

DELIMITERS = (",", ";", "\t", "|")


def count_csv_records(source: bytes | str | Path) -> int:
    """Records in a CSV file below its header, counted by Python's csv module: evidence for the
    row accounting that is independent of the pyarrow reader ingestion uses. Blank lines are not
    records; a record with the wrong number of fields is. A path is read as a stream (one record
    in memory at a time), so any size can be counted."""
    if isinstance(source, bytes):
        return _count(io.StringIO(source.decode("utf-8-sig"), newline=""))
    with open(source, encoding="utf-8-sig", newline="") as fh:
        return _count(fh)


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
    the standard library, isolated: -I), killed if the block is left by an exception."""
    child = subprocess.Popen([sys.executable, "-I", __file__, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)

    def result() -> int:
        out, err = child.communicate()
        if child.returncode != 0 or not out.strip().isdigit():
            last = (err.strip().splitlines() or ["no message"])[-1][:500]  # the exception, not the traceback
            raise RuntimeError(f"the independent record count of {Path(path).name} failed "
                               f"(exit {child.returncode}): {last}")
        return int(out)

    try:
        yield result
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()


def quality_report(summaries: dict[str, dict], superseded: dict[str, int], kept: dict[str, int]) -> dict:
    """Per-file and total accounting from validation summaries and merge results (by partition key).

    `valid` counts rows that passed validation and are the newest record of their case, so for
    each file rows_read = valid + quarantined + superseded.
    """
    files, totals = [], {"rows_read": 0, "valid": 0, "quarantined": 0, "superseded": 0}
    by_rule: dict[str, int] = {}
    flags: dict[str, int] = {}
    for key, s in summaries.items():
        row = {
            "partition_key": key,
            "file": s.get("file"),
            "rows_read": int(s["rows_read"]),
            "valid": int(kept.get(key, 0)),
            "quarantined": int(s["quarantined"]),
            "superseded": int(superseded.get(key, 0)),
            "quarantined_by_rule": s["quarantined_by_rule"],
            "flags": s["flags"],
        }
        row["reconciles"] = row["rows_read"] == row["valid"] + row["quarantined"] + row["superseded"]
        files.append(row)
        for k in totals:
            totals[k] += row[k]
        for k, v in s["quarantined_by_rule"].items():
            by_rule[k] = by_rule.get(k, 0) + v
        for k, v in s["flags"].items():
            flags[k] = flags.get(k, 0) + v
    return {
        "files": files,
        "totals": totals,
        "quarantined_by_rule": dict(sorted(by_rule.items())),
        "flags": flags,
        "reconciles": all(f["reconciles"] for f in files),
    }


def accounting_problems(files: dict[str, dict], kept: dict[str, int], quarantined: dict[str, int],
                        superseded: dict[str, int]) -> list[str]:
    """Files whose record count at ingestion (a separate reader's) differs from kept + quarantined +
    superseded rows; empty when every row is accounted for."""
    problems = []
    for key, entry in files.items():
        counted = entry.get("records_counted")
        found = kept.get(key, 0) + quarantined.get(key, 0) + superseded.get(key, 0)
        if counted != found:
            problems.append(f"{entry['file']} ({key}): {counted} records in the file, {kept.get(key, 0)} kept + "
                            f"{quarantined.get(key, 0)} quarantined + {superseded.get(key, 0)} superseded = {found}")
    return problems


if __name__ == "__main__":  # counting_records' child: print the count of one file
    print(count_csv_records(sys.argv[1]))
