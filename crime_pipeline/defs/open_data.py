"""The open-data pull: new and updated incidents from the portal, written into raw/incoming.

An asset upstream of ingestion, so the lineage graph shows where incoming files come from. A
daily schedule (Buffalo time) materializes it; the incoming-file sensor takes the file from there.
"""

import os
from datetime import UTC, datetime, timedelta

import dagster as dg

from crime_pipeline.deploy_tags import LIGHT
from crime_pipeline.lib.cities.profiles import default_profile
from crime_pipeline.lib.ingest.open_data import SodaError, fetch_updated_since, newest_update, rows_to_csv
from crime_pipeline.lib.lake.atomic import write_json, write_text
from crime_pipeline.lib.lake.documents import read_json
from crime_pipeline.resources import LakeResource, OpenDataResource

DEFAULT_CRON = "0 6 * * *"  # daily, 06:00 Buffalo time
PULL_TIMEZONE = default_profile().timezone  # America/New_York: the default city's (cities/buffalo.yaml)
PULL_CRON = os.environ.get("CRIME_PIPELINE_PULL_CRON", DEFAULT_CRON)


def freshness_after_pull() -> dg.FreshnessPolicy:
    """Matches the daily pull: a warning when a day's pull brought nothing new (or did not run), a
    failure after two days without a refresh."""
    return dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=50), warn_window=timedelta(hours=26))


@dg.asset(group_name="open_data", kinds={"socrata", "csv"}, code_version="1", op_tags=LIGHT)
def open_data_pull(
    context: dg.AssetExecutionContext, lake: LakeResource, open_data: OpenDataResource
) -> dg.MaterializeResult:
    """Incidents updated on the open-data portal since the last successful pull, as one CSV in
    raw/incoming (where the incoming-file sensor ingests it). The watermark (the newest
    `:updated_at` seen) and the pages fetched are recorded; a failed pull writes nothing.
    """
    layout = lake.layout
    state_path = layout.open_data_pull_state
    state = read_json(state_path, {})
    since = state.get("last_updated_at")
    context.log.info(
        f"asking {open_data.base_url} dataset {open_data.dataset_id} for rows updated after {since or 'the start'}"
    )
    pages: list[int] = []
    try:
        rows = fetch_updated_since(
            open_data.settings(), since, log=context.log.info, on_page=lambda offset, n: pages.append(n)
        )
    except SodaError as exc:
        raise dg.Failure(description=f"open-data pull failed, nothing written: {exc}") from exc
    meta = {"rows": len(rows), "pages_fetched": len(pages), "watermark_before": since or "none"}
    if not rows:
        context.log.info("no new or updated incidents")
        return dg.MaterializeResult(
            metadata={**meta, "watermark": since or "none"}, data_version=dg.DataVersion(since or "none")
        )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = write_text(layout.open_data_pull_file(stamp), rows_to_csv(rows))
    watermark = newest_update(rows, since)
    write_json(
        state_path, {"last_updated_at": watermark, "last_file": path.name, "rows": len(rows), "pulled_at": stamp}
    )
    context.log.info(f"wrote {len(rows)} rows to {path.name}; the incoming-file sensor takes it from here")
    return dg.MaterializeResult(
        metadata={**meta, "watermark": watermark, "file": dg.MetadataValue.path(str(path))},
        data_version=dg.DataVersion(watermark),
    )


open_data_pull_job = dg.define_asset_job(
    "open_data_pull_job",
    selection=[open_data_pull],
    description="Pull new incidents from the open-data portal into raw/incoming.",
)

open_data_schedule = dg.ScheduleDefinition(
    job=open_data_pull_job,
    cron_schedule=PULL_CRON,
    execution_timezone=PULL_TIMEZONE,
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Daily pull from the open-data portal at 06:00 Buffalo time (cron from CRIME_PIPELINE_PULL_CRON). "
    "Off until enabled.",
)
