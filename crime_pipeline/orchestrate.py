"""In-process orchestration for `crime-pipeline run`: new files first, then everything below them.

Runs go to the persistent instance (DAGSTER_HOME), so they show in `dagster dev` like UI runs.
Every run starts by clearing what a killed run left behind (temporary files, runs stuck in STARTED
holding pool slots), retries files whose validation was never published, goes on past a file that
fails, and rebuilds below ingestion what Dagster itself reports stale. It exits non-zero while any
file is not validated, naming it.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Callable

import dagster as dg
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.storage.dagster_run import FINISHED_STATUSES, IN_PROGRESS_RUN_STATUSES

from crime_pipeline.defs.ingestion import SOURCE_FILE_TAG, incoming_files
from crime_pipeline.lib.lake.atomic import pid_alive, remove_stale_temp_files
from crime_pipeline.lib.lake.ledger import ingested, scan_incoming, unvalidated_files, validated_files
from crime_pipeline.lib.lake.layout import partition_key_for
from crime_pipeline.lib.ingest.raw_csv import sha256_file
from crime_pipeline.lib.lake.storage import is_remote

PER_FILE_ASSETS = ("raw_incidents", "validated_incidents", "incident_quarantine")
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
PID_TAG, HOST_TAG = "crime_pipeline/pid", "crime_pipeline/host"


def root_cause(error) -> str:
    """The first error under Dagster's wrappers ("Error occurred while executing op ..."): the
    user's problem, e.g. a `dg.Failure`'s description or the library error that stopped the step."""
    while error is not None and error.cls_name and error.cls_name.startswith("Dagster") and error.cause:
        error = error.cause
    return error.message.strip() if error else "failed"


def failure_messages(result: dg.ExecuteInProcessResult) -> list[str]:
    """The root-cause message of every failed step, for a clear CLI error."""
    return [f"{event.step_key}: {root_cause(event.step_failure_data.error)}"
            for event in result.all_events if event.is_step_failure]


def reap_dead_runs(instance: dg.DagsterInstance, echo: Callable[[str], None] = print) -> list[str]:
    """Mark failed the CLI runs on this host whose process is gone (killed), and free every pool slot
    still held by a finished run, so a killed run never blocks the next. Returns the run ids reaped."""
    reaped = []
    runs = instance.get_runs(filters=dg.RunsFilter(statuses=list(IN_PROGRESS_RUN_STATUSES),
                                                   tags={HOST_TAG: socket.gethostname()}))
    for run in runs:
        pid = int(run.tags.get(PID_TAG, "0"))
        if pid and pid != os.getpid() and not pid_alive(pid):
            instance.report_run_failed(run, f"the process running it (pid {pid}) is gone: it was killed")
            reaped.append(run.run_id)
            echo(f"run {run.run_id[:8]} was left running by a killed process; marked failed")
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        holders = storage.get_concurrency_run_ids()
        if holders:
            for record in instance.get_run_records(dg.RunsFilter(run_ids=list(holders), statuses=list(FINISHED_STATUSES))):
                storage.free_concurrency_slots_for_run(record.dagster_run.run_id)
    return reaped


def downstream_keys(defs: dg.Definitions) -> list[dg.AssetKey]:
    """Every unpartitioned asset below ingestion, upstream first: what may need rebuilding after it.
    (The open-data pull, upstream of ingestion, runs on its schedule, never from here.)"""
    graph = defs.resolve_asset_graph()
    below = {dg.AssetKey("raw_incidents")}
    for key in graph.toposorted_asset_keys:
        if graph.get(key).parent_keys & below:
            below.add(key)
    return [k for k in graph.toposorted_asset_keys if k in below and graph.get(k).partitions_def is None]


def failed_audits(defs: dg.Definitions, instance: dg.DagsterInstance) -> dict[dg.AssetKey, str]:
    """Unpartitioned assets whose latest blocking check failed: their published version is the old
    one, so they are audited again (the cause may be fixed); if they fail again, Dagster's blocking
    keeps everything below them from being built on the old version."""
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    graph = defs.resolve_asset_graph()
    checks = [k for k in graph.asset_check_keys if graph.get_check_spec(k).blocking
              and graph.get(k.asset_key).partitions_def is None]
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(checks)
    return {key.asset_key: f"its last blocking check ({key.name}) failed; auditing again"
            for key, record in latest.items() if record.status == AssetCheckExecutionRecordStatus.FAILED}


def stale_assets(defs: dg.Definitions, instance: dg.DagsterInstance, keys: list[dg.AssetKey]) -> dict[dg.AssetKey, str]:
    """Which of `keys` Dagster reports missing or stale (code version, input data versions), and why."""
    from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
    from dagster._time import get_current_datetime

    graph: AssetGraph = defs.resolve_asset_graph()
    view = AssetGraphView(temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
                          instance=instance, asset_graph=graph)
    resolver = CachingStaleStatusResolver(instance=instance, asset_graph=graph, loading_context=view)
    reasons: dict[dg.AssetKey, str] = {}
    for key in keys:
        status = resolver.get_status(key)
        if status == StaleStatus.MISSING:
            reasons[key] = "never materialized"
        elif status == StaleStatus.STALE:
            causes = resolver.get_stale_root_causes(key)
            reasons[key] = "; ".join(sorted({f"{c.asset_key.to_user_string()}: {c.reason}" for c in causes})) or "stale"
    return reasons


def run_pipeline(
    defs: dg.Definitions | None = None,
    instance: dg.DagsterInstance | None = None,
    force: bool = False,
    echo: Callable[[str], None] = print,
    downstream: list[str] | None = None,
) -> int:
    """Ingest and validate every new incoming file, then rebuild what depends on them. 0 = success.

    Downstream assets are rebuilt when Dagster reports them missing or stale; `downstream` limits
    that to the named assets (default: every unpartitioned asset).
    """
    from crime_pipeline.definitions import build_definitions

    defs = defs or build_definitions()
    instance = instance or dg.DagsterInstance.get()
    layout = defs.resources["lake"].layout
    assets = [*defs.assets, *(defs.asset_checks or [])]
    tags = {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}
    started = time.perf_counter()

    removed = remove_stale_temp_files(layout.root)
    if is_remote(layout.root):  # versions no pointer names: superseded, or a killed writer's
        if removed:
            echo(f"removed {len(removed)} unpublished or superseded versions from the object store")
    else:
        for path in removed:
            echo(f"removed {path.relative_to(layout.root)}, left half-written by a killed run")
    reap_dead_runs(instance, echo)
    new, notes = scan_incoming(layout, key_of=lambda path: partition_key_for(sha256_file(path)))
    for _, note in notes:
        echo(note)
    if not new and not ingested(layout):
        echo(f"nothing to do: no CSV files in {layout.incoming} (try `crime-pipeline generate`)")
        return 1
    failures: list[str] = []
    for item in new:
        echo(f"ingesting {item.path.name} as partition {item.key} ...")
        instance.add_dynamic_partitions(incoming_files.name, [item.key])
        result = dg.materialize(
            assets, selection=list(PER_FILE_ASSETS), partition_key=item.key, instance=instance,
            resources=defs.resources, tags={**tags, SOURCE_FILE_TAG: item.path.name}, raise_on_error=False,
            run_config=QUIET_LOGS,
        )
        if not result.success:
            failures += [f"{item.path.name}: {m}" for m in failure_messages(result)]

    keys = downstream_keys(defs)
    if downstream is not None:
        keys = [k for k in keys if k.to_user_string() in downstream]
    stale = {k: "--force" for k in keys} if force else {**failed_audits(defs, instance),
                                                        **stale_assets(defs, instance, keys)}
    graph = defs.resolve_asset_graph()
    for key in keys:  # upstream first: what lies below a rebuilt asset gets new inputs, so it is rebuilt too
        rebuilt_parents = sorted(p.to_user_string() for p in graph.get(key).parent_keys if p in stale)
        if key not in stale and rebuilt_parents:
            stale[key] = f"below {', '.join(rebuilt_parents)}, which is rebuilt"
    keys = [k for k in keys if k in stale]
    if keys and validated_files(layout):
        echo(f"rebuilding {len(keys)} downstream assets:")
        for key in keys:
            echo(f"  {key.to_user_string()}: {stale[key]}")
        result = dg.materialize(assets, selection=keys, instance=instance, resources=defs.resources,
                                tags=tags, raise_on_error=False, run_config=QUIET_LOGS)
        if not result.success:
            failures += failure_messages(result)
    elif not failures:
        echo("everything is up to date")
    for key, entry in unvalidated_files(layout).items():
        failures.append(f"{entry['file']} ({key}): read into the lake but its validation is not published; "
                        f"it is left out of every table until a run validates it")
    for message in dict.fromkeys(failures):
        echo(f"FAILED {message}")
    echo(f"done in {time.perf_counter() - started:.1f}s; lake: {layout.root}")
    from crime_pipeline.defs.reports import headline

    summary = headline(layout)
    if summary:
        echo(summary)
    return 1 if failures else 0
