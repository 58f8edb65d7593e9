"""Every test is in the tier its rule says, and the guard that keeps the fast tier fast sees heavy work.

The tiers and their rules are in tiers.py; conftest.py applies them. These tests collect the whole
suite (in this process) and check each test's markers against the rules and against its own source,
and plant heavy work in a fast-tier test to see the guard fail it.
"""

from __future__ import annotations

import contextlib
import inspect
import re
import subprocess
import textwrap

import dagster as dg
import pytest

from crime_pipeline_tests.conftest import REPO
from crime_pipeline_tests.tooling import tiers

TESTS = REPO / "crime_pipeline_tests"
# What a test's own source shows when it starts a process or runs assets through Dagster.
HEAVY_SOURCE = re.compile(
    r"\bsubprocess\b|\bPopen\b|sys\.executable|\bmaterialize\(|execute_in_process|"
    r"\brun_pipeline\b|\bexecute_job\b|\bmain\(\[\"run\""
)


class Collected:
    def __init__(self):
        self.items = []

    def pytest_collection_finish(self, session):
        self.items = [
            (
                item.nodeid,
                list(item.fixturenames),
                [m.name for m in item.iter_markers()],
                getattr(item, "function", None),
            )
            for item in session.items
        ]


def run_pytest(*args: str, plugin=None) -> int:
    """pytest in this process, with the project's settings; its output goes to the captured stdout."""
    return pytest.main(
        ["-c", str(REPO / "pyproject.toml"), "--rootdir", str(REPO), "-p", "no:cacheprovider", *args],
        plugins=[plugin] if plugin else [],
    )


@pytest.fixture(scope="module")
def collected() -> list[tuple]:
    plugin = Collected()
    assert run_pytest("--collect-only", "-q", str(TESTS), plugin=plugin) == 0
    assert len(plugin.items) > 250
    return plugin.items


def tier_of(markers: list[str]) -> str:
    found = tiers.tier_markers(markers)
    return found[0] if found else tiers.FAST


def test_every_test_is_in_one_tier_no_lighter_than_its_rule(collected):
    order = [*tiers.TIERS, tiers.FAST]  # heaviest first
    wrong = []
    for nodeid, fixtures, markers, _ in collected:
        if len(tiers.tier_markers(markers)) > 1:
            wrong.append(f"{nodeid} carries {tiers.tier_markers(markers)}: one tier per test")
        rule = tiers.rule_tier(nodeid, fixtures, markers)
        if rule and order.index(tier_of(markers)) > order.index(rule[0]):
            wrong.append(f"{nodeid} is in the {tier_of(markers)} tier but {rule[1]}: it belongs in {rule[0]}")
    assert wrong == []


def test_no_fast_test_uses_the_trained_lake_or_a_server_or_shows_heavy_work_in_its_source(collected):
    heavy_fixtures = {*tiers.EXTERNAL_FIXTURES, *tiers.E2E_FIXTURES}
    fast = [
        (nodeid, fixtures, function)
        for nodeid, fixtures, markers, function in collected
        if tier_of(markers) == tiers.FAST
    ]
    assert len(fast) > 150  # the fast tier is most of the suite, not an empty set that checks nothing
    wrong = [
        f"{nodeid} uses {sorted(heavy_fixtures & set(fixtures))}"
        for nodeid, fixtures, _ in fast
        if heavy_fixtures & set(fixtures)
    ]
    for nodeid, _, function in fast:
        source = inspect.getsource(function) if function else ""
        heavy = HEAVY_SOURCE.search(source)
        if heavy and "tiers.recording()" not in source:  # heavy work planted under a recording does not count
            wrong.append(f"{nodeid} shows {heavy.group()!r} in its source")
    assert wrong == []


def test_every_tier_has_tests_and_the_rules_name_real_fixtures(collected):
    counts = {tier: sum(tier_of(markers) == tier for _, _, markers, _ in collected) for tier in [*tiers.TIERS, "fast"]}
    assert all(counts.values()), counts
    used = {name for _, fixtures, _, _ in collected for name in fixtures}
    named = {*tiers.EXTERNAL_FIXTURES, *tiers.E2E_FIXTURES, *(n for pair in tiers.E2E_FIXTURE_PAIRS for n in pair)}
    assert named <= used, f"rules name fixtures no test uses (renamed?): {sorted(named - used)}"


def test_the_guard_sees_a_process_and_a_dagster_run_and_not_a_probe():
    @dg.asset
    def one() -> int:
        return 1

    with tiers.recording() as heavy:
        subprocess.run(["true"], check=True)
        assert dg.materialize_to_memory([one]).success
    assert "started a process (true)" in heavy and "launched a Dagster run (__ephemeral_asset_job__)" in heavy
    with tiers.recording() as outer:
        with tiers.recording(), tiers.recording():  # empty ones: each closes its own
            pass
        with tiers.recording() as inner:
            subprocess.run(["true"], check=True)
        with contextlib.suppress(FileNotFoundError):
            subprocess.run(["lscpu"], capture_output=True, check=False)  # a library's probe is not heavy work
    assert outer == [] and inner == ["started a process (true)"]  # only the innermost recording sees it


def test_a_fast_test_doing_heavy_work_fails_with_the_marker_to_add():
    assert tiers.fast_tier_violation("t.py::test_x", []) is None
    sentence = tiers.fast_tier_violation("t.py::test_x", ["launched a Dagster run (j)"] * 2)
    assert sentence.startswith("t.py::test_x is in the fast tier (no tier marker) but launched a Dagster run (j): ")
    assert "@pytest.mark.e2e" in sentence


PLANTED = """
import subprocess

import pytest


def test_starts_a_process():
    subprocess.run(["true"], check=True)


@pytest.mark.e2e
def test_starts_a_process_and_says_so():
    subprocess.run(["true"], check=True)


def test_pure():
    assert sum([1, 2]) == 3


@pytest.fixture(scope="module")
def shared():
    subprocess.run(["true"], check=True)
    return 1


@pytest.mark.e2e
def test_first_user_of_the_shared_fixture(shared):
    assert shared


def test_later_user_of_the_shared_fixture(shared):
    assert shared
"""


class Outcomes:
    def __init__(self):
        self.outcomes, self.messages = {}, {}

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.failed:
            name = report.nodeid.split("::")[-1]
            self.outcomes[name] = report.outcome
            self.messages[name] = str(report.longrepr or "")


def test_the_guard_fails_a_fast_test_that_starts_a_process_itself_or_through_a_shared_fixture(tmp_path):
    planted = tmp_path / "test_planted.py"
    planted.write_text(textwrap.dedent(PLANTED))
    outcomes = Outcomes()
    run_pytest("-q", "-p", "crime_pipeline_tests.conftest", str(planted), plugin=outcomes)
    assert outcomes.outcomes == {
        "test_starts_a_process": "failed",
        "test_starts_a_process_and_says_so": "passed",
        "test_pure": "passed",
        "test_first_user_of_the_shared_fixture": "passed",
        "test_later_user_of_the_shared_fixture": "failed",
    }
    assert (
        "is in the fast tier (no tier marker) but started a process (true)"
        in outcomes.messages["test_starts_a_process"]
    )
    assert (
        "but uses the fixture `shared`, whose setup started a process (true)"
        in outcomes.messages["test_later_user_of_the_shared_fixture"]
    )
