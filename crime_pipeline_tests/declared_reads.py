"""What a test asserts about recorded reads: every lake file an asset read is published by a declared input."""

from __future__ import annotations

import dagster as dg

from crime_pipeline.lib.lake.catalog import producers_of


def undeclared_reads(defs: dg.Definitions, instance: dg.DagsterInstance, keys) -> tuple[list[str], int]:
    """(problems, reads checked) over the latest materialization of each of `keys` in `instance`.

    A problem is an asset never materialized, or a file it read (its `lake/reads` metadata) that no
    declared input, sibling of a multi-asset, or (for raw_incidents) the outside world publishes.
    """
    graph = defs.resolve_asset_graph()
    problems, checked = [], 0
    for key in keys:
        name = key.to_user_string()
        records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=1).records
        if not records:
            problems.append(f"{name} was never materialized")
            continue
        reads = records[0].asset_materialization.metadata.get("lake/reads")
        if reads is None:
            continue  # a multi-asset reports its reads once, on its first output
        inputs = {name, *(p.to_user_string() for p in graph.get(key).parent_keys)}
        siblings = {k.to_user_string() for k in graph.get(key).execution_set_asset_keys}
        external = {"external"} if name == "raw_incidents" else set()
        for path in reads.value:
            if not producers_of(path) & (inputs | siblings | external):
                problems.append(f"{name} reads {path}, which no declared input publishes")
            checked += 1
    return problems, checked
