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
