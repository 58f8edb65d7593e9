"""The Definitions load as `dagster dev` loads them, with the idioms users see in the UI."""

from __future__ import annotations

import dagster as dg

from crime_pipeline.definitions import defs


def test_definitions_load_and_every_asset_is_described():
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    assert {"raw_incidents", "validated_incidents", "incident_quarantine", "incidents"} <= {
        k.to_user_string() for k in keys
    }
    for key in keys:
        node = graph.get(key)
        assert node.description and len(node.description) > 40, key
        assert node.group_name != "default", key
        assert node.code_version, key
        assert node.kinds, key


def blocking_checks() -> dict[tuple[str, str], bool]:
    return {
        (spec.asset_key.to_user_string(), spec.name): spec.blocking
        for assets_def in defs.assets
        for spec in assets_def.check_specs
    }


def test_validated_tables_are_gated_by_blocking_checks():
    checks = blocking_checks()
    assert checks[("validated_incidents", "rows_accounted_for")] is True
    assert checks[("incidents", "accounting_reconciles")] is True
    assert checks[("incidents", "one_record_per_case")] is True


def test_time_freshness_and_run_limits_are_declared():
    import yaml

    from crime_pipeline_tests.conftest import REPO

    graph = defs.resolve_asset_graph()
    for name in ("incidents", "crime_report"):
        policy = graph.get(dg.AssetKey(name)).freshness_policy
        assert policy is not None and policy.fail_window.to_timedelta().total_seconds() == 50 * 3600, name
    for name in ("baseline_model", "gbdt_model", "mlp_model", "mlp_weighted_model"):
        assets_def = defs.resolve_assets_def(name)
        assert assets_def.op.tags.get("dagster/max_runtime") == str(2 * 3600), name
    assert defs.resolve_schedule_def("open_data_pull_job_schedule").execution_timezone == "America/New_York"
    settings = yaml.safe_load((REPO / ".dagster_home" / "dagster.yaml").read_text())
    assert settings["run_monitoring"]["free_slots_after_run_end_seconds"] > 0
    assert graph.get(dg.AssetKey("raw_incidents")).parent_keys == {dg.AssetKey("open_data_pull")}
