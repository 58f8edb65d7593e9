"""Gates that hold: each blocking check turns red on a planted defect, the previously published
version stays the one served, automation stops below it, and every read is a declared input."""

from __future__ import annotations

import json
import shutil

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from crime_pipeline.lib.features import stages as feature_stages  # where build_features looks names up
from crime_pipeline.lib.features.leakage import combination_accuracy, leakage_scores
from crime_pipeline.lib.features.table import build_feature_table
from crime_pipeline.lib.lake.layout import LakeLayout
from crime_pipeline.lib.lake.ledger import ingested
from crime_pipeline.lib.lake.reads import DeclaredReads, UndeclaredReadError
from crime_pipeline.lib.validate import stages as validation_stages  # where the stages look names up
from crime_pipeline_tests.conftest import API_SAMPLE
from crime_pipeline_tests.declared_reads import undeclared_reads


def check(result: dg.ExecuteInProcessResult, name: str):
    return next(e for e in result.get_asset_check_evaluations() if e.check_name == name)


def check_failed_now(instance, asset: str, name: str) -> bool:
    key = dg.AssetCheckKey(dg.AssetKey(asset), name)
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    return record.status.value == "FAILED"


def rerun(defs, instance, selection, partition_key=None):
    return dg.materialize(
        [*defs.assets, *(defs.asset_checks or [])],
        selection=selection,
        instance=instance,
        resources=defs.resources,
        partition_key=partition_key,
        raise_on_error=False,
    )


def test_a_dropped_row_fails_rows_accounted_for_and_the_published_table_stays(
    pipeline, lake, defs, instance, monkeypatch
):
    pipeline.drop("a.csv", API_SAMPLE)
    assert pipeline.run() == 0, pipeline.output
    key = next(iter(ingested(lake)))
    published = lake.validated_table(key).read_bytes()
    original = validation_stages.validate_incidents

    def drops_a_row(raw, **kwargs):
        result = original(raw, **kwargs)
        result.valid = result.valid.iloc[1:]
        return result

    monkeypatch.setattr(validation_stages, "validate_incidents", drops_a_row)
    result = rerun(defs, instance, ["validated_incidents", "incident_quarantine"], key)
    assert not check(result, "rows_accounted_for").passed
    assert lake.validated_table(key).read_bytes() == published  # the previous validation is still served
    assert lake.validated_table(key).with_name(f"{key}.rejected.parquet").exists()  # the bad one kept to inspect


@pytest.mark.parametrize("defect,red", [("drop", "accounting_reconciles"), ("duplicate", "one_record_per_case")])
def test_a_merge_that_loses_or_doubles_a_row_is_not_published(pipeline, lake, defs, instance, monkeypatch, defect, red):
    pipeline.drop("a.csv", API_SAMPLE)
    assert pipeline.run() == 0, pipeline.output
    published = lake.table("incidents").read_bytes()
    original = validation_stages.supersede

    def faulty(merged):
        kept, superseded = original(merged)
        kept = kept.iloc[1:] if defect == "drop" else pd.concat([kept, kept.iloc[:1]], ignore_index=True)
        return kept, superseded

    monkeypatch.setattr(validation_stages, "supersede", faulty)
    result = rerun(defs, instance, ["incidents", "incident_features"])
    assert not check(result, red).passed
    assert "incident_features" not in {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert lake.table("incidents").read_bytes() == published


def test_innocent_columns_that_spell_the_label_together_are_caught(pipeline, lake, defs, instance, monkeypatch):
    rng = np.random.default_rng(0)
    label = pd.Series(rng.choice(list("ABCDEFGHI"), size=6000, p=[0.4, 0.2, 0.15, 0.1, 0.05, 0.04, 0.03, 0.02, 0.01]))
    codes = pd.factorize(label)[0]
    half = rng.random(len(label)) < 0.5
    noise = rng.integers(0, 9, (2, len(label)))
    combo = pd.DataFrame(
        {
            "which": half.astype(int),
            "a": np.where(half, codes, noise[0]),
            "b": np.where(half, noise[1], codes),
            "hour": rng.integers(0, 24, len(label)),
        }
    )
    assert not leakage_scores(combo, label)["leaky"].any()  # no column alone gives it away
    assert combination_accuracy(combo, label)["leaky"]  # together they do
    honest = combination_accuracy(combo[["hour"]], label)
    assert not honest["leaky"]

    pipeline.generate("gen.csv", rows=3000, seed=5)
    pipeline.downstream = ["incidents", "incident_features"]
    assert pipeline.run() == 0, pipeline.output
    published = lake.table("incident_features").read_bytes()

    def leaky_pair(frame, **options):
        table = build_feature_table(frame, **options)
        ids = table["label_id"].to_numpy()
        coin = np.arange(len(ids)) % 2 == 0
        return table.assign(
            hour=np.where(coin, ids, table["hour"]),
            weekday=np.where(coin, table["weekday"], ids),
            is_weekend=coin.astype(int),
        )

    monkeypatch.setattr(feature_stages, "build_feature_table", leaky_pair)
    result = rerun(defs, instance, ["incident_features", "dataset_splits"])
    evaluation = check(result, "no_label_leakage")
    assert not evaluation.passed and evaluation.metadata["combination_accuracy"].value > 0.9
    assert lake.table("incident_features").read_bytes() == published


@pytest.fixture
def trained_copy(trained, tmp_path):
    """A private copy of the trained lake, with definitions and a fresh instance."""
    from crime_pipeline.definitions import build_definitions

    lake = LakeLayout(tmp_path / "lake")
    shutil.copytree(trained[0].root, lake.root)
    with dg.instance_for_test() as instance:
        yield lake, build_definitions(str(lake.root)), instance


def test_a_model_with_a_feature_off_the_allow_list_is_not_published(trained_copy):
    lake, defs, instance = trained_copy
    published = (lake.models / "mlp.json").read_bytes()
    candidate = lake.model_candidates / "mlp.json"
    meta = json.loads(candidate.read_text())
    candidate.write_text(json.dumps({**meta, "features": [*meta["features"], "incident_type_primary"]}))
    result = rerun(defs, instance, ["model_evaluation", "figures"])
    evaluation = check(result, "model_features_allowed")
    assert not evaluation.passed and "incident_type_primary" in json.dumps(
        evaluation.metadata["features_not_allowed"].value
    )
    assert (lake.models / "mlp.json").read_bytes() == published
    assert "figures" not in {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_automation_requests_nothing_below_a_failed_blocking_check(pipeline, lake, defs, instance, monkeypatch):
    pipeline.drop("a.csv", API_SAMPLE)
    assert pipeline.run() == 0, pipeline.output
    monkeypatch.setattr(validation_stages, "supersede", lambda merged: (merged.iloc[1:], merged.iloc[:0]))
    assert not check(rerun(defs, instance, ["incidents"]), "accounting_reconciles").passed
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    requested = [
        k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys() if result.get_num_requested(k)
    ]
    assert requested == []
    # The CLI audits the failed asset again; with the defect gone it passes and the graph moves on.
    monkeypatch.undo()
    assert pipeline.run() == 0, pipeline.output
    assert any(
        "its last blocking check (accounting_reconciles) failed; auditing again" in line for line in pipeline.output
    )
    assert not check_failed_now(instance, "incidents", "accounting_reconciles")


def test_every_file_an_asset_reads_is_among_its_declared_inputs(trained_run):
    _, defs, instance = trained_run
    graph = defs.resolve_asset_graph()
    # open_data_pull: a network pull, on its schedule (test_open_data.py, against a local server);
    # the forecast group: built by `crime-pipeline forecast`, checked in defs/test_forecasts.py.
    keys = [
        k
        for k in graph.get_all_asset_keys()
        if k.to_user_string() != "open_data_pull" and graph.get(k).group_name != "forecast"
    ]
    problems, checked = undeclared_reads(defs, instance, keys)
    assert problems == []
    assert checked >= 20


def test_an_undeclared_read_fails_loudly(lake):
    reader = DeclaredReads(lake, "figures", {"figures", "model_evaluation"})
    with pytest.raises(
        UndeclaredReadError, match="figures reads lake/dataset_splits.json, published by dataset_splits"
    ):
        reader.json(lake.lake_file("dataset_splits.json"))


def test_a_file_read_but_never_validated_turns_the_warning_check_red(pipeline, lake, defs, instance):
    from crime_pipeline.lib.lake.ledger import record_ingested

    pipeline.drop("a.csv", API_SAMPLE)
    assert pipeline.run() == 0, pipeline.output
    record_ingested(
        lake,
        "0123456789abcdef",
        {"file": "crashed.csv", "sha256": "0" * 64, "bytes": 1, "rows_read": 5, "records_counted": 5},
    )
    result = rerun(defs, instance, ["incidents"])
    evaluation = check(result, "every_file_validated")
    assert not evaluation.passed and "crashed.csv" in evaluation.metadata["files_not_validated"].value
    quality = json.loads(lake.report_file("data_quality.json").read_text())
    assert [f["file"] for f in quality["pending_files"]] == ["crashed.csv"]
    assert quality["totals"]["rows_read"] == 200  # the good file is still merged and published
