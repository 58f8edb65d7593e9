"""`python -m benchmarks --quick` runs end to end and reports every section with numbers, so the
benchmark command cannot rot; its direct driver does the same work as the Dagster graph."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import pytest

from benchmarks.ingestion import ALONE, PARTS
from benchmarks.report import Section, table
from benchmarks.stages import run_stages
from crime_pipeline_tests.conftest import REPO

SECTIONS = ["ingestion", "seed", "mlp", "dagster", "incremental", "memory", "forecast"]
TARGETS = {
    "ingestion": "<= 3.00x",
    "mlp": ">= 0.80x",
    "dagster": "<= 25.0%",
    "incremental": "<= 10.0%",
    "forecast": "<= 120.0 s",
}


def test_ratio_rows_get_the_verdict_their_target_implies():
    section = Section("s", "S")
    assert section.ratio("under", 2.9, target=("<=", 3.0))["verdict"] == "PASS"
    assert section.ratio("at the limit", 3.0, target=("<=", 3.0))["verdict"] == "PASS"
    assert section.ratio("over", 3.1, target=("<=", 3.0))["verdict"] == "MISS"
    assert section.ratio("fast enough", 0.8, target=(">=", 0.8))["verdict"] == "PASS"
    assert section.ratio("too slow", 0.79, target=(">=", 0.8))["verdict"] == "MISS"
    assert "verdict" not in section.ratio("for information", 5.0)
    assert "| S | under | 2.90x | <= 3.00x | PASS |" in table([section]).splitlines()
    with pytest.raises(ValueError, match="unknown unit"):
        section.add("x", 1.0, "furlongs")


@pytest.mark.e2e
def test_quick_benchmark_reports_every_section_with_numbers(tmp_path):
    out = tmp_path / "quick.json"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out), "--workdir", str(tmp_path / "work")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    doc = json.loads(out.read_text())

    assert [s["id"] for s in doc["sections"]] == SECTIONS
    for section in doc["sections"]:
        assert section["rows"], section["id"]
        for row in section["rows"]:
            assert isinstance(row["value"], float) and math.isfinite(row["value"]), row
        targets = [r for r in section["rows"] if "target" in r]
        assert [r["target"] for r in targets] == ([TARGETS[section["id"]]] if section["id"] in TARGETS else [])
        assert all(r["verdict"] in ("PASS", "MISS") for r in targets)
        assert section["title"] in result.stdout  # the printed table shows it
    machine = doc["machine"]
    assert machine["cores"] >= 1 and machine["torch_threads_default"] >= 1 and machine["cpu_model"]
    assert re.fullmatch(r"[0-9a-f]{40}", doc["git"]["commit"])

    m = doc["measurements"]
    # The direct driver ran every step the Dagster runs ran, and reached the same models.
    assert set(m["direct"]["seconds"]) == set(m["graph"]["steps_s"])
    assert m["direct"]["accuracy"] == m["graph"]["evaluation"]["accuracy"]
    assert m["direct"]["rows_read"] == m["graph"]["rows_read"] == 3_000
    # Peak memory per stage: each named stage ran in its own process and reported its own peak.
    assert [r["stage"] for r in m["stages"]] == ["generate", "ingest+validate"]
    assert all(r["peak_rss_mb"] > 50 and r["rows"] == 3_000 for r in m["stages"]), m["stages"]
    # The new month went in as one more partition, and the rebuild read both files.
    assert m["graph"]["new_partition_rows"] == m["month"]["rows"] > 0
    assert m["graph"]["full_rebuild_files"] == 2
    assert m["graph"]["full_rebuild_rows"] == 3_000 + m["month"]["rows"]
    assert m["seed_script"]["epochs"] == 1 and 0 < m["seed_script"]["accuracy"] <= 1
    # Ingestion part by part: every part of ours timed on the default file, and the floor beside them.
    parts = m["ingestion_parts"]
    assert parts["rows"] == 3_000 and set(PARTS) | set(ALONE) | {"pyarrow_read_csv", "floor"} == set(parts["seconds"])
    assert parts["ours_s"] == pytest.approx(sum(parts["seconds"][k] for k in PARTS), abs=1e-9)
    ingestion = next(s for s in doc["sections"] if s["id"] == "ingestion")
    assert sum(r["what"].startswith("ours, part by part") for r in ingestion["rows"]) == len(PARTS)


@pytest.mark.e2e
def test_each_stage_reports_its_own_peak_not_its_parents(tmp_path):
    # A child's ru_maxrss on Linux starts from what its parent held when forked; the stage must report its own.
    ballast = b"\x01" * (900 << 20)  # 900 MB resident in this (the parent) process
    [row] = run_stages(tmp_path, 2_000, stages=["generate"], echo=lambda line: None)
    assert len(ballast) and row["stage"] == "generate" and 50 < row["peak_rss_mb"] < 800, row
