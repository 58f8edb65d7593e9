"""The project as a `dg` user meets it: `dg list defs` and `dg launch` from the project folder, and the
definitions loaded from the defs folder. (`dg check defs` is a step of .ci/run, just before the tests.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crime_pipeline.definitions import build_definitions
from crime_pipeline_tests.conftest import REPO
from crime_pipeline_tests.soda_server import SodaServer, api_rows

pytestmark = pytest.mark.external

DG = Path(sys.executable).parent / "dg"


def dg(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(DG), *args], cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=300
    )


def test_dg_list_defs_shows_every_asset_and_the_automation():
    result = dg("list", "defs", "--json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assets = {a["asset_key"] for a in listed["assets"]}
    graph_assets = {
        k.to_user_string() for k in build_definitions("/nonexistent").resolve_asset_graph().get_all_asset_keys()
    }
    assert assets == graph_assets and {"open_data_pull", "raw_incidents", "crime_report"} <= assets
    assert {s["name"] for s in listed["sensors"]} == {"incoming_file_sensor", "refresh_downstream", "dead_run_reaper"}
    schedules = sorted(s["name"] for s in listed["schedules"])
    assert schedules == ["forecast_week_job_schedule", "open_data_pull_job_schedule"]
    labels = {a["asset_key"]: (a.get("automation_condition") or {}).get("label") for a in listed["assets"]}
    assert labels["incident_features"] == "eager, once upstream blocking checks pass"
    assert labels["incidents"].startswith("eager over files")
    assert labels["forecast_counts"] == "eager, once built (forecasts are opt-in)"


def test_dg_launch_materializes_an_asset(tmp_path):
    lake = tmp_path / "lake"
    home = tmp_path / "home"
    home.mkdir()
    with SodaServer(api_rows(5)) as server:
        result = dg(
            "launch",
            "--assets",
            "open_data_pull",
            env={
                "CRIME_PIPELINE_LAKE": str(lake),
                "DAGSTER_HOME": str(home),
                "CRIME_PIPELINE_SODA_URL": server.url,
                "CRIME_PIPELINE_SENSORS": "stopped",
            },
        )
    assert result.returncode == 0, result.stdout + result.stderr
    [written] = list((lake / "raw" / "incoming").iterdir())
    assert written.name.startswith("open_data_pull_") and len(written.read_text().splitlines()) == 6
