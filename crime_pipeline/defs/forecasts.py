"""Forecasts: where and when next. Counts on a grid, a weekly hotspot forecast, and its backtest.

The work is lib/forecast/stages.py (`build_forecast_counts`, `issue_forecast`) and
lib/forecast/weekly_scores.py (`score_backtest`); the assets turn their results into Dagster results.
`hotspot_forecast` is partitioned by week in the default city's time zone: each partition is the
forecast issued at that week's start (Monday 00:00). The backtest is a backfill of the test window's
partitions followed by `forecast_backtest`. None of these assets depends on the models: a refresh
never retrains the type classifiers.
"""

import dagster as dg

from crime_pipeline.defs.automation_conditions import MERGE_WHEN_ANY_FILE_CHANGES, REFRESH_WHEN_UPSTREAM_CHANGES
from crime_pipeline.defs.config import config_from_settings, first_paragraph, settings_of
from crime_pipeline.defs.lake_io import declared_reads, reads_metadata, stage_failures
from crime_pipeline.defs.metadata import content_version
from crime_pipeline.deploy_tags import TABLE
from crime_pipeline.lib.cities.profiles import default_profile
from crime_pipeline.lib.forecast import stages as forecast_stages
from crime_pipeline.lib.forecast import weekly_scores
from crime_pipeline.lib.forecast.settings import ForecastSettings
from crime_pipeline.lib.lake.atomic import rejected_path
from crime_pipeline.resources import LakeResource

# The first Monday of 2009: the generator's first year, and where the portal's reliable data starts.
FORECAST_START = "2009-01-05"
# Monday-start weeks in the default city's zone; end_offset=1 makes the current week a partition at
# its start (the forecast is issued then, not when the week is over).
WEEKLY = dg.WeeklyPartitionsDefinition(
    start_date=FORECAST_START, timezone=default_profile().timezone, day_offset=1, end_offset=1
)
METHODS_TABLE_SHARES = (0.01, 0.02, 0.05)

# Forecasts are opt-in: automation keeps counts and backtest fresh once a user has built them
# (`crime-pipeline forecast` or the UI), and never starts them on a lake that does not use them (a
# backtest with no week forecast yet could only fail). This week's partition follows its counts.
ONCE_BUILT = ~dg.AutomationCondition.missing()
COUNTS_REFRESH = (REFRESH_WHEN_UPSTREAM_CHANGES & ONCE_BUILT).with_label("eager, once built (forecasts are opt-in)")
BACKTEST_REFRESH = (MERGE_WHEN_ANY_FILE_CHANGES & ONCE_BUILT).with_label(
    "eager over weeks, once built: a week not yet forecast must not freeze it"
)

# The run config of forecast_counts; its description is ForecastSettings' first paragraph.
ForecastConfig = config_from_settings("ForecastConfig", first_paragraph(ForecastSettings), ForecastSettings)


@dg.asset(
    deps=["incidents"],
    group_name="forecast",
    kinds={"pandas", "parquet"},
    code_version="1",
    automation_condition=COUNTS_REFRESH,
    op_tags=TABLE,
)
def forecast_counts(context: dg.AssetExecutionContext, config: ForecastConfig, lake: LakeResource):
    """Events per grid cell per week (or day, or 8-hour shift) over the city's box, and the test window.

    From `incidents` (all crime, or the types in `labels`), or from one-class XYT event files in
    `raw/events/` (`events_source: xyt`). Incidents whose time of day is the export's default noon
    count in their day and week, never in a shift. Writes the events, the non-zero counts and
    `forecast/setup.json` (settings, grid, event range, the test weeks), which the forecast and the
    backtest read, so the three agree.
    """
    reads = declared_reads(context, lake, external=True)
    settings = settings_of(config, ForecastSettings)
    with stage_failures():
        built = forecast_stages.build_forecast_counts(reads, settings, log=context.log)
    setup, layout = built.setup, lake.layout
    return dg.MaterializeResult(
        metadata={
            "events": built.events,
            "events_outside_grid": built.outside,
            "time_unknown": setup["time_unknown"],
            "cells": setup["cells"],
            "cell_m": settings.cell_m,
            "periods": built.periods,
            "first_event": setup["first_event"],
            "last_event": setup["last_event"],
            "test_weeks": f"{len(setup['test_weeks'])}: "
            + " .. ".join(setup["test_weeks"][:1] + setup["test_weeks"][-1:]),
            "generated": setup["generated"],
            "dagster/row_count": dg.MetadataValue.int(len(built.nonzero)),
            **reads_metadata(reads),
        },
        data_version=content_version(layout.path("forecast_events"), layout.path("forecast_setup")),
    )


@dg.asset(
    deps=[forecast_counts],
    partitions_def=WEEKLY,
    group_name="forecast",
    kinds={"pandas", "parquet"},
    code_version="1",
    automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,  # the latest week only: eager() keeps to it
    op_tags=TABLE,
    check_specs=[
        dg.AssetCheckSpec(
            "no_future_events_used",
            asset="hotspot_forecast",
            blocking=True,
            description="On the week's file read back from disk: every method's recorded latest event used "
            "is before the issue time (the week's start). A forecast that saw its own week is not published.",
        )
    ],
)
def hotspot_forecast(context: dg.AssetExecutionContext, lake: LakeResource):
    """The forecast issued at this week's start: every method's expected count per cell for the week.

    Methods (lib/forecast/methods.py): last week's counts, long-run counts, time-decayed kernel density,
    a self-exciting point process and gradient-boosted Poisson trees, each fitted only on events before
    the issue time; on generated data also the oracle (the generator's exact expected counts). One
    Parquet per week: cell, method, expected, rank, flagged_1/2/5 (top 1/2/5% of cells), and the leak
    evidence (latest_event_used). Staged, audited, published only when no method used a later event.
    """
    reads = declared_reads(context, lake, external=True)
    week = context.partition_key
    with stage_failures():
        oracle = forecast_stages.oracle_for(reads)
        issued = forecast_stages.issue_forecast(reads, week, oracle=oracle, log=context.log)
    yield dg.MaterializeResult(
        metadata={
            "issue_time": week,
            "history_events": issued.history,
            "methods": ", ".join(issued.seconds),
            "fit_seconds": dg.MetadataValue.json({k: round(v, 3) for k, v in issued.seconds.items()}),
            "params": dg.MetadataValue.json(issued.params),
            "latest_event_used": dg.MetadataValue.json(issued.evidence),
            "published": issued.published,
            "path": dg.MetadataValue.path(str(issued.path)),
            **reads_metadata(reads),
        },
        data_version=content_version(issued.path if issued.published else rejected_path(issued.path)),
    )
    yield dg.AssetCheckResult(
        check_name="no_future_events_used",
        passed=issued.published,
        metadata={
            "issue_time": week,
            "leaks": dg.MetadataValue.json(issued.leaks),
            "latest_event_used": dg.MetadataValue.json(issued.evidence),
        },
    )


def methods_table(summary, generated: bool) -> str:
    """Methods x PAI/PEI at 1/2/5% of the area, with intervals: the table the UI shows."""
    lines = [
        "| method | " + " | ".join(f"PAI {s:.0%} | PEI {s:.0%}" for s in METHODS_TABLE_SHARES) + " |",
        "|---" * (1 + 2 * len(METHODS_TABLE_SHARES)) + "|",
    ]
    for method, part in summary.groupby("method", sort=True):
        by_share = part.set_index("area_share")
        cells = []
        for share in METHODS_TABLE_SHARES:
            r = by_share.loc[share]
            cells += [
                f"{r.pai:.2f} [{r.pai_low:.2f}, {r.pai_high:.2f}]",
                f"{r.pei:.2f} [{r.pei_low:.2f}, {r.pei_high:.2f}]",
            ]
        name = f"{method} (best achievable)" if method == forecast_stages.ORACLE and generated else method
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


@dg.asset(
    deps=[hotspot_forecast, forecast_counts],
    group_name="forecast",
    kinds={"pandas", "parquet"},
    code_version="1",
    # Any week published or refreshed rescores the window.
    automation_condition=BACKTEST_REFRESH,
    op_tags=TABLE,
)
def forecast_backtest(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    """Rolling-origin backtest: the published weekly forecasts of the test window scored on their weeks.

    For each test week (the last 26 complete weeks by default), every method's forecast, fitted on what
    came before, is scored against the actual counts: hit rate, PAI (share of incidents / share of
    area) and PEI (caught / the most the same area could catch) at 1%, 2% and 5% of the area, and the
    Poisson deviance per cell, with 95% bootstrap intervals over weeks; on generated data the oracle's
    row is the best achievable. Draws the latest forecast's map beside the Gi* hotspots, the PAI-vs-area
    curves, and writes the flagged cells as GeoJSON. Weeks without a published forecast are named.
    """
    reads = declared_reads(context, lake)
    with stage_failures():
        scored = weekly_scores.score_backtest(reads, log=context.log)
    setup = reads.json(lake.layout.path("forecast_setup"))
    lead = scored.lead
    return dg.MaterializeResult(
        metadata={
            "methods": dg.MetadataValue.md(methods_table(scored.summary, setup["generated"])),
            "weeks_scored": len(scored.weeks_scored),
            "weeks_missing": len(scored.weeks_missing),
            "leader_at_1pct": lead.get("method", ""),
            "lead": dg.MetadataValue.json(lead),
            "latest_week": scored.latest_week or "",
            "forecast_map": dg.MetadataValue.path(str(scored.figures["map"])),
            "pai_curves": dg.MetadataValue.path(str(scored.figures["curves"])),
            "flagged_cells": dg.MetadataValue.path(str(scored.geojson)),
            **reads_metadata(reads),
        },
        data_version=content_version(lake.layout.path("forecast_scores")),
    )


forecast_week_job = dg.define_asset_job(
    "forecast_week_job",
    selection=[hotspot_forecast],
    partitions_def=WEEKLY,
    description="Issue one week's hotspot forecast (this week's, from the schedule).",
)

# Monday 01:00 in the city's time zone: the week's forecast, on whatever incidents have arrived.
forecast_schedule = dg.build_schedule_from_partitioned_job(
    forecast_week_job,
    hour_of_day=1,
    description="This week's hotspot forecast, every Monday at 01:00 in the city's time zone. Off until enabled.",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
