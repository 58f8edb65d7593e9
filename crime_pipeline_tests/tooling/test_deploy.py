"""The cluster path (deploy/): the definitions under the Kubernetes executor, the pod each step
asks for, resolved by dagster_k8s's own functions, and the Helm values against the chart's schema."""

from __future__ import annotations

import copy
import json
import re
import tomllib

import dagster as dg
import jsonschema
import pytest
import yaml
from dagster._core.execution.api import create_execution_plan
from dagster_k8s import k8s_job_executor
from dagster_k8s.job import DagsterK8sJobConfig, construct_dagster_k8s_job, get_user_defined_k8s_config
from kubernetes.utils.quantity import parse_quantity

from crime_pipeline.definitions import build_definitions
from crime_pipeline.deploy_tags import GPU_IMAGE_VAR, GPU_NODE_SELECTOR, GPU_TOLERATION, pod_tags
from crime_pipeline_tests.conftest import REPO

DEPLOY = REPO / "deploy"
MLP_STEPS = {"mlp_model"}  # the GPU steps; mlp_weighted_model reuses its network and trains nothing
PER_FILE_STEPS = {"raw_incidents", "validate_file"}
# The keys the chart's instance ConfigMap template reads from dagsterDaemon.runMonitoring (a free-form
# map in the schema, so a misspelt key there would be dropped silently).
RUN_MONITORING_KEYS = {
    "enabled",
    "startTimeoutSeconds",
    "cancelTimeoutSeconds",
    "maxRuntimeSeconds",
    "maxResumeRunAttempts",
    "pollIntervalSeconds",
    "freeSlotsAfterRunEndSeconds",
}


@pytest.fixture(scope="module")
def k8s_defs(tmp_path_factory) -> dg.Definitions:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRIME_PIPELINE_EXECUTOR", "k8s")
        return build_definitions(str(tmp_path_factory.mktemp("lake")))


JOB_CONFIG = DagsterK8sJobConfig(job_image="crime-pipeline:test", dagster_home="/opt/dagster/dagster_home")


def pod_job(name: str, tags: dict[str, str]):
    """The V1Job dagster_k8s builds for a step with these tags, as the executor's step handler does."""
    return construct_dagster_k8s_job(
        JOB_CONFIG,
        ["dagster", "api", "execute_step"],
        f"dagster-step-{name}",
        user_defined_k8s_config=get_user_defined_k8s_config(tags),
    )


def step_pods(defs: dg.Definitions) -> dict[str, tuple[str | None, object]]:
    """Step key -> (pool, its V1Job), for every step of the whole asset graph."""
    plan = create_execution_plan(defs.resolve_implicit_global_asset_job_def())
    return {step.key: (step.pool, pod_job(step.key.replace("_", "-"), step.tags)) for step in plan.steps}


def test_k8s_setting_selects_the_k8s_job_executor_for_every_job(k8s_defs):
    jobs = k8s_defs.resolve_all_job_defs()
    assert {job.name for job in jobs} >= {"__ASSET_JOB", "ingest_file", "open_data_pull_job"}
    for job in jobs:
        assert job.executor_def is k8s_job_executor, job.name


def test_an_unknown_executor_setting_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("CRIME_PIPELINE_EXECUTOR", "kubernetes")
    with pytest.raises(
        dg.DagsterInvariantViolationError, match="'kubernetes': expected in_process, multiprocess or k8s"
    ):
        build_definitions(str(tmp_path))


def test_only_the_mlp_steps_ask_for_a_gpu_and_every_step_for_cpu_and_memory(k8s_defs):
    pods = step_pods(k8s_defs)
    assert MLP_STEPS | PER_FILE_STEPS | {"incidents", "baseline_model", "gbdt_model", "crime_report"} <= set(pods)
    for key, (pool, job) in pods.items():
        spec = job.spec.template.spec
        resources = spec.containers[0].resources
        requests, limits = resources.requests or {}, resources.limits or {}
        assert {"cpu", "memory"} <= set(requests), (
            f"{key}: give its decorator op_tags from crime_pipeline/deploy_tags.py"
        )
        assert parse_quantity(limits["memory"]) >= parse_quantity(requests["memory"]), key
        if key in MLP_STEPS:
            assert pool == "gpu", key
            assert limits.get("nvidia.com/gpu") == "1", key
            assert spec.node_selector == GPU_NODE_SELECTOR, key
            assert [t.key for t in spec.tolerations] == [GPU_TOLERATION["key"]], key
        else:
            assert "nvidia.com/gpu" not in {**requests, **limits}, key
            assert not spec.node_selector and not spec.tolerations, key


def as_tags(tags: dict) -> dict[str, str]:
    return {key: json.dumps(value) for key, value in tags.items()}  # as Dagster stores op tags


def test_gpu_steps_run_the_cuda_image_when_one_is_named(monkeypatch):
    monkeypatch.setenv(GPU_IMAGE_VAR, "registry.example.com/crime-pipeline:0.1.0-cuda")
    gpu = pod_job("mlp-model", as_tags(pod_tags("2", "4Gi", "8Gi", gpus=1))).spec.template.spec.containers[0]
    cpu = pod_job("gbdt-model", as_tags(pod_tags("2", "2Gi", "4Gi"))).spec.template.spec.containers[0]
    assert gpu.image == "registry.example.com/crime-pipeline:0.1.0-cuda"
    assert cpu.image == JOB_CONFIG.job_image


def test_per_file_steps_are_partitioned_by_incoming_file(k8s_defs):
    """One partition = one file = one run with its own pods, so a backfill of many files spreads out."""
    graph = k8s_defs.resolve_asset_graph()
    for key in ("raw_incidents", "validated_incidents", "incident_quarantine"):
        partitions = graph.get(dg.AssetKey(key)).partitions_def
        assert isinstance(partitions, dg.DynamicPartitionsDefinition) and partitions.name == "incoming_files", key
    assert graph.get(dg.AssetKey("incidents")).partitions_def is None  # the merge is one step


def chart_schema() -> dict:
    """The chart's schema, adjusted to check an override file strictly:
    - Kubernetes object schemas are remote references (not vendored): their contents go unchecked;
    - `required` is dropped from models: Helm checks it on the merge with the chart's defaults;
    - a model that does not say otherwise takes no unknown key, the top level included (the chart
      itself accepts and ignores them, which is how a misspelt key goes unnoticed)."""
    schema = json.loads((DEPLOY / "chart-values.schema.json").read_text())

    def visit(node):
        if isinstance(node, dict):
            if str(node.get("$ref", "")).startswith("https://"):
                del node["$ref"]
            if node.get("type") == "object" and "properties" in node:
                node.pop("required", None)
                if node["properties"] and "additionalProperties" not in node:
                    node["additionalProperties"] = False
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema)
    schema["additionalProperties"] = False
    return schema


def schema_errors(values: dict) -> list[str]:
    validator = jsonschema.Draft202012Validator(chart_schema())
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(values))


def load_values() -> dict:
    return yaml.safe_load((DEPLOY / "values.yaml").read_text())


def test_values_validate_against_the_chart_schema():
    assert schema_errors(load_values()) == []


@pytest.mark.parametrize(
    "path, wrong",
    [
        (("runLauncher", "config", "k8sRunLauncher", "envSecret"), [{"name": "x"}]),  # misspelt key
        (("runLaucher",), {"type": "K8sRunLauncher"}),  # misspelt top-level key
        (("dagster-user-deployments", "deployments", 0, "codeServerArg"), ["-m", "x"]),
        (("runLauncher", "type"), "KubernetesRunLauncher"),  # not one of the chart's launchers
        (("concurrency", "pools", "defaultLimit"), "1"),  # wrong type
    ],
)
def test_a_wrong_key_or_value_fails_the_schema(path, wrong):
    values = copy.deepcopy(load_values())
    node = values
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = wrong
    assert schema_errors(values), path


def test_values_run_our_image_on_k8s_with_the_lake_on_s3_and_the_local_pools():
    values = load_values()
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["port"] == 3030
    assert deployment["codeServerArgs"] == ["--module-name", "crime_pipeline.definitions"]
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}  # runs and step pods get the env
    assert deployment["env"]["CRIME_PIPELINE_EXECUTOR"] == "k8s"
    assert deployment["env"]["CRIME_PIPELINE_LAKE"].startswith("s3://")
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["postgresql"]["enabled"] is False and "postgresqlPassword" not in values["postgresql"]
    monitoring = values["dagsterDaemon"]["runMonitoring"]
    assert monitoring["enabled"] is True and set(monitoring) <= RUN_MONITORING_KEYS
    local = yaml.safe_load((REPO / ".dagster_home" / "dagster.yaml").read_text())["concurrency"]["pools"]
    assert values["concurrency"]["enabled"] is True
    assert values["concurrency"]["pools"] == {
        "defaultLimit": local["default_limit"],
        "granularity": local["granularity"],
        "opGranularityRunBuffer": local["op_granularity_run_buffer"],
    }


def test_no_secret_is_written_in_the_values():
    def strings(node, path=()):
        if isinstance(node, dict):
            for key, value in node.items():
                yield from strings(value, (*path, str(key)))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from strings(value, (*path, str(i)))
        else:
            yield path, node

    for path, value in strings(load_values()):
        if re.search(r"password|secret|token|access_?key", path[-1], re.I) and not path[-1].endswith("SecretName"):
            assert not value, f"{'/'.join(path)} holds a literal secret; name a Kubernetes Secret instead"


def test_dockerfile_installs_the_pinned_cpu_torch_and_runs_the_code_server_unprivileged():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    pinned = next(
        d
        for d in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
        if d.startswith("torch==")
    )
    assert f"ARG TORCH_VERSION={pinned.removeprefix('torch==')}" in dockerfile
    assert "ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu" in dockerfile
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.M)
    assert 'pip install ".[postgres,k8s]"' in dockerfile
    assert re.search(r"^USER 10001$", dockerfile, re.M)
    assert '"--port", "3030"' in dockerfile and '"crime_pipeline.definitions"' in dockerfile
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", "data_lake", ".dagster_home"} <= set(ignored)
