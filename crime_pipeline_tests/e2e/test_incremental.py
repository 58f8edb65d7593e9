"""Only dependents rematerialize: a new file refreshes exactly what lies below it, a duplicate nothing."""

from __future__ import annotations

import dagster as dg

from crime_pipeline.orchestrate import (
    DATA_VERSION_TAG,
    INPUT_DATA_VERSION_TAG,
    PER_FILE_ASSETS,
    downstream_keys,
    requested_by_automation,
    stale_facts,
)
from crime_pipeline.runs import SOURCE_FILE_TAG
from crime_pipeline_tests.defs.test_sensor import Ticker


def materializations_since(instance, after_id: int) -> list[tuple[str, str | None]]:
    out = []
    for key in instance.get_asset_keys():
        result = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_storage_id=after_id), limit=1000
        )
        out += [(key.to_user_string(), r.partition_key) for r in result.records]
    return sorted(out, key=lambda kv: (kv[0], kv[1] or ""))


def run_requested(defs, instance, cursor):
    """One automation-sensor tick: evaluate the conditions, run what they request."""
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    keys = [k for k in defs.resolve_asset_graph().get_all_asset_keys() if result.get_num_requested(k)]
    if keys:
        assert dg.materialize(defs.assets, selection=keys, instance=instance, resources=defs.resources).success
    return result, keys


def test_a_new_file_refreshes_exactly_its_dependents_and_a_duplicate_nothing(defs, instance, lake):
    from crime_pipeline_tests.conftest import Pipeline

    pipe = Pipeline(defs, instance, lake)
    pipe.generate("first.csv", rows=3000, seed=31)
    assert pipe.run() == 0, pipe.output
    result, keys = run_requested(defs, instance, None)
    assert keys == []  # after a full run nothing is stale

    marker = instance.event_log_storage.get_maximum_record_id()
    ticker = Ticker(instance, lake)
    ticker.tick()  # absorb the first file into the cursor
    pipe.generate("second.csv", rows=1500, seed=32)
    ticker.tick()
    [request] = ticker.tick().run_requests
    instance.add_dynamic_partitions("incoming_files", [request.partition_key])
    assert dg.materialize(
        defs.assets,
        selection=list(PER_FILE_ASSETS),
        partition_key=request.partition_key,
        instance=instance,
        resources=defs.resources,
        tags={SOURCE_FILE_TAG: request.tags[SOURCE_FILE_TAG]},
    ).success
    result, keys = run_requested(defs, instance, result.cursor)
    downstream = {k.to_user_string() for k in downstream_keys(defs)}
    assert {k.to_user_string() for k in keys} == downstream
    expected = sorted(
        [(name, request.partition_key) for name in PER_FILE_ASSETS] + [(name, None) for name in downstream],
        key=lambda kv: (kv[0], kv[1] or ""),
    )
    assert materializations_since(instance, marker) == expected
    first_key = next(p for p in instance.get_dynamic_partitions("incoming_files") if p != request.partition_key)
    assert all(partition != first_key for _, partition in materializations_since(instance, marker))

    # The same bytes again, under another name: no run, and nothing to refresh.
    marker = instance.event_log_storage.get_maximum_record_id()
    (lake.incoming / "second copy.csv").write_bytes((lake.incoming / "second.csv").read_bytes())
    ticker.tick()
    assert ticker.tick().run_requests == []
    result, keys = run_requested(defs, instance, result.cursor)
    assert keys == []
    assert materializations_since(instance, marker) == []


FEATURES = ["incidents", "incident_features", "dataset_splits"]


def with_new_code_version(defs: dg.Definitions, name: str) -> dg.Definitions:
    """The same definitions with one asset's code_version changed, as after a code change."""
    assets = [
        a.map_asset_specs(lambda spec: spec.replace_attributes(code_version="new"))
        if dg.AssetKey(name) in a.keys
        else a
        for a in defs.assets
    ]
    return dg.Definitions(assets=assets, asset_checks=defs.asset_checks, resources=defs.resources)


def requested_names(defs, instance, cursor, names=FEATURES):
    result = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, cursor=cursor, asset_selection=dg.AssetSelection.assets(*names)
    )
    return result.cursor, sorted(n for n in names if result.get_num_requested(dg.AssetKey(n)))


def test_automation_refreshes_on_new_data_or_code_not_on_a_rebuild_from_the_same_data(defs, instance, lake):
    """The rules the daemon and `crime-pipeline run` share: a dependency rebuilt from the same
    inputs (same data version) refreshes nothing below it; a new code version refreshes the asset."""
    from crime_pipeline_tests.conftest import Pipeline

    pipe = Pipeline(defs, instance, lake, downstream=FEATURES)
    pipe.generate("a.csv", rows=2000, seed=41)
    assert pipe.run() == 0, pipe.output
    cursor, _ = requested_names(defs, instance, None)
    assert dg.materialize(
        defs.assets, selection=["incident_features"], instance=instance, resources=defs.resources
    ).success
    cursor, requested = requested_names(defs, instance, cursor)
    assert requested == []  # eager() would refresh dataset_splits here
    cursor, requested = requested_names(with_new_code_version(defs, "incident_features"), instance, cursor)
    assert requested == ["dataset_splits", "incident_features"]


def test_the_cli_evaluates_the_conditions_on_its_own_cursor_kept_between_runs(defs, instance, lake):
    from crime_pipeline_tests.conftest import Pipeline

    pipe = Pipeline(defs, instance, lake, downstream=FEATURES)
    pipe.generate("a.csv", rows=2000, seed=42)
    assert pipe.run() == 0, pipe.output
    assert pipe.run() == 0 and "everything is up to date" in pipe.output
    changed = with_new_code_version(defs, "incident_features")
    keys = [dg.AssetKey(n) for n in FEATURES]
    assert requested_by_automation(changed, instance, keys) == {
        dg.AssetKey("incident_features"),
        dg.AssetKey("dataset_splits"),
    }
    assert requested_by_automation(changed, instance, keys) == set()  # that tick is handled: the cursor moved on


def test_the_data_version_is_read_from_the_tag_dagster_writes():
    from dagster._core.definitions.data_version import DATA_VERSION_TAG as DAGSTER_DATA_VERSION_TAG
    from dagster._core.definitions.data_version import get_input_data_version_tag

    assert DATA_VERSION_TAG == DAGSTER_DATA_VERSION_TAG
    key = dg.AssetKey("dataset_splits")
    assert INPUT_DATA_VERSION_TAG + key.to_user_string() == get_input_data_version_tag(key)


def test_an_asset_built_from_an_older_input_than_the_current_one_is_stale_even_when_recorded_later():
    """Overlapping runs: `b` is recorded after `a` published v2, but `b` had read v1 (its input tag says
    so). Ordering by storage id would call `b` current; the version it recorded consuming does not."""

    @dg.asset(code_version="1")
    def a() -> None: ...

    @dg.asset(deps=[a], code_version="1")
    def b() -> None: ...

    defs = dg.Definitions(assets=[a, b])

    def record(key: str, data_version: str, consumed: str | None = None) -> None:
        tags = {DATA_VERSION_TAG: data_version, "dagster/code_version": "1"}
        if consumed is not None:
            tags[INPUT_DATA_VERSION_TAG + "a"] = consumed
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, tags=tags))

    with dg.instance_for_test() as instance:
        record("a", "v1")
        record("b", "b1", consumed="v1")
        assert stale_facts(defs, instance, [dg.AssetKey("b")]) == {}
        record("a", "v2")
        record("b", "b2", consumed="v1")  # a run that started before v2, recorded after it
        assert stale_facts(defs, instance, [dg.AssetKey("b")]) == {dg.AssetKey("b"): "new data in a"}
        record("b", "b3", consumed="v2")
        assert stale_facts(defs, instance, [dg.AssetKey("b")]) == {}
