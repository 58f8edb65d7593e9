"""The SODA app token stays a name: never in the instance's files, never in what the UI shows."""

from __future__ import annotations

import contextlib
import sqlite3
import zlib
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.remote_representation.external_data import RepositorySnap, ResourceConfigEnvVarSnap
from dagster._serdes import serialize_value

from crime_pipeline.definitions import SODA_TOKEN_VAR, build_definitions
from crime_pipeline.lib.lake.layout import LakeLayout
from crime_pipeline_tests.conftest import Pipeline

SENTINEL = "sentinel-app-token-5e3b9c"


def files_holding(folder: Path, needle: bytes) -> list[str]:
    """Files whose bytes hold `needle`, also inside SQLite values Dagster stores zlib-compressed."""
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if needle in data or (data.startswith(b"SQLite format 3") and needle in sqlite_values(path)):
            found.append(str(path))
    return found


def sqlite_values(path: Path) -> bytes:
    """Every value of every table, compressed blobs inflated (job snapshots are stored that way)."""
    out = []
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            for row in db.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    if isinstance(value, str):
                        value = value.encode()
                    if isinstance(value, bytes):
                        with contextlib.suppress(zlib.error):
                            value = zlib.decompress(value)
                        out.append(value)
    return b"\n".join(out)


@pytest.mark.e2e
def test_a_plain_run_writes_the_token_nowhere(tmp_path, monkeypatch):
    monkeypatch.setenv(SODA_TOKEN_VAR, SENTINEL)
    lake = LakeLayout(tmp_path / "lake").ensure()
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        pipe = Pipeline(build_definitions(str(lake.root)), instance, lake, downstream=["incidents"])
        pipe.generate("gen.csv", rows=300, seed=3)
        assert pipe.run() == 0, pipe.output
        assert instance.get_runs()  # the runs, their job snapshots and event logs are in `home`
    assert (home / "history" / "runs.db").exists()
    assert files_holding(home, SENTINEL.encode()) == []
    assert files_holding(lake.root, SENTINEL.encode()) == []


def test_the_ui_shows_the_variable_name_not_the_value(monkeypatch):
    monkeypatch.setenv(SODA_TOKEN_VAR, SENTINEL)
    snap = RepositorySnap.from_def(build_definitions("/tmp/unused-lake").get_repository_def())
    [open_data] = [r for r in snap.resources if r.name == "open_data"]
    assert open_data.configured_values["app_token"] == ResourceConfigEnvVarSnap(name=SODA_TOKEN_VAR)
    assert "open_data" in {c.name for c in snap.utilized_env_vars[SODA_TOKEN_VAR]}
    assert SENTINEL not in serialize_value(snap)  # nor in any job's config schema or default


def test_without_the_variable_no_token_is_configured(monkeypatch):
    monkeypatch.delenv(SODA_TOKEN_VAR, raising=False)
    defs = build_definitions("/tmp/unused-lake")
    snap = RepositorySnap.from_def(defs.get_repository_def())
    [open_data] = [r for r in snap.resources if r.name == "open_data"]
    assert open_data.configured_values["app_token"] == "null"  # the field default: no token sent
    assert defs.resources["open_data"].settings().app_token is None


@pytest.mark.e2e
def test_the_pull_still_sends_the_token_resolved_at_run_time(tmp_path, monkeypatch):
    from crime_pipeline_tests.soda_server import SodaServer, api_rows

    with SodaServer(api_rows(3)) as server:
        monkeypatch.setenv(SODA_TOKEN_VAR, SENTINEL)
        monkeypatch.setenv("CRIME_PIPELINE_SODA_URL", server.url)
        defs = build_definitions(str(LakeLayout(tmp_path / "lake").ensure().root))
        result = defs.get_job_def("open_data_pull_job").execute_in_process()
        assert result.success
        assert [h.get("X-App-Token") for h in server.headers] == [SENTINEL]
