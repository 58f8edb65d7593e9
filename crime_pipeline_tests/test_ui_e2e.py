"""The UI path end to end: `dagster dev` serves the graph, a GraphQL launch runs it, metadata comes back."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from crime_pipeline import synthetic
from crime_pipeline.lib.lake import LakeLayout, partition_key_for, record_generated
from crime_pipeline.lib.reading import sha256_file
from crime_pipeline_tests.conftest import REPO

LOCATION = "crime_pipeline"
EXPECTED_EDGES = {
    ("raw_incidents", "validated_incidents"), ("raw_incidents", "incident_quarantine"),
    ("validated_incidents", "incidents"), ("incidents", "incident_features"),
    ("incident_features", "dataset_splits"), ("dataset_splits", "baseline_model"),
    ("dataset_splits", "mlp_model"), ("dataset_splits", "mlp_weighted_model"), ("dataset_splits", "gbdt_model"), ("mlp_model", "model_evaluation"),
    ("model_evaluation", "figures"), ("figures", "crime_report"),
}
GROUPS = {"raw_incidents": "ingestion", "validated_incidents": "validation", "incidents": "validation",
          "incident_features": "features", "dataset_splits": "features", "mlp_model": "models",
          "model_evaluation": "reports", "crime_report": "reports"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UI:
    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.base}/graphql", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = json.loads(response.read())
        assert "errors" not in payload, payload["errors"]
        return payload["data"]

    def wait_until_serving(self, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert proc.poll() is None, f"dagster dev exited:\n{log.read_text()[-3000:]}"
            try:
                data = self.graphql("{ workspaceOrError { ... on Workspace { locationEntries { name "
                                    "locationOrLoadError { __typename } } } } }")
                entries = data["workspaceOrError"]["locationEntries"]
                if entries and entries[0]["locationOrLoadError"] and \
                        entries[0]["locationOrLoadError"]["__typename"] == "RepositoryLocation":
                    return
            except OSError:
                pass
            time.sleep(1)
        raise AssertionError(f"dagster dev did not serve in {timeout}s:\n{log.read_text()[-3000:]}")

    def launch(self, assets: list[str], tags: dict[str, str] | None = None) -> str:
        """Launch a run of the given assets (and their checks) the way the UI's Materialize button does."""
        params = {
            "selector": {"repositoryLocationName": LOCATION, "repositoryName": "__repository__",
                         "pipelineName": "__ASSET_JOB", "assetSelection": [{"path": [a]} for a in assets]},
            "mode": "default",
            "runConfigData": {"execution": {"config": {"in_process": {}}}},
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]},
        }
        data = self.graphql(
            "mutation($p: ExecutionParams!) { launchPipelineExecution(executionParams: $p) { __typename "
            "... on LaunchRunSuccess { run { runId } } ... on PythonError { message } "
            "... on RunConfigValidationInvalid { errors { message } } ... on InvalidSubsetError { message } } }",
            {"p": params},
        )["launchPipelineExecution"]
        assert data["__typename"] == "LaunchRunSuccess", data
        return data["run"]["runId"]

    def wait_for_run(self, run_id: str, timeout: float = 150) -> str:
        deadline = time.time() + timeout
        while time.time() < deadline:
            status = self.graphql("query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }",
                                  {"id": run_id})["runOrError"]["status"]
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                return status
            time.sleep(1)
        raise AssertionError(f"run {run_id} did not finish in {timeout}s")


@pytest.fixture
def dagster_dev(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    lake = LakeLayout(tmp_path / "lake").ensure()
    data = synthetic.generate_incidents(2500, seed=13)
    path = synthetic.write_export_csv(data, lake.incoming / "export.csv")
    record_generated(lake, sha256_file(path), {"file": path.name, "rows": 2500, "seed": 13})
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "CRIME_PIPELINE_LAKE": str(lake.root),
           "CRIME_PIPELINE_SENSORS": "stopped"}
    log = tmp_path / "dagster_dev.log"
    dagster = Path(sys.executable).parent / "dagster"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(dagster), "dev", "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1",
                                 "-p", str(port)], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # its own process group, ended as a whole below
    try:
        ui = UI(port)
        ui.wait_until_serving(proc, log)
        yield ui, lake, partition_key_for(sha256_file(path)), log
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # dagster dev ignores SIGTERM in the background
        proc.wait(timeout=30)


def test_ui_serves_the_lineage_and_materializes_the_whole_graph(dagster_dev):
    ui, lake, key, log = dagster_dev
    nodes = ui.graphql("{ assetNodes { assetKey { path } groupName description "
                       "dependencyKeys { path } } }")["assetNodes"]
    by_name = {n["assetKey"]["path"][-1]: n for n in nodes}
    edges = {(d["path"][-1], name) for name, n in by_name.items() for d in n["dependencyKeys"]}
    assert EXPECTED_EDGES <= edges
    for name, group in GROUPS.items():
        assert by_name[name]["groupName"] == group
        assert len(by_name[name]["description"] or "") > 40, name

    # The partition dialog's "add partition", then the Materialize button for that file...
    added = ui.graphql(
        "mutation($l: String!, $r: String!, $p: String!, $k: String!) { addDynamicPartition("
        "repositorySelector: {repositoryLocationName: $l, repositoryName: $r}, partitionsDefName: $p, "
        "partitionKey: $k) { __typename } }",
        {"l": LOCATION, "r": "__repository__", "p": "incoming_files", "k": key},
    )["addDynamicPartition"]
    assert added["__typename"] == "AddDynamicPartitionSuccess", added
    run = ui.launch(["raw_incidents", "validated_incidents", "incident_quarantine"], {"dagster/partition": key})
    assert ui.wait_for_run(run) == "SUCCESS", log.read_text()[-3000:]
    # ...and for everything below it.
    downstream = ["incidents", "incident_features", "dataset_splits", "baseline_model", "mlp_model", "mlp_weighted_model",
                  "gbdt_model", "model_evaluation", "figures", "crime_report"]
    run = ui.launch(downstream)
    assert ui.wait_for_run(run) == "SUCCESS", log.read_text()[-3000:]

    report = ui.graphql(
        "{ assetOrError(assetKey: {path: [\"crime_report\"]}) { ... on Asset { assetMaterializations(limit: 1) { "
        "metadataEntries { label __typename ... on PathMetadataEntry { path } ... on FloatMetadataEntry { floatValue } "
        "... on MarkdownMetadataEntry { mdStr } } } } } }"
    )["assetOrError"]["assetMaterializations"][0]["metadataEntries"]
    entries = {e["label"]: e for e in report}
    assert entries["path"]["path"] == str(lake.report_file("report.html"))
    assert lake.report_file("report.html").exists()
    assert 0 < entries["best_accuracy"]["floatValue"] < 1
    assert "Bayes" in entries["summary"]["mdStr"]

    figures = ui.graphql(
        "{ assetOrError(assetKey: {path: [\"figures\"]}) { ... on Asset { assetMaterializations(limit: 1) { "
        "metadataEntries { label ... on MarkdownMetadataEntry { mdStr } } } } } }"
    )["assetOrError"]["assetMaterializations"][0]["metadataEntries"]
    images = {e["label"] for e in figures if "data:image/png;base64," in (e.get("mdStr") or "")}
    assert {"confusion_mlp", "training_curves", "hotspots_time_bands", "per_class_recall"} <= images
