"""Sensors: new incident files become partitions and runs; downstream assets refresh on their own."""

import json
import os

import dagster as dg

from crime_pipeline.defs.ingestion import incoming_files
from crime_pipeline.lib.ingest.raw_csv import sha256_file
from crime_pipeline.lib.lake.atomic import remove_stale_temp_files
from crime_pipeline.lib.lake.layout import partition_key_for
from crime_pipeline.lib.lake.ledger import scan_incoming
from crime_pipeline.lib.lake.storage import fingerprint
from crime_pipeline.resources import LakeResource
from crime_pipeline.runs import IN_PROGRESS_STATUSES, SOURCE_FILE_TAG, reap_dead_runs

# Sensors run by default; CRIME_PIPELINE_SENSORS=stopped starts them off (to drive runs by hand or in tests).
SENSOR_STATUS = (
    dg.DefaultSensorStatus.STOPPED
    if os.environ.get("CRIME_PIPELINE_SENSORS", "running") == "stopped"
    else dg.DefaultSensorStatus.RUNNING
)

MAX_RETRIES = 2

ingest_file_job = dg.define_asset_job(
    "ingest_file",
    tags={"dagster/max_runtime": str(60 * 60)},  # run monitoring ends a run stuck this long
    selection=dg.AssetSelection.assets("raw_incidents", "validated_incidents", "incident_quarantine"),
    description="Ingest and validate one incoming file (one partition).",
)


@dg.sensor(job=ingest_file_job, minimum_interval_seconds=30, default_status=SENSOR_STATUS)
def incoming_file_sensor(context: dg.SensorEvaluationContext, lake: LakeResource):
    """Watches data_lake/raw/incoming: each new file, by content hash, becomes its own partition and run.

    A file is taken when two consecutive ticks (30 s apart) see the same size and modification time,
    and it did not change while it was hashed (so a half-written file waits, even one whose writer
    paused for a tick). A file replaced by other bytes under the same name is new content: its own
    partition and run.
    The lake's ingestion ledger decides what is new, so the same bytes under another name, or a
    wiped DAGSTER_HOME, never ingest twice. Symlinks, unsafe names and non-CSV files are logged and
    left where they are, untouched.
    """
    layout = lake.layout
    for path in remove_stale_temp_files(layout.root):  # on an object store: versions no pointer names
        context.log.info(f"removed {path.name}, left half-written by a killed run or superseded")
    reap_dead_runs(context.instance, echo=context.log.warning)
    previous = json.loads(context.cursor) if context.cursor else {}
    seen: dict[str, dict] = {}

    def stable_key(path) -> str | None:
        """The partition key once size and mtime match the last tick (hash cached in the cursor)."""
        entry = fingerprint(path)  # size and mtime; size and ETag on an object store
        before = previous.get(path.name, {})
        seen[path.name] = entry
        if {k: before.get(k) for k in entry} != entry:
            context.log.info(f"{path.name}: new or still changing ({entry['size']} bytes); waiting one tick")
            return None
        if before.get("key"):
            entry["key"] = before["key"]
            return entry["key"]
        key = partition_key_for(sha256_file(path))
        if fingerprint(path) != entry:  # written to while it was hashed: the hash is of part of it
            seen[path.name] = fingerprint(path)
            context.log.info(f"{path.name}: changed while it was read; waiting one tick")
            return None
        entry["key"] = key
        return key

    new, notes = scan_incoming(layout, key_of=stable_key)
    for kind, note in notes:
        if kind == "refused":
            context.log.warning(note)
        elif kind in ("duplicate", "retry"):
            context.log.info(note)
    requests = []
    for f in new:
        # A file read before but never validated (a crash, a failed check) is retried, a few times,
        # never while a run for it is still going.
        runs = context.instance.get_run_records(dg.RunsFilter(tags={"dagster/partition": f.key}))
        if any(r.dagster_run.status in IN_PROGRESS_STATUSES for r in runs):
            continue
        if len(runs) > MAX_RETRIES:
            context.log.error(
                f"{f.path.name}: not validated after {len(runs)} runs; fix the file or run "
                "`crime-pipeline run` to see why"
            )
            continue
        requests.append(
            dg.RunRequest(
                run_key=f.key if not runs else f"{f.key}:retry{len(runs)}",
                partition_key=f.key,
                tags={SOURCE_FILE_TAG: f.path.name},
            )
        )
    new_keys = [f.key for f in new]
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[incoming_files.build_add_request(new_keys)] if new_keys else [],
        cursor=json.dumps(seen, sort_keys=True),
    )


refresh_downstream = dg.AutomationConditionSensorDefinition(
    "refresh_downstream",
    target=dg.AssetSelection.all(),
    default_status=SENSOR_STATUS,
    minimum_interval_seconds=30,
    run_tags={"dagster/max_runtime": str(3 * 60 * 60)},  # the whole refresh, training included
    description="Rematerializes what depends on newly ingested files (and only that), per the assets' "
    "automation conditions.",
)
