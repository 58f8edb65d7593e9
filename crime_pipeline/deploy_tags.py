"""What each step's pod asks Kubernetes for, in one place.

`dagster_k8s.k8s_job_executor` (CRIME_PIPELINE_EXECUTOR=k8s) runs every step in its own pod and
reads that pod's settings from the step's `dagster-k8s/config` op tag
(`dagster_k8s.job.get_user_defined_k8s_config(step.tags)`). The asset decorators in defs/ apply
one of the dicts below as `op_tags`; the other executors ignore the tag.

Sizes: requests fit 322,000 rows (the whole pipeline peaks at about 2 GB in one process, README);
limits fit 10 million rows, whose per-stage peaks the scale benchmark measured (ingest + validate
3.2 GB for one 10-million-row file, incidents 3.4, splits 3.5, an MLP 3.6, evaluation + figures +
report 4.1; README *Scale*).
A bigger data set needs bigger numbers here and nowhere else.
"""

from __future__ import annotations

import os

K8S_CONFIG_TAG = "dagster-k8s/config"

# The image for GPU steps: the same code with a CUDA build of torch (deploy/Dockerfile, TORCH_INDEX).
# Unset, they run the code location's image, whose CPU torch cannot use the GPU.
GPU_IMAGE_VAR = "CRIME_PIPELINE_GPU_IMAGE"
# The node label and taint a GPU node pool carries; change both to match the cluster's.
GPU_NODE_SELECTOR = {"nvidia.com/gpu.present": "true"}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def pod_tags(cpu: str, memory: str, memory_limit: str, gpus: int = 0) -> dict[str, str | dict]:
    """The op tags for a step pod with these requests; `gpus` > 0 also lands it on a GPU node."""
    resources: dict = {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory_limit}}
    config: dict = {"container_config": {"resources": resources}}
    if gpus:
        # An extended resource is requested through its limit (Kubernetes sets the request equal).
        resources["limits"]["nvidia.com/gpu"] = str(gpus)
        config["pod_spec_config"] = {"node_selector": GPU_NODE_SELECTOR, "tolerations": [GPU_TOLERATION]}
        if os.environ.get(GPU_IMAGE_VAR):
            config["container_config"]["image"] = os.environ[GPU_IMAGE_VAR]
    return {K8S_CONFIG_TAG: config}


# One dict per kind of step. A per-file step (raw_incidents, validate_file) is one partition: one
# pod per incoming file, so a backfill of many files spreads over many pods.
LIGHT = pod_tags(cpu="250m", memory="512Mi", memory_limit="1Gi")  # the pull, the report
PER_FILE = pod_tags(cpu="1", memory="2Gi", memory_limit="4Gi")  # one file: ingest, validate
TABLE = pod_tags(cpu="1", memory="2Gi", memory_limit="8Gi")  # the merged table, what reads it, figures
CPU_TRAINING = pod_tags(cpu="2", memory="2Gi", memory_limit="4Gi")  # scikit-learn, the seed's small MLP
GPU_TRAINING = pod_tags(cpu="2", memory="4Gi", memory_limit="8Gi", gpus=1)  # mlp_model (pool "gpu")
