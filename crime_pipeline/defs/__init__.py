"""The thin Dagster layer: one module per stage, each over pure functions in `crime_pipeline.lib`."""
