"""The data-quality report: every row read is valid, quarantined with a reason, or superseded."""

from __future__ import annotations


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


def accounting_problems(
    files: dict[str, dict], kept: dict[str, int], quarantined: dict[str, int], superseded: dict[str, int]
) -> list[str]:
    """Files whose record count at ingestion (a separate reader's) differs from kept + quarantined +
    superseded rows; empty when every row is accounted for."""
    problems = []
    for key, entry in files.items():
        counted = entry.get("records_counted")
        found = kept.get(key, 0) + quarantined.get(key, 0) + superseded.get(key, 0)
        if counted != found:
            problems.append(
                f"{entry['file']} ({key}): {counted} records in the file, {kept.get(key, 0)} kept + "
                f"{quarantined.get(key, 0)} quarantined + {superseded.get(key, 0)} superseded = {found}"
            )
    return problems
