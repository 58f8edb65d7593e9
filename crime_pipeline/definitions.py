"""The Dagster Definitions: every stage's assets, checks, sensors and schedules, and the resources."""

from __future__ import annotations

import dagster as dg

from crime_pipeline.defs import ingestion, validation
from crime_pipeline.resources import LakeResource, default_lake_root


def build_definitions(lake_root: str | None = None) -> dg.Definitions:
    """Build the project's Definitions; `lake_root` overrides the lake (tests use a temp folder)."""
    return dg.Definitions(
        assets=[ingestion.raw_incidents, validation.validate_file, validation.incidents],
        resources={"lake": LakeResource(root=lake_root or default_lake_root())},
    )


defs = build_definitions()
