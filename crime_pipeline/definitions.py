"""The Dagster Definitions: every stage's assets, checks, sensors and schedules, and the resources."""

from __future__ import annotations

import dagster as dg

from crime_pipeline.defs import features, ingestion, models, open_data, reports, sensors, validation
from crime_pipeline.resources import LakeResource, OpenDataResource, TorchDeviceResource, default_lake_root


def build_definitions(lake_root: str | None = None) -> dg.Definitions:
    """Build the project's Definitions; `lake_root` overrides the lake (tests use a temp folder)."""
    return dg.Definitions(
        assets=[
            ingestion.raw_incidents, validation.validate_file, validation.incidents,
            features.incident_features, features.dataset_splits,
            models.baseline_model, models.mlp_model, models.mlp_weighted_model, models.gbdt_model,
            reports.model_evaluation, reports.figures, reports.crime_report,
        ],
        resources={
            "lake": LakeResource(root=lake_root or default_lake_root()),
            "torch_device": TorchDeviceResource(device=dg.EnvVar("CRIME_PIPELINE_DEVICE").get_value("auto")),
            "open_data": OpenDataResource(
                base_url=dg.EnvVar("CRIME_PIPELINE_SODA_URL").get_value("https://data.buffalony.gov"),
                dataset_id=dg.EnvVar("CRIME_PIPELINE_SODA_DATASET").get_value("d6g9-xbgu"),
                app_token=dg.EnvVar("CRIME_PIPELINE_SODA_APP_TOKEN").get_value(None),
            ),
        },
        jobs=[sensors.ingest_file_job, open_data.open_data_pull_job],
        sensors=[sensors.incoming_file_sensor, sensors.refresh_downstream],
        schedules=[open_data.open_data_schedule],
    )


defs = build_definitions()
