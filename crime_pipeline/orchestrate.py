"""In-process orchestration for `crime-pipeline run`: new files first, then what changed below them.

Runs go to the persistent instance (DAGSTER_HOME), so they show in `dagster dev` like UI runs.
Every run starts by clearing what a killed run left behind (temporary files, runs stuck in STARTED
holding pool slots), retries files whose validation was never published, and goes on past a file
that fails. It exits non-zero while any file is not validated, naming it.

What it rebuilds below ingestion (the unpartitioned assets, upstream first), with the reason printed:
- what the daemon would: the assets' automation conditions (defs/automation_conditions.py: eager on
  new upstream data or a new code version, once upstream blocking checks pass), evaluated by
  `dg.evaluate_automation_conditions` on the CLI's own cursor, kept between runs in the instance's
  folder (DAGSTER_HOME/CURSOR_FILE, beside the storage whose event ids it holds) as the daemon keeps
  its tick cursor ("requested by its automation condition");
- what the UI shows stale, read from the instance's records: the same rules, for what a tick cannot
  always see (a first run or a lost cursor: eager() requests an asset only when it *becomes*
  missing; a change in the tick after one that requested the asset, which Dagster counts as
  handled; a run that was killed, failed or limited by `downstream`): no materialization ("never
  materialized"); a code_version other than the one its latest materialization recorded ("code
  version 2 -> 3"); a dependency whose data version is not the one the asset recorded consuming (a
  partitioned dependency: any partition changed since) ("new data in X"; a rebuild from the same
  data keeps its data version, so it counts not, as in the rules);
- an asset whose latest blocking check failed, audited again (the cause may be fixed; if it fails
  again, Dagster's blocking keeps everything below it off the old version);
- everything below an asset rebuilt ("below X, which is rebuilt").
`--force` rebuilds them all; `downstream` limits the rebuild to the assets it names.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from crime_pipeline.defs.ingestion import incoming_files
from crime_pipeline.lib.ingest.raw_csv import sha256_file
from crime_pipeline.lib.lake.atomic import remove_stale_temp_files, write_text
from crime_pipeline.lib.lake.layout import partition_key_for
from crime_pipeline.lib.lake.ledger import ingested, scan_incoming, unvalidated_files, validated_files
from crime_pipeline.lib.lake.storage import is_remote
from crime_pipeline.lib.reports.headline import headline
from crime_pipeline.runs import QUIET_LOGS, SOURCE_FILE_TAG, process_tags, reap_dead_runs

PER_FILE_ASSETS = ("raw_incidents", "validated_incidents", "incident_quarantine")
FORECAST_GROUP = "forecast"  # not rebuilt by `run` (see downstream_keys)
CURSOR_FILE = "crime_pipeline_automation_cursor.json"
DATA_VERSION_TAG = "dagster/data_version"  # where Dagster records a materialization's data version
INPUT_DATA_VERSION_TAG = "dagster/input_data_version/"  # + a dependency's key: the version it consumed


def root_cause(error) -> str:
    """The first error under Dagster's wrappers ("Error occurred while executing op ..."): the
    user's problem, e.g. a `dg.Failure`'s description or the library error that stopped the step."""
    while error is not None and error.cls_name and error.cls_name.startswith("Dagster") and error.cause:
        error = error.cause
    return error.message.strip() if error else "failed"


def failure_messages(result: dg.ExecuteInProcessResult) -> list[str]:
    """The root-cause message of every failed step, for a clear CLI error."""
    return [
        f"{event.step_key}: {root_cause(event.step_failure_data.error)}"
        for event in result.all_events
        if event.is_step_failure
    ]


def upstream_first(parents: dict[dg.AssetKey, set[dg.AssetKey]]) -> list[dg.AssetKey]:
    """The keys level by level, each after its parents (alphabetical within a level)."""
    order: list[dg.AssetKey] = []
    while len(order) < len(parents):
        done = set(order)
        level = sorted(
            (k for k in parents if k not in done and all(p in done or p not in parents for p in parents[k])),
            key=lambda k: k.to_user_string(),
        )
        if not level:
            raise ValueError("the asset graph has a cycle")
        order += level
    return order


def asset_parents(defs: dg.Definitions) -> dict[dg.AssetKey, set[dg.AssetKey]]:
    return {spec.key: {dep.asset_key for dep in spec.deps} for spec in defs.resolve_all_asset_specs()}


def downstream_keys(defs: dg.Definitions) -> list[dg.AssetKey]:
    """Every unpartitioned asset below ingestion, upstream first: what may need rebuilding after it.
    (The open-data pull, upstream of ingestion, runs on its schedule, never from here; the forecast
    group runs from `crime-pipeline forecast`, its schedule and automation: its backtest needs weekly
    partitions that `run` does not issue.)"""
    specs = {spec.key: spec for spec in defs.resolve_all_asset_specs()}
    parents = asset_parents(defs)
    below = {dg.AssetKey("raw_incidents")}
    for key in upstream_first(parents):
        if parents[key] & below:
            below.add(key)
    return [
        k
        for k in upstream_first(parents)
        if k in below and specs[k].partitions_def is None and specs[k].group_name != FORECAST_GROUP
    ]


def failed_audits(
    defs: dg.Definitions, instance: dg.DagsterInstance, keys: list[dg.AssetKey]
) -> dict[dg.AssetKey, str]:
    """Those of `keys` whose latest blocking check failed: their published version is the old one."""
    specs = [spec for d in [*defs.assets, *(defs.asset_checks or [])] for spec in getattr(d, "check_specs", ())]
    reasons = {}
    for spec in sorted((s for s in specs if s.blocking and s.asset_key in keys), key=lambda s: s.name):
        record = instance.get_latest_asset_check_evaluation_record(spec.key)
        evaluation = record.evaluation if record else None  # "planned" until it ran (or a killed run)
        if isinstance(evaluation, dg.AssetCheckEvaluation) and not evaluation.passed:
            reasons[spec.asset_key] = f"its last blocking check ({spec.name}) failed; auditing again"
    return reasons


def data_version_at(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None, before: int) -> str | None:
    """The data version of the asset (or one partition) as it was before storage id `before`."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=key, asset_partitions=[partition] if partition else None, before_storage_id=before
        ),
        limit=1,
    ).records
    return records[0].asset_materialization.tags.get(DATA_VERSION_TAG) if records else None


def has_new_data(instance: dg.DagsterInstance, parent: dg.AssetKey, since: int) -> bool:
    """Whether any partition of `parent` was materialized after storage id `since` with a data
    version other than the one it had then."""
    latest: dict[str | None, str | None] = {}  # newest first: the first record of a partition is its current one
    for record in instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=parent, after_storage_id=since), limit=10_000
    ).records:
        latest.setdefault(record.partition_key, record.asset_materialization.tags.get(DATA_VERSION_TAG))
    return any(
        version != data_version_at(instance, parent, partition, since + 1) for partition, version in latest.items()
    )


def new_data_in(instance: dg.DagsterInstance, parent: dg.AssetKey, partitioned: bool, child) -> bool:
    """Whether `parent` holds other data than `child` (the child's latest materialization record) was
    built from. An unpartitioned parent: its current data version against the one the child recorded
    consuming (exact even when runs overlap); a partitioned one: any partition changed since."""
    consumed = child.asset_materialization.tags.get(INPUT_DATA_VERSION_TAG + parent.to_user_string())
    if partitioned or consumed is None:
        return has_new_data(instance, parent, child.storage_id)
    latest = instance.fetch_materializations(parent, limit=1).records
    return bool(latest) and latest[0].asset_materialization.tags.get(DATA_VERSION_TAG) != consumed


def stale_facts(defs: dg.Definitions, instance: dg.DagsterInstance, keys: list[dg.AssetKey]) -> dict[dg.AssetKey, str]:
    """Which of `keys` the instance's records show missing, built by other code, or built from data
    that has changed since, and why."""
    specs = {spec.key: spec for spec in defs.resolve_all_asset_specs()}
    recorded_code = instance.get_latest_materialization_code_versions(keys)
    reasons: dict[dg.AssetKey, str] = {}
    for key in keys:
        records = instance.fetch_materializations(key, limit=1).records
        code = specs[key].code_version
        if not records:
            reasons[key] = "never materialized"
        elif code is not None and recorded_code.get(key) != code:
            reasons[key] = f"code version {recorded_code.get(key)} -> {code}"
        elif changed := sorted(
            dep.asset_key.to_user_string()
            for dep in specs[key].deps
            if new_data_in(instance, dep.asset_key, specs[dep.asset_key].partitions_def is not None, records[0])
        ):
            reasons[key] = f"new data in {', '.join(changed)}"
    return reasons


def requested_by_automation(
    defs: dg.Definitions, instance: dg.DagsterInstance, keys: list[dg.AssetKey]
) -> set[dg.AssetKey]:
    """Which of `keys` the assets' automation conditions request now, as a daemon tick would, on the
    cursor the previous `crime-pipeline run` left in DAGSTER_HOME (then replaced by this tick's)."""
    path = Path(instance.root_directory) / CURSOR_FILE
    try:
        cursor = dg.deserialize_value(path.read_text()) if path.exists() else None
    except Exception:  # unreadable (written by another Dagster version): start afresh, the facts cover it
        cursor = None
    result = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, cursor=cursor, asset_selection=dg.AssetSelection.assets(*keys)
    )
    write_text(path, dg.serialize_value(result.cursor))
    return {key for key in keys if result.get_num_requested(key)}


def rebuild_reasons(
    defs: dg.Definitions, instance: dg.DagsterInstance, downstream: list[str] | None = None, force: bool = False
) -> dict[dg.AssetKey, str]:
    """What to rebuild below ingestion, upstream first, and why (the rules in the module docstring);
    `downstream` limits it to the assets it names."""
    every = downstream_keys(defs)
    keys = every if downstream is None else [k for k in every if k.to_user_string() in downstream]
    if force:
        return {key: "--force" for key in keys}
    requested = requested_by_automation(defs, instance, every)  # the whole graph: one cursor for every run
    reasons = {**failed_audits(defs, instance, keys), **stale_facts(defs, instance, keys)}
    parents = asset_parents(defs)
    for key in keys:  # upstream first: what lies below a rebuilt asset gets new inputs, so it is rebuilt too
        rebuilt_parents = sorted(p.to_user_string() for p in parents[key] if p in reasons)
        if key not in reasons and rebuilt_parents:
            reasons[key] = f"below {', '.join(rebuilt_parents)}, which is rebuilt"
        elif key not in reasons and key in requested:
            reasons[key] = "requested by its automation condition"
    return {key: reasons[key] for key in keys if key in reasons}


def run_pipeline(
    defs: dg.Definitions | None = None,
    instance: dg.DagsterInstance | None = None,
    force: bool = False,
    echo: Callable[[str], None] = print,
    downstream: list[str] | None = None,
) -> int:
    """Ingest and validate every new incoming file, then rebuild what depends on them. 0 = success.

    Downstream assets are rebuilt by the rules in this module's docstring; `downstream` limits that
    to the named assets (default: every unpartitioned asset below ingestion).
    """
    from crime_pipeline.definitions import build_definitions

    defs = defs or build_definitions()
    instance = instance or dg.DagsterInstance.get()
    layout = defs.resources["lake"].layout
    assets = [*defs.assets, *(defs.asset_checks or [])]
    tags = process_tags()
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
            assets,
            selection=list(PER_FILE_ASSETS),
            partition_key=item.key,
            instance=instance,
            resources=defs.resources,
            tags={**tags, SOURCE_FILE_TAG: item.path.name},
            raise_on_error=False,
            run_config=QUIET_LOGS,
        )
        if not result.success:
            failures += [f"{item.path.name}: {m}" for m in failure_messages(result)]

    reasons = rebuild_reasons(defs, instance, downstream, force) if validated_files(layout) else {}
    if reasons:
        echo(f"rebuilding {len(reasons)} downstream assets:")
        for key, why in reasons.items():
            echo(f"  {key.to_user_string()}: {why}")
        result = dg.materialize(
            assets,
            selection=list(reasons),
            instance=instance,
            resources=defs.resources,
            tags=tags,
            raise_on_error=False,
            run_config=QUIET_LOGS,
        )
        if not result.success:
            failures += failure_messages(result)
    elif not failures:
        echo("everything is up to date")
    for key, entry in unvalidated_files(layout).items():
        failures.append(
            f"{entry['file']} ({key}): read into the lake but its validation is not published; "
            f"it is left out of every table until a run validates it"
        )
    for message in dict.fromkeys(failures):
        echo(f"FAILED {message}")
    echo(f"done in {time.perf_counter() - started:.1f}s; lake: {layout.root}")
    summary = headline(layout)
    if summary:
        echo(summary)
    return 1 if failures else 0
