"""Sections of measurements, the machine they ran on, the printed table and the JSON document.

A section is a titled list of rows; a row is one number with its unit, and a ratio row also has a
target and a verdict (PASS / MISS). Another section drops in by building a `Section` and appending
it to the list `python -m benchmarks` prints and saves.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
UNITS = {
    "s": "{:.1f} s",
    "x": "{:.2f}x",
    "fraction": "{:.1%}",
    "samples/s": "{:,.0f}/s",
    "rows": "{:,.0f}",
    "MB": "{:,.1f} MB",
    "accuracy": "{:.4f}",
    "nats": "{:.4f}",
    "count": "{:,.0f}",
}


@dataclass
class Section:
    id: str
    title: str
    rows: list[dict] = field(default_factory=list)

    def add(self, what: str, value: float, unit: str, **extra) -> dict:
        """One measured number (extra keys, e.g. `note`, go into the JSON as they are)."""
        if unit not in UNITS:
            raise ValueError(f"unknown unit {unit!r}")
        row = {"what": what, "value": float(value), "unit": unit, **extra}
        self.rows.append(row)
        return row

    def ratio(self, what: str, value: float, unit: str = "x", target: tuple[str, float] | None = None, **extra) -> dict:
        """A ratio; with `target` ("<=" or ">=", limit) it gets a verdict."""
        row = self.add(what, value, unit, **extra)
        if target is not None:
            op, limit = target
            ok = value <= limit if op == "<=" else value >= limit
            row.update(target=f"{op} {fmt(limit, unit)}", verdict="PASS" if ok else "MISS")
        return row

    def to_dict(self) -> dict:
        return {"id": self.id, "title": self.title, "rows": self.rows}


def fmt(value: float, unit: str) -> str:
    return UNITS[unit].format(value)


def table(sections: list[Section]) -> str:
    """One Markdown table of every section: paste-able into the README or an issue."""
    lines = ["| section | measurement | value | target | verdict |", "|---|---|---|---|---|"]
    for section in sections:
        for i, row in enumerate(section.rows):
            lines.append(
                f"| {section.title if i == 0 else ''} | {row['what']} | {fmt(row['value'], row['unit'])} | "
                f"{row.get('target', '')} | {row.get('verdict', '')} |"
            )
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine(torch_threads: int) -> dict:
    """What the numbers were measured on."""
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gb": _memory_gb(),
        "torch_threads_default": torch_threads,
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "versions": {
            p: _version(p) for p in ("dagster", "torch", "pandas", "pyarrow", "numpy", "scikit-learn", "pandera")
        },
    }


def git_state() -> dict:
    """The commit measured, and whether the working tree differed from it."""

    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": git("rev-parse", "HEAD"),
        "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": bool(status) if status is not None else None,
    }
