"""Pure functions the Dagster assets call. Nothing here imports dagster."""
