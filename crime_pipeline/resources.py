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


class OpenDataResource(dg.ConfigurableResource):
    """A Socrata-compatible open-data portal (Buffalo's by default)."""

    base_url: str = "https://data.buffalony.gov"
    dataset_id: str = "d6g9-xbgu"
    app_token: str | None = None
    page_size: int = 50_000
    max_retries: int = 4
    backoff_seconds: float = 1.0

    def settings(self):
        from crime_pipeline.lib.soda import SodaSettings

        return SodaSettings(self.base_url, self.dataset_id, self.app_token or None, self.page_size,
                            self.max_retries, self.backoff_seconds)
