"""In-process orchestration for `crime-pipeline run`: new files first, then everything below them.

Runs go to the persistent instance (DAGSTER_HOME), so they show in `dagster dev` like UI runs.
"""

from __future__ import annotations

import time
from typing import Callable

import dagster as dg

from crime_pipeline.defs.ingestion import SOURCE_FILE_TAG, incoming_files
from crime_pipeline.lib.lake import ingested, partition_key_for, scan_incoming
from crime_pipeline.lib.reading import sha256_file

PER_FILE_ASSETS = ("raw_incidents", "validated_incidents", "incident_quarantine")
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def failure_messages(result: dg.ExecuteInProcessResult) -> list[str]:
    """The error message of every failed step, for a clear CLI error."""
    out = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            out.append(f"{event.step_key}: {error.message.strip() if error else 'failed'}")
    return out


def downstream_keys(defs: dg.Definitions) -> list[dg.AssetKey]:
    """Every unpartitioned asset, upstream first: what may need rebuilding after ingestion."""
    graph = defs.resolve_asset_graph()
    return [k for k in graph.toposorted_asset_keys if graph.get(k).partitions_def is None]


def _latest(instance: dg.DagsterInstance, key: dg.AssetKey):
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=1).records
    return records[0] if records else None


def stale_assets(defs: dg.Definitions, instance: dg.DagsterInstance, keys: list[dg.AssetKey]) -> dict[dg.AssetKey, str]:
    """Which of `keys` need rebuilding, and why: missing, built by other code, or older than an input.

    Everything downstream of a stale asset is stale too.
    """
    graph = defs.resolve_asset_graph()
    latest = {k: _latest(instance, k) for k in graph.get_all_asset_keys()}
    reasons: dict[dg.AssetKey, str] = {}
    for key in graph.toposorted_asset_keys:
        if key not in keys:
            continue
        node, record = graph.get(key), latest[key]
        newer_inputs = [p for p in node.parent_keys if latest.get(p) and record and latest[p].storage_id > record.storage_id]
        stale_inputs = [p for p in node.parent_keys if p in reasons]
        if record is None:
            reasons[key] = "never materialized"
        elif record.asset_materialization.tags.get("dagster/code_version") != node.code_version:
            reasons[key] = f"code changed (version {node.code_version})"
        elif newer_inputs or stale_inputs:
            reasons[key] = "input changed: " + ", ".join(p.to_user_string() for p in newer_inputs + stale_inputs)
    return reasons


def run_pipeline(
    defs: dg.Definitions | None = None,
    instance: dg.DagsterInstance | None = None,
    force: bool = False,
    echo: Callable[[str], None] = print,
    downstream: list[str] | None = None,
) -> int:
    """Ingest and validate every new incoming file, then rebuild what depends on them. 0 = success.

    Downstream assets are rebuilt when missing, built by older code, or older than an input;
    `downstream` limits that to the named assets (default: every unpartitioned asset).
    """
    from crime_pipeline.definitions import build_definitions

    defs = defs or build_definitions()
    instance = instance or dg.DagsterInstance.get()
    layout = defs.resources["lake"].layout
    assets = list(defs.assets)
    started = time.perf_counter()

    new, notes = scan_incoming(layout, key_of=lambda path: partition_key_for(sha256_file(path)))
    for _, note in notes:
        echo(note)
    if not new and not ingested(layout):
        echo(f"nothing to do: no CSV files in {layout.incoming} (try `crime-pipeline generate`)")
        return 1
    for item in new:
        echo(f"ingesting {item.path.name} as partition {item.key} ...")
        instance.add_dynamic_partitions(incoming_files.name, [item.key])
        result = dg.materialize(
            assets, selection=list(PER_FILE_ASSETS), partition_key=item.key, instance=instance,
            resources=defs.resources, tags={SOURCE_FILE_TAG: item.path.name}, raise_on_error=False,
            run_config=QUIET_LOGS,
        )
        if not result.success:
            for message in failure_messages(result):
                echo(f"FAILED {message}")
            return 1

    keys = downstream_keys(defs)
    if downstream is not None:
        keys = [k for k in keys if k.to_user_string() in downstream]
    stale = {k: "--force" for k in keys} if force else stale_assets(defs, instance, keys)
    keys = [k for k in keys if k in stale]
    if keys:
        echo(f"rebuilding {len(keys)} downstream assets:")
        for key in keys:
            echo(f"  {key.to_user_string()}: {stale[key]}")
        result = dg.materialize(assets, selection=keys, instance=instance, resources=defs.resources,
                                raise_on_error=False, run_config=QUIET_LOGS)
        if not result.success:
            for message in failure_messages(result):
                echo(f"FAILED {message}")
            return 1
    else:
        echo("everything is up to date")
    echo(f"done in {time.perf_counter() - started:.1f}s; lake: {layout.root}")
    from crime_pipeline.defs.reports import headline

    summary = headline(layout)
    if summary:
        echo(summary)
    return 0
