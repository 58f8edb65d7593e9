"""Real data through the forecast group: the Chicago shootings of 2022 and 2023 (XYT fixtures).

The files go where the forecast group takes one-class event files, `raw/events/` in the lake;
`forecast_counts` with `events_source: xyt` counts them on Chicago's grid, the test window is every
complete week of 2023, and each week's forecast is a partition fitted on what came before it. The
backtest updates as weeks arrive: scored weeks grow as partitions are added. Every method runs,
the learned one included (about 1 s of training a week on Chicago's 65,000 cells).
"""

from __future__ import annotations

import json
import shutil

import dagster as dg

from crime_pipeline.definitions import build_definitions
from crime_pipeline.defs.forecasts import WEEKLY
from crime_pipeline.forecast_runs import run_forecasts
from crime_pipeline.lib.lake.layout import LakeLayout
from crime_pipeline_tests.conftest import FIXTURES

METHODS = ["last_period", "long_run", "kde", "sepp", "poisson_gbdt"]
SETTINGS = {"events_source": "xyt", "city": "chicago", "test_from": "2023-01-02", "methods": METHODS}


def test_chicago_shootings_fit_on_2022_forecast_the_weeks_of_2023(tmp_path):
    lake = LakeLayout(tmp_path / "lake").ensure()
    (lake.root / "raw" / "events").mkdir(parents=True)
    for year in (2022, 2023):
        name = f"chicago_shootings_{year}_xyt.csv"
        shutil.copy(FIXTURES / name, lake.root / "raw" / "events" / name)
    defs = build_definitions(str(lake.root))
    assets = [*defs.assets, *(defs.asset_checks or [])]

    with dg.instance_for_test() as instance:

        def materialize(selection, partition=None, config=None):
            run_config = {"ops": {"forecast_counts": {"config": config}}} if config else None
            result = dg.materialize(
                assets,
                selection=selection,
                partition_key=partition,
                instance=instance,
                resources=defs.resources,
                run_config=run_config,
            )
            assert result.success
            return result

        materialize(["forecast_counts"], config=SETTINGS)
        setup = json.loads(lake.path("forecast_setup").read_text())
        assert setup["events"] == 2_124 + 1_809 and setup["events_outside_grid"] == 0 and not setup["generated"]
        weeks = setup["test_weeks"]
        assert weeks[0] == "2023-01-02" and len(weeks) >= 51  # every complete week of 2023

        backtests = []
        for arrived in (weeks[:2], weeks[2:3]):  # weeks arrive; the backtest is rerun after each
            for week in arrived:
                materialize(["hotspot_forecast"], partition=week)
            result = materialize(["forecast_backtest"])
            backtests.append(result.asset_materializations_for_node("forecast_backtest")[0].metadata)
        assert [b["weeks_scored"].value for b in backtests] == [2, 3]
        assert backtests[-1]["weeks_missing"].value == len(weeks) - 3

        doc = json.loads(lake.path("forecast_backtest").read_text())
        assert setup["first_event"].startswith("2022-01-0")  # the history starts with 2022
        # every forecast of 2023 used only events before its week (the leak gate's evidence) and was published
        for week in weeks[:3]:
            (record,) = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey("hotspot_forecast"), asset_partitions=[week]), limit=1
            ).records
            meta = record.asset_materialization.metadata
            assert meta["published"].value and all(v < week for v in meta["latest_event_used"].value.values())
        summary = {(r["method"], r["area_share"]): r for r in doc["summary"]}
        assert {m for m, _ in summary} == set(METHODS)  # no oracle on real data
        for r in summary.values():
            assert r["pai_low"] <= r["pai"] <= r["pai_high"] and 0 <= r["pei"] <= 1
        # shootings concentrate: the long-run hotspots alone catch several times their area's share
        assert summary[("long_run", 0.05)]["pai"] > 2
        assert doc["lead"]["method"] in METHODS

        # The README's command also forecasts this week, years after the last shooting: the learned model
        # has no event in its training window and falls back to the long-run mean; the run says the data is old.
        lines: list[str] = []
        assert run_forecasts(defs, instance, settings=SETTINGS, echo=lines.append, refresh_report=False) == 0, lines
        this_week = WEEKLY.get_last_partition_key()
        assert f"hotspot_forecast[{this_week}]: published" in "\n".join(lines)
        assert any(line.startswith("note: the latest event is 2023-12-") for line in lines), lines
