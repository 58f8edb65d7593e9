"""Where and when next: incident counts on a grid, hotspot forecasts, and their backtest (PAI/PEI).

By concern: grid (cells over a city's box), periods (week, day, 8-hour shift), events (incidents or
XYT files as one events frame), counts (the count matrix), base (Forecast, MethodSettings, the
no-peeking guard), methods (METHODS: last_period, long_run, kde, sepp, poisson_gbdt; kde.py, sepp.py,
learned.py), metrics (hit rate, PAI, PEI, Poisson deviance), backtest (rolling origin, leak evidence,
bootstrap intervals), hotspots (Getis-Ord Gi*), oracle (the generator's exact expectation); stages,
settings, figures and geojson serve the Dagster assets.
"""
