"""The `crime-pipeline` command as a user runs it: generate, then run, against a temporary lake."""

from __future__ import annotations

import json

import pytest

from crime_pipeline.cli import main


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    monkeypatch.setenv("CRIME_PIPELINE_LAKE", str(tmp_path / "lake"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    return tmp_path


def rebuilt_assets(out: str) -> list[str]:
    """The assets a `run` listed under "rebuilding N downstream assets:", in the order printed."""
    listed = out.split("downstream assets:\n", 1)[1].split("done in", 1)[0]
    return [line.split(":")[0].strip() for line in listed.splitlines() if line.startswith("  ")]


def test_generate_then_run_builds_the_lake_and_records_runs(cli_env, capsys, monkeypatch):
    assert main(["generate", "--rows", "3000", "--seed", "4"]) == 0
    csv = cli_env / "lake" / "raw" / "incoming" / "buffalo_synthetic_3000_seed4.csv"
    assert csv.exists()
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert "ingesting buffalo_synthetic_3000_seed4.csv" in out
    assert f"report: {cli_env / 'lake' / 'reports' / 'report.html'}" in out
    assert "Bayes" in out and "gbdt" in out  # headline numbers, with the limit beside them
    quality = json.loads((cli_env / "lake" / "reports" / "data_quality.json").read_text())
    assert quality["totals"]["rows_read"] == 3000 and quality["reconciles"]
    assert any((cli_env / "home").rglob("*.db"))  # runs went to the persistent instance
    assert main(["run"]) == 0
    assert "everything is up to date" in capsys.readouterr().out

    # Rebuilding one asset by hand (as in the UI) with the same inputs changes no data: nothing is stale.
    import dagster as dg

    from crime_pipeline.definitions import build_definitions

    defs = build_definitions()
    with dg.DagsterInstance.get() as instance:
        assert dg.materialize(
            defs.assets, selection=["incident_features"], instance=instance, resources=defs.resources
        ).success
    assert main(["run"]) == 0
    assert "everything is up to date" in capsys.readouterr().out

    # Rebuilt with other data (a random split instead of the temporal one), Dagster marks exactly
    # what lies below it stale, and the CLI rebuilds that, upstream first.
    with dg.DagsterInstance.get() as instance:
        assert dg.materialize(
            defs.assets,
            selection=["dataset_splits"],
            instance=instance,
            resources=defs.resources,
            run_config={"ops": {"dataset_splits": {"config": {"strategy": "random"}}}},
        ).success
    assert main(["run"]) == 0
    rebuilt = rebuilt_assets(capsys.readouterr().out)
    assert sorted(rebuilt) == sorted(
        [
            "baseline_model",
            "gbdt_model",
            "mlp_model",
            "mlp_weighted_model",
            "model_evaluation",
            "figures",
            "crime_report",
        ]
    )
    assert rebuilt[-1] == "crime_report" and rebuilt.index("model_evaluation") > rebuilt.index("mlp_model")

    # A new code_version of one asset (a code change) rebuilds it and what lies below it, nothing else.
    from crime_pipeline import definitions

    def figures_changed(*args, **kwargs) -> dg.Definitions:
        loaded = build_definitions(*args, **kwargs)
        assets = [
            a.map_asset_specs(lambda spec: spec.replace_attributes(code_version="new"))
            if dg.AssetKey("figures") in a.keys
            else a
            for a in loaded.assets
        ]
        return dg.Definitions(assets=assets, asset_checks=loaded.asset_checks, resources=loaded.resources)

    monkeypatch.setattr(definitions, "build_definitions", figures_changed)
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert rebuilt_assets(out) == ["figures", "crime_report"]
    [before] = [spec.code_version for spec in defs.resolve_all_asset_specs() if spec.key.to_user_string() == "figures"]
    assert f"  figures: code version {before} -> new" in out
    assert "  crime_report: below figures, which is rebuilt" in out
    assert main(["run"]) == 0
    assert "everything is up to date" in capsys.readouterr().out


def test_run_with_nothing_to_do_says_so(cli_env, capsys):
    assert main(["run"]) == 1
    assert "no CSV files" in capsys.readouterr().out


def test_instance_is_sqlite_by_default_and_postgres_when_asked(monkeypatch, tmp_path):
    import yaml

    from crime_pipeline import instance

    monkeypatch.setattr(instance, "POSTGRES_HOME", tmp_path / "pg_home")  # tests write only to temp folders
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("DAGSTER_PG_URL", raising=False)
    assert instance.prepare_dagster_home() == instance.SQLITE_HOME
    base = yaml.safe_load((instance.SQLITE_HOME / "dagster.yaml").read_text())
    assert base["telemetry"]["enabled"] is False
    assert base["concurrency"]["runs"]["max_concurrent_runs"] <= 2
    assert base["concurrency"]["pools"]["default_limit"] == 1  # the gpu pool: one training at a time
    assert base["run_retries"]["enabled"] and base["run_monitoring"]["enabled"]

    monkeypatch.delenv("DAGSTER_HOME")
    monkeypatch.setenv("DAGSTER_PG_URL", "postgresql://user:secret@127.0.0.1:5432/dagster")
    home = instance.prepare_dagster_home()
    assert home == instance.POSTGRES_HOME
    config = yaml.safe_load((home / "dagster.yaml").read_text())
    assert config["storage"] == {"postgres": {"postgres_url": {"env": "DAGSTER_PG_URL"}}}
    assert {k: v for k, v in config.items() if k != "storage"} == base
    assert "secret" not in (home / "dagster.yaml").read_text()  # the URL stays in the environment


def test_predict_writes_geojson_and_says_the_model_learned_from_generated_data(trained, tmp_path, monkeypatch, capsys):
    """The 200 real fixture rows scored with a model trained on generated data: the output is a GeoJSON
    FeatureCollection a GIS tool opens, and the command says plainly where the model's training data came from."""
    from crime_pipeline_tests.conftest import API_SAMPLE

    lake, _, _ = trained
    monkeypatch.setenv("CRIME_PIPELINE_LAKE", str(lake.root))
    out = tmp_path / "scored.geojson"
    argv = ["predict", "--model", "gbdt", "--input", str(API_SAMPLE), "--out", str(out), "--format", "geojson"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "trained on generated data" in printed and "not on real incidents" in printed
    collection = json.loads(out.read_text())
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) > 150
    classes = json.loads((lake.models / "gbdt.json").read_text())["classes"]
    for feature in collection["features"]:
        assert feature["type"] == "Feature" and feature["geometry"]["type"] == "Point"
        lon, lat = feature["geometry"]["coordinates"]  # RFC 7946: longitude first
        assert -79.0 < lon < -78.7 and 42.8 < lat < 43.0
        props = feature["properties"]
        assert props["predicted_type"] in classes and props["case_number"]
        probabilities = [v for k, v in props.items() if k.startswith("p_")]
        assert len(probabilities) == len(classes) and abs(sum(probabilities) - 1) < 1e-6
    # The CSV output says it too.
    assert main(["predict", "--model", "gbdt", "--input", str(API_SAMPLE), "--out", str(tmp_path / "s.csv")]) == 0
    assert "trained on generated data" in capsys.readouterr().out
