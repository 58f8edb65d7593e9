"""A small client for the UI's GraphQL API, as the browser uses it: shared by the end-to-end test
and the UI-versus-CLI benchmark."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

LOCATION = "crime_pipeline"


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
            assert proc.poll() is None, f"dg dev exited:\n{log.read_text()[-3000:]}"
            try:
                data = self.graphql(
                    "{ workspaceOrError { ... on Workspace { locationEntries { name "
                    "locationOrLoadError { __typename } } } } }"
                )
                entries = data["workspaceOrError"]["locationEntries"]
                if (
                    entries
                    and entries[0]["locationOrLoadError"]
                    and entries[0]["locationOrLoadError"]["__typename"] == "RepositoryLocation"
                ):
                    return
            except OSError:
                pass
            time.sleep(1)
        raise AssertionError(f"dg dev did not serve in {timeout}s:\n{log.read_text()[-3000:]}")

    def launch(self, assets: list[str], tags: dict[str, str] | None = None) -> str:
        """Launch a run of the given assets (and their checks) the way the UI's Materialize button does."""
        params = {
            "selector": {
                "repositoryLocationName": LOCATION,
                "repositoryName": "__repository__",
                "pipelineName": "__ASSET_JOB",
                "assetSelection": [{"path": [a]} for a in assets],
            },
            "mode": "default",
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
            status = self.graphql(
                "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }", {"id": run_id}
            )["runOrError"]["status"]
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                return status
            time.sleep(1)
        raise AssertionError(f"run {run_id} did not finish in {timeout}s")

    def run_times(self, run_id: str) -> tuple[float, float]:
        """(start, end) of a finished run, in seconds since the epoch, as the instance recorded them."""
        run = self.graphql(
            "query($id: ID!) { runOrError(runId: $id) { ... on Run { startTime endTime } } }", {"id": run_id}
        )["runOrError"]
        return run["startTime"], run["endTime"]
