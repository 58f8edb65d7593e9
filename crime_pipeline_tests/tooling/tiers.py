"""Test tiers: the rule that puts each test in one tier, and a guard that keeps the fast tier fast.

Every test is in exactly one tier. Three carry a marker (registered in pyproject.toml); a test
with none of them is in the fast tier:

  external  needs a server or program outside this process: PostgreSQL, an S3 server (moto), the UI
            (`dg dev`), a notebook kernel, the `dg` command
  e2e       runs assets through Dagster (a run in an instance: `dg.materialize`, the pipeline, the
            CLI's `run`) or starts a process
  slow      an in-process library test that still takes seconds (training, property tests)
  (fast)    library tests on tiny frames: no Dagster run, no process

The marker is added by rule where one holds (`rule_tier`, applied by conftest.py: a fixture that
runs the pipeline or starts a server, a test under e2e/, a hypothesis property test) and written on
the test otherwise (`@pytest.mark.e2e`, or `pytestmark = pytest.mark.e2e` for a whole module). The
guard (`install`, `TierGuard`) watches every test: a test left in the fast tier that starts a
process or launches a Dagster run, itself or through a shared fixture an earlier test set up, fails
with a sentence saying which marker it needs. tooling/test_tiers.py checks the rules against the
markers of every collected test.

    .venv/bin/python -m pytest                                              # everything
    .venv/bin/python -m pytest -m "not slow and not e2e and not external"   # the fast tier
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import pytest

# Heaviest first: a test that fits several tiers is in the first one.
TIERS = ("external", "e2e", "slow")
FAST = "fast"

# Fixtures (anywhere in a test's fixture closure) that put a test in a tier, and why.
EXTERNAL_FIXTURES = {
    "postgres": "starts a PostgreSQL server",
    "s3_lake": "starts an S3 server (moto)",
    "endpoint": "starts an S3 server (moto)",
    "dagster_dev": "starts the UI (`crime-pipeline ui`, i.e. `dg dev`)",
}
E2E_FIXTURES = {
    "pipeline": "runs the pipeline (`crime-pipeline run`'s logic)",
    "trained_run": "uses the session's trained lake (the whole pipeline on 20,000 rows)",
    "trained": "uses the session's trained lake (the whole pipeline on 20,000 rows)",
    "cli_env": "runs the `crime-pipeline` command against a temporary lake",
    "cli_lake": "runs `crime-pipeline run` in a subprocess",
}
E2E_FIXTURE_PAIRS = {("defs", "instance"): "materializes the project's Definitions in an instance"}
E2E_FOLDER = "crime_pipeline_tests/e2e/"
# Markers that put a test in a tier: hypothesis marks its property tests, which run 100 examples each.
SLOW_MARKERS = {"hypothesis": "is a property test (hypothesis runs 100 examples)"}
# Programs libraries start for themselves, not heavy work: loky (joblib, scikit-learn) asks lscpu
# for the physical core count once per process.
PROBES = {"lscpu"}


def rule_tier(nodeid: str, fixturenames: Iterable[str], marker_names: Iterable[str] = ()) -> tuple[str, str] | None:
    """The tier a rule puts a test in, with the reason, or None where no rule holds. A test may be
    marked heavier than its rule (a test in e2e/ that needs PostgreSQL is external), never lighter."""
    names = set(fixturenames)
    for name, why in EXTERNAL_FIXTURES.items():
        if name in names:
            return "external", f"uses the fixture `{name}`: it {why}"
    for name, why in E2E_FIXTURES.items():
        if name in names:
            return "e2e", f"uses the fixture `{name}`: it {why}"
    for pair, why in E2E_FIXTURE_PAIRS.items():
        if set(pair) <= names:
            return "e2e", f"uses the fixtures {' and '.join(f'`{n}`' for n in pair)}: it {why}"
    if nodeid.startswith(E2E_FOLDER):
        return "e2e", f"lives in {E2E_FOLDER}"
    for marker, why in SLOW_MARKERS.items():
        if marker in set(marker_names):
            return "slow", why
    return None


def tier_markers(marker_names: Iterable[str]) -> list[str]:
    """The tier markers among a test's markers, heaviest first."""
    names = set(marker_names)
    return [tier for tier in TIERS if tier in names]


def fast_tier_violation(nodeid: str, heavy_work: list[str]) -> str | None:
    """The sentence a fast-tier test fails with when it did heavy work, or None when it did none."""
    if not heavy_work:
        return None
    seen = sorted(set(heavy_work))
    shown = "; ".join(seen[:3]) + (f"; and {len(seen) - 3} more" if len(seen) > 3 else "")
    return (
        f"{nodeid} is in the fast tier (no tier marker) but {shown}: mark it "
        "@pytest.mark.e2e (or @pytest.mark.external if it needs a server or program), "
        "or keep Dagster runs and processes out of it (crime_pipeline_tests/tooling/tiers.py)"
    )


# The guard. Heavy work is noted on the innermost open recording only, so a recording opened inside
# a test (test_tiers.py plants heavy work that way) does not count against the test itself.
_recordings: list[list[str]] = []


def note(what: str) -> None:
    if _recordings:
        _recordings[-1].append(what)


@contextmanager
def recording() -> Iterator[list[str]]:
    """Collect the heavy work (processes started, Dagster runs launched) done inside the block."""
    events: list[str] = []
    _recordings.append(events)
    try:
        yield events
    finally:
        del _recordings[next(i for i, r in enumerate(_recordings) if r is events)]  # by identity: lists compare equal


def _program(args) -> str:
    if isinstance(args, (str, bytes, os.PathLike)):
        return os.fsdecode(args).split()[0] if os.fsdecode(args).strip() else "?"
    args = list(args)
    return os.path.basename(os.fsdecode(args[0])) if args else "?"


def install() -> None:
    """Watch for process starts and Dagster runs, for the rest of this interpreter (idempotent)."""
    if getattr(subprocess.Popen._execute_child, "_tier_guard", False):
        return

    execute_child = subprocess.Popen._execute_child

    def watched_execute_child(self, args, *rest, **kwargs):
        if _program(args) not in PROBES:
            note(f"started a process ({_program(args)})")
        return execute_child(self, args, *rest, **kwargs)

    watched_execute_child._tier_guard = True
    subprocess.Popen._execute_child = watched_execute_child

    fork = os.fork

    def watched_fork():
        note("forked the test process")
        return fork()

    os.fork = watched_fork

    import multiprocessing.util

    spawnv_passfds = multiprocessing.util.spawnv_passfds

    def watched_spawnv_passfds(path, args, passfds):
        note(f"started a process ({_program(args)})")
        return spawnv_passfds(path, args, passfds)

    multiprocessing.util.spawnv_passfds = watched_spawnv_passfds

    # Every in-process Dagster run (dg.materialize, the pipeline, the CLI's `run`, a job's
    # execute_in_process) goes through JobDefinition.execute_in_process or dg.execute_job.
    import dagster as dg

    execute_in_process = dg.JobDefinition.execute_in_process

    def watched_execute_in_process(self, *args, **kwargs):
        note(f"launched a Dagster run ({self.name})")
        return execute_in_process(self, *args, **kwargs)

    dg.JobDefinition.execute_in_process = watched_execute_in_process

    execute_job = dg.execute_job

    def watched_execute_job(job, *args, **kwargs):
        note("launched a Dagster run (execute_job)")
        return execute_job(job, *args, **kwargs)

    dg.execute_job = watched_execute_job


class TierGuard:
    """The pytest plugin (conftest.py registers one per session) that fails a fast-tier test doing
    heavy work, and lists fast-tier tests that took seconds."""

    SECONDS_FOR_THE_FAST_TIER = 5.0

    def __init__(self):
        self.shared_heavy: dict[tuple[str, str], list[str]] = {}  # (fixture, baseid) -> what its setup did
        self.heavy_in_setup: dict[str, list[str]] = {}
        self.fast_seconds: dict[str, float] = {}

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef, request):
        # Called when a fixture is set up, not when a cached (module or session) value is reused, so
        # what a shared fixture did is remembered for every later test that uses it.
        with recording() as heavy:
            result = yield
        for what in heavy:
            note(what)  # the setup of the test that set the fixture up sees it too
        if heavy and fixturedef.scope != "function":
            self.shared_heavy[(fixturedef.argname, fixturedef.baseid)] = heavy
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item):
        with recording() as heavy:
            try:
                return (yield)
            finally:
                self.heavy_in_setup[item.nodeid] = heavy

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item):
        with recording() as heavy:
            result = yield
        if not tier_markers(m.name for m in item.iter_markers()):
            shared = [
                f"uses the fixture `{name}`, whose setup {what[0]}"
                for (name, baseid), what in self.shared_heavy.items()
                if name in item.fixturenames and item.nodeid.startswith(baseid)
            ]
            violation = fast_tier_violation(item.nodeid, self.heavy_in_setup.pop(item.nodeid, []) + heavy + shared)
            if violation:
                pytest.fail(violation, pytrace=False)
        return result

    def pytest_runtest_logreport(self, report):
        if report.when in ("setup", "call") and not tier_markers(report.keywords):
            self.fast_seconds[report.nodeid] = self.fast_seconds.get(report.nodeid, 0.0) + report.duration

    def pytest_terminal_summary(self, terminalreporter):
        if not self.fast_seconds:
            return
        slow = {nodeid: s for nodeid, s in self.fast_seconds.items() if s > self.SECONDS_FOR_THE_FAST_TIER}
        if slow:
            terminalreporter.section(f"fast-tier tests over {self.SECONDS_FOR_THE_FAST_TIER:.0f} s (mark them slow?)")
            for nodeid, seconds in sorted(slow.items(), key=lambda kv: -kv[1]):
                terminalreporter.write_line(f"{seconds:6.1f} s  {nodeid}")
        terminalreporter.write_line(
            f"fast tier: {len(self.fast_seconds)} tests, {sum(self.fast_seconds.values()):.1f} s of setup and call"
        )
