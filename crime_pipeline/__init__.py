"""crime_pipeline: Dagster assets for honest predictive analysis of Buffalo, NY crime incidents."""
