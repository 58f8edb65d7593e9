"""Resources: one per outside thing (the lake on disk, the torch device)."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from crime_pipeline.lib.lake import LakeLayout

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def default_lake_root() -> str:
    """`CRIME_PIPELINE_LAKE`, else `data_lake/` next to the project (else in the working directory)."""
    if os.environ.get("CRIME_PIPELINE_LAKE"):
        return os.environ["CRIME_PIPELINE_LAKE"]
    base = PROJECT_ROOT if (PROJECT_ROOT / "pyproject.toml").exists() else Path.cwd()
    return str(base / "data_lake")


class LakeResource(dg.ConfigurableResource):
    """The data lake on local disk: raw files, Parquet tables, quarantine, models and reports."""

    root: str

    @property
    def layout(self) -> LakeLayout:
        return LakeLayout(Path(self.root)).ensure()


class TorchDeviceResource(dg.ConfigurableResource):
    """Where PyTorch trains: 'auto' picks CUDA when a GPU is present, else the CPU."""

    device: str = "auto"

    def resolve(self) -> str:
        from crime_pipeline.lib.mlp import select_device

        return select_device(self.device)
