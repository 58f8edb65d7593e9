"""Resources: one per outside thing (the lake on disk or object storage, the torch device)."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from crime_pipeline.lib.cities.profiles import default_profile
from crime_pipeline.lib.lake.layout import LakeLayout
from crime_pipeline.lib.lake.storage import lake_path


class LakeResource(dg.ConfigurableResource):
    """The data lake: raw files, Parquet tables, quarantine, models and reports, in a local folder
    or under an s3:// URL (endpoint from CRIME_PIPELINE_S3_ENDPOINT, credentials from the AWS variables)."""

    root: str = Field(description="A local folder or s3://bucket/prefix.")

    @property
    def layout(self) -> LakeLayout:
        """The lake's paths; stages pass `layout.root` on (e.g. to `get_profile`, for `<lake>/cities/`)."""
        return LakeLayout(lake_path(self.root)).ensure()


class TorchDeviceResource(dg.ConfigurableResource):
    """Where PyTorch trains: 'auto' picks CUDA when a GPU is present, else the CPU."""

    device: str = "auto"

    def resolve(self) -> str:
        from crime_pipeline.lib.models.mlp.settings import select_device

        return select_device(self.device)


class OpenDataResource(dg.ConfigurableResource):
    """A Socrata-compatible open-data portal (Buffalo's by default), and how far to trust it.

    Pass `app_token` as an unresolved `dg.EnvVar` so Dagster stores and shows only the variable's
    name. The limits bound a misbehaving server; the defaults fit the real data set with room to spare.
    """

    base_url: str = default_profile().open_data.base_url  # the default city's portal (cities/buffalo.yaml)
    dataset_id: str = default_profile().open_data.dataset_id
    app_token: str | None = None
    page_size: int = 50_000
    max_retries: int = 4
    backoff_seconds: float = 1.0
    timeout_seconds: float = Field(default=120.0, description="One request, connect to last byte (s).")
    deadline_seconds: float = Field(default=3600.0, description="The whole pull, retries included (s).")
    max_page_bytes: int = Field(default=256 * 2**20, description="Largest response accepted for one page.")
    max_total_bytes: int = Field(default=2**30, description="Most bytes accepted over the whole pull.")
    max_pages: int = Field(default=100, description="Most pages in one pull; paging further is an error.")

    def settings(self):
        from crime_pipeline.lib.ingest.open_data import SodaSettings

        return SodaSettings(
            self.base_url,
            self.dataset_id,
            self.app_token or None,
            page_size=self.page_size,
            max_retries=self.max_retries,
            backoff_seconds=self.backoff_seconds,
            timeout_seconds=self.timeout_seconds,
            deadline_seconds=self.deadline_seconds,
            max_page_bytes=self.max_page_bytes,
            max_total_bytes=self.max_total_bytes,
            max_pages=self.max_pages,
        )
