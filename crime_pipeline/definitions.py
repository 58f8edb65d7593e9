"""The Dagster Definitions: everything under `crime_pipeline/defs/`, found the way `dg` projects
find it (`load_from_defs_folder`, configured by `[tool.dg]` in pyproject.toml), plus the resources.

Secrets reach resources as unresolved `EnvVar`s, so the UI and the run history show only their
names; settings that are not secret are read when the definitions load.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from crime_pipeline.lib.cities.profiles import default_profile
from crime_pipeline.lib.lake.layout import default_lake_root
from crime_pipeline.resources import LakeResource, OpenDataResource, TorchDeviceResource

SODA_TOKEN_VAR = "CRIME_PIPELINE_SODA_APP_TOKEN"


def project_resources(lake_root: str | None = None) -> dict:
    return {
        "lake": LakeResource(root=lake_root or default_lake_root()),
        "torch_device": TorchDeviceResource(device=dg.EnvVar("CRIME_PIPELINE_DEVICE").get_value("auto")),
        "open_data": OpenDataResource(
            base_url=dg.EnvVar("CRIME_PIPELINE_SODA_URL").get_value(default_profile().open_data.base_url),
            dataset_id=dg.EnvVar("CRIME_PIPELINE_SODA_DATASET").get_value(default_profile().open_data.dataset_id),
            # Unresolved, so Dagster stores and shows only the name; optional, so only when set.
            **({"app_token": dg.EnvVar(SODA_TOKEN_VAR)} if os.environ.get(SODA_TOKEN_VAR) else {}),
        ),
    }


def project_executor() -> dg.ExecutorDefinition:
    """In-process by default: runs launched from the UI or by the daemon then execute like
    `crime-pipeline run` (one process, steps in order, each heavy step with the machine's cores to
    itself) instead of one process per step that re-imports torch and scikit-learn and, started
    together, thrash a small machine (benchmarks/ui_vs_cli.py measures both).
    `CRIME_PIPELINE_EXECUTOR=multiprocess` runs steps in parallel processes on a bigger machine;
    `k8s` runs each step in its own Kubernetes pod (deploy/README.md), sized by its
    `dagster-k8s/config` op tag (crime_pipeline/deploy_tags.py)."""
    choice = os.environ.get("CRIME_PIPELINE_EXECUTOR", "in_process")
    if choice == "multiprocess":
        return dg.multiprocess_executor
    if choice == "k8s":
        try:
            from dagster_k8s import k8s_job_executor
        except ImportError as exc:
            raise dg.DagsterInvariantViolationError(
                "CRIME_PIPELINE_EXECUTOR=k8s needs dagster-k8s: pip install -e '.[k8s]'"
            ) from exc
        return k8s_job_executor
    if choice != "in_process":
        raise dg.DagsterInvariantViolationError(
            f"CRIME_PIPELINE_EXECUTOR={choice!r}: expected in_process, multiprocess or k8s"
        )
    return dg.in_process_executor


def build_definitions(lake_root: str | None = None) -> dg.Definitions:
    """The project's Definitions; `lake_root` overrides the lake (tests use a temporary folder)."""
    loaded = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    return dg.Definitions.merge(
        loaded, dg.Definitions(resources=project_resources(lake_root), executor=project_executor())
    )


defs = build_definitions()
