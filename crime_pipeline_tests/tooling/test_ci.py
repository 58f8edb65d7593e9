""".ci/run and README.md agree: CI runs exactly the test command README gives, installs from the
lock, and README names the fast tier's command (the tiers are in tooling/tiers.py)."""

from __future__ import annotations

import re

from crime_pipeline_tests.conftest import REPO

CI = (REPO / ".ci" / "run").read_text()
README = (REPO / "README.md").read_text()
FAST_TIER = '-m "not slow and not e2e and not external"'


def commands(script: str) -> list[str]:
    return [line.strip() for line in script.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_ci_runs_the_test_command_readme_gives():
    [pytest_line] = [line for line in commands(CI) if re.search(r"\bpytest\b", line) and not line.startswith("step ")]
    [readme_line] = [line for line in README.splitlines() if "requirements.lock &&" in line]
    assert readme_line.endswith(f"&& {pytest_line}"), (readme_line, pytest_line)  # the same options too


def test_ci_installs_the_lock_then_the_project_without_dependencies_and_checks_before_testing():
    lines = commands(CI)
    order = [
        next(i for i, line in enumerate(lines) if needle in line)
        for needle in (
            "pip install -q --no-deps -r requirements.lock",
            "pip install -q --no-deps -e .",
            "pip check",
            "ruff check",
            "ruff format --check",
            "lint-imports",
            "dg check defs",
            "-m pytest",
        )
    ]
    assert order == sorted(order)
    assert lines[0] == "set -euo pipefail"  # any failing step fails CI, pytest's exit 5 (no test ran) too


def test_readme_names_the_fast_tier_command():
    assert FAST_TIER in README
