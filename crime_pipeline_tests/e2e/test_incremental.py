"""Only dependents rematerialize: a new file refreshes exactly what lies below it, a duplicate nothing."""

from __future__ import annotations

import dagster as dg

from crime_pipeline.defs.ingestion import SOURCE_FILE_TAG
from crime_pipeline.orchestrate import PER_FILE_ASSETS, downstream_keys
from crime_pipeline_tests.defs.test_sensor import Ticker


def materializations_since(instance, after_id: int) -> list[tuple[str, str | None]]:
    out = []
    for key in instance.get_asset_keys():
        result = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key, after_storage_id=after_id), limit=1000)
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
    assert dg.materialize(defs.assets, selection=list(PER_FILE_ASSETS), partition_key=request.partition_key,
                          instance=instance, resources=defs.resources,
                          tags={SOURCE_FILE_TAG: request.tags[SOURCE_FILE_TAG]}).success
    result, keys = run_requested(defs, instance, result.cursor)
    downstream = {k.to_user_string() for k in downstream_keys(defs)}
    assert {k.to_user_string() for k in keys} == downstream
    expected = sorted([(name, request.partition_key) for name in PER_FILE_ASSETS] + [(name, None) for name in downstream],
                      key=lambda kv: (kv[0], kv[1] or ""))
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
