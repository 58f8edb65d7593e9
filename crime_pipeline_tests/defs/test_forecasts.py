"""The forecast group through Dagster: counts, weekly partitions, the backtest, the leak gate.

On a small generated lake (ingestion through `incidents` by `crime-pipeline run`'s logic), then
`crime-pipeline forecast --backfill`'s logic (forecast_runs.run_forecasts) in the same instance.
"""

from __future__ import annotations

import json
import shutil

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from crime_pipeline.definitions import build_definitions
from crime_pipeline.defs.forecasts import WEEKLY
from crime_pipeline.forecast_runs import run_forecasts
from crime_pipeline.lib.forecast import methods as forecast_methods
from crime_pipeline.lib.forecast.base import Forecast
from crime_pipeline_tests.conftest import FIXTURES
from crime_pipeline_tests.declared_reads import undeclared_reads

FAST_METHODS = ["last_period", "long_run", "kde"]


@pytest.fixture
def forecast_lake(pipeline):
    pipeline.generate("gen.csv", rows=4_000, seed=3)
    assert pipeline.run() == 0, pipeline.output
    return pipeline


def latest_check(instance, name: str) -> dg.AssetCheckEvaluation:
    key = dg.AssetCheckKey(dg.AssetKey("hotspot_forecast"), name)
    return instance.get_latest_asset_check_evaluation_record(key).evaluation


def test_backfill_then_backtest_in_the_ui_shape(forecast_lake):
    defs, instance, lake = forecast_lake.defs, forecast_lake.instance, forecast_lake.lake
    out: list[str] = []
    settings = {"test_weeks": 3, "methods": FAST_METHODS, "cell_m": 300.0}
    code = run_forecasts(defs, instance, backfill=True, settings=settings, this_week=False, echo=out.append)
    assert code == 0, out
    setup = json.loads(lake.path("forecast_setup").read_text())
    assert setup["generated"] and len(setup["test_weeks"]) == 3
    # every test week is a materialized partition of hotspot_forecast whose leak check passed
    done = instance.get_materialized_partitions(dg.AssetKey("hotspot_forecast"))
    assert done == set(setup["test_weeks"])
    assert latest_check(instance, "no_future_events_used").passed
    record = instance.fetch_materializations(dg.AssetKey("forecast_backtest"), limit=1).records[0]
    meta = record.asset_materialization.metadata
    table = meta["methods"].value
    assert all(f"| {m} |" in table for m in FAST_METHODS) and "PAI 1%" in table
    assert meta["weeks_scored"].value == 3 and meta["weeks_missing"].value == 0
    # on generated data the oracle's row is there, marked as the best achievable, and never leads
    assert "| oracle (best achievable) |" in table and meta["leader_at_1pct"].value in FAST_METHODS
    geo = json.loads(lake.path("forecast_flagged_cells").read_text())
    assert {f["properties"]["method"] for f in geo["features"]} >= set(FAST_METHODS)
    assert "forecast_backtest: 3 weeks scored" in "\n".join(out)
    # every file the forecast assets read is published by a declared input (as test_gates checks the rest)
    forecast = dg.AssetSelection.groups("forecast").resolve(defs.resolve_asset_graph())
    assert undeclared_reads(defs, instance, forecast)[0] == []
    assert not any(line.startswith("crime_report") for line in out)  # no report built here: none refreshed


def test_the_forecast_refreshes_a_report_built_before_with_its_section(trained_run):
    """`crime-pipeline run` then `crime-pipeline forecast`: the report gains the forecast section at once."""
    lake, defs, instance = trained_run
    assert 'id="hotspot-forecasts"' not in lake.report_file("report.html").read_text()
    out: list[str] = []
    settings = {"test_weeks": 2, "methods": FAST_METHODS, "cell_m": 300.0}
    assert run_forecasts(defs, instance, backfill=True, settings=settings, this_week=False, echo=out.append) == 0, out
    assert "crime_report: refreshed with the forecast section" in out
    assert 'id="hotspot-forecasts"' in lake.report_file("report.html").read_text()


def test_partitions_are_weeks_in_the_city_time_zone():
    assert WEEKLY.timezone == "America/New_York"
    assert WEEKLY.get_first_partition_key() == "2009-01-05"  # a Monday
    last = pd.Timestamp(WEEKLY.get_last_partition_key())
    assert last.day_of_week == 0 and pd.Timestamp.now(tz="America/New_York").tz_localize(None) - last < pd.Timedelta(
        days=7
    )


def test_a_planted_leak_turns_the_blocking_check_red(forecast_lake, monkeypatch):
    defs, instance, lake = forecast_lake.defs, forecast_lake.instance, forecast_lake.lake

    def peeking(history, grid, issue_time, period, settings) -> Forecast:
        everything = pd.read_parquet(lake.path("forecast_events"))  # its own week included: a leak
        cells = grid.cell_of(everything["lat"], everything["lon"])
        expected = np.bincount(cells[cells >= 0], minlength=grid.n_cells).astype(float)
        return Forecast("peeking", issue_time, expected, everything["time"].max(), {})

    monkeypatch.setitem(forecast_methods.METHODS, "peeking", peeking)
    out: list[str] = []
    settings = {"test_weeks": 1, "methods": ["long_run", "peeking"], "cell_m": 300.0}
    code = run_forecasts(defs, instance, backfill=True, settings=settings, this_week=False, echo=out.append)
    assert code == 1
    evaluation = latest_check(instance, "no_future_events_used")
    assert not evaluation.passed
    assert [leak["method"] for leak in evaluation.metadata["leaks"].value] == ["peeking"]
    week = json.loads(lake.path("forecast_setup").read_text())["test_weeks"][0]
    assert not lake.path("hotspot_forecast", week=week).exists()  # not published: the backtest cannot read it
    assert any("forecast_backtest" in line and "no forecast is published" in line for line in out), out


@pytest.mark.e2e
def test_new_counts_request_this_weeks_forecast_only(tmp_path):
    """Automation (the daemon's rules): when forecast_counts changes, the current week's partition is
    requested, not the past weeks (they are a backfill's), nothing retrains a model, and a backtest
    never built is not started (forecasts are opt-in: with no week of the test window forecast, it
    could only fail). New incidents on a lake whose forecasts were never built request no forecast
    at all: e2e/test_incremental.py's exact list of what a new file refreshes."""
    lake = tmp_path / "lake"
    (lake / "raw" / "events").mkdir(parents=True)
    shutil.copy(FIXTURES / "chicago_shootings_2023_xyt.csv", lake / "raw" / "events" / "shootings_2023_xyt.csv")
    defs = build_definitions(str(lake))
    forecast = dg.AssetSelection.groups("forecast")
    config = {"ops": {"forecast_counts": {"config": {"events_source": "xyt", "city": "chicago"}}}}
    with dg.instance_for_test() as instance:
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=forecast)
        assets = [*defs.assets, *(defs.asset_checks or [])]
        dg.materialize(
            assets, selection=["forecast_counts"], instance=instance, resources=defs.resources, run_config=config
        )
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, asset_selection=dg.AssetSelection.all(), cursor=first.cursor
        )
    requested = {
        spec.key.to_user_string(): result.get_requested_partitions(spec.key)
        for spec in defs.resolve_all_asset_specs()
        if result.get_num_requested(spec.key)
    }
    assert requested.get("hotspot_forecast") == {WEEKLY.get_last_partition_key()}
    assert "forecast_backtest" not in requested
    assert not any(name.endswith("_model") for name in requested)
