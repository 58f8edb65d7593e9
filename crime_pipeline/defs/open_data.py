"""Scheduled pull of new and updated incidents from the open-data portal into raw/incoming."""

import os
from datetime import datetime, timezone

import dagster as dg

from crime_pipeline.lib.atomic import write_json, write_text
from crime_pipeline.lib.lake import read_json
from crime_pipeline.lib.soda import SodaError, fetch_updated_since, newest_update, rows_to_csv
from crime_pipeline.resources import LakeResource, OpenDataResource

DEFAULT_CRON = "0 6 * * *"  # daily, 06:00


@dg.op(description="Fetch incidents updated since the last successful pull; write them as one CSV into raw/incoming.")
def pull_open_data(context: dg.OpExecutionContext, lake: LakeResource, open_data: OpenDataResource) -> dg.Output:
    layout = lake.layout
    state_path = layout.ledger.parent / "open_data_pull.json"
    state = read_json(state_path, {})
    since = state.get("last_updated_at")
    context.log.info(f"asking {open_data.base_url} dataset {open_data.dataset_id} for rows updated after {since or 'the start'}")
    try:
        rows = fetch_updated_since(open_data.settings(), since, log=context.log.info)
    except SodaError as exc:
        raise dg.Failure(description=f"open-data pull failed, nothing written: {exc}") from exc
    if not rows:
        context.log.info("no new or updated incidents")
        return dg.Output(None, metadata={"rows": 0})
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = write_text(layout.incoming / f"open_data_pull_{stamp}.csv", rows_to_csv(rows))
    watermark = newest_update(rows, since)
    write_json(state_path, {"last_updated_at": watermark, "last_file": path.name, "rows": len(rows), "pulled_at": stamp})
    context.log.info(f"wrote {len(rows)} rows to {path.name}; the incoming-file sensor takes it from here")
    return dg.Output(path.name, metadata={"rows": len(rows), "file": path.name, "watermark": watermark})


@dg.job(description="Pull new incidents from the open-data portal into raw/incoming.")
def open_data_pull_job():
    pull_open_data()


open_data_schedule = dg.ScheduleDefinition(
    job=open_data_pull_job,
    cron_schedule=os.environ.get("CRIME_PIPELINE_PULL_CRON", DEFAULT_CRON),
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Daily pull from the open-data portal (cron from CRIME_PIPELINE_PULL_CRON). Off until enabled.",
)
