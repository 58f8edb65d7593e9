"""The model gate called directly on a tiny lake (no Dagster): audit, Bayes limit, publish or reject.

The lake holds what model_evaluation reads: a few thousand generated incidents split into train
and test, the split summary, the quality report naming the generator, and one candidate per model
kind. Loading and scoring a model are replaced by probabilities the test chooses (an honest blend
of the true posterior and the prior, or a model that sees the label), so what is under test is the
gate itself: which checks run, what they find, and what is published.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from crime_pipeline.lib import synthetic
from crime_pipeline.lib.lake.atomic import write_json
from crime_pipeline.lib.lake.layout import LakeLayout
from crime_pipeline.lib.lake.parquet import write_parquet
from crime_pipeline.lib.lake.reads import DeclaredReads
from crime_pipeline.lib.models.artifacts import KINDS
from crime_pipeline.lib.models.metadata import seal_metadata
from crime_pipeline.lib.reports import model_gate
from crime_pipeline.lib.reports.model_gate import SKIPPED, all_generated, evaluate_and_publish

SCALER = {"latitude": [synthetic.LAT_MIN, synthetic.LAT_MAX], "longitude": [synthetic.LON_MIN, synthetic.LON_MAX]}
STEP_READS = {"model_evaluation", "dataset_splits", "incidents", *(f"{k}_model" for k in KINDS)}


@pytest.fixture(scope="module")
def incidents() -> pd.DataFrame:
    """Clean generated incidents with their true label ids; the later half is the test split."""
    data = synthetic.generate_incidents(4000, seed=5)
    clean = data.frame[data.dirt == "clean"]
    when = pd.to_datetime(clean["Incident Datetime"], format=synthetic.DATETIME_FORMAT)
    out = pd.DataFrame(
        {
            "latitude": clean["Latitude"].astype(float).to_numpy(),
            "longitude": clean["Longitude"].astype(float).to_numpy(),
            "incident_datetime": when.to_numpy(),
            "label_id": pd.Series(data.true_label[data.dirt == "clean"])
            .map({c: i for i, c in enumerate(synthetic.CLASSES)})
            .to_numpy(dtype=np.int64),
        }
    )
    out = out[(out["incident_datetime"].dt.year >= 2009) & (out["incident_datetime"].dt.year < 2026)]
    out = out.reset_index(drop=True)
    out["split"] = np.where(np.arange(len(out)) < len(out) // 2, "train", "test")
    return out


def tiny_lake(
    root,
    incidents: pd.DataFrame,
    generator_version: str | None,
    data_version: str = "v1",
    features=("latitude", "longitude"),
) -> LakeLayout:
    layout = LakeLayout(root).ensure()
    write_parquet(layout.table("dataset_splits"), incidents)
    write_json(
        layout.lake_file("dataset_splits.json"),
        {"scaler": SCALER, "classes": list(synthetic.CLASSES), "strategy": "temporal", "data_version": "v1"},
    )
    write_json(
        layout.report_file("data_quality.json"),
        {"generator_versions": {"f1": generator_version}, "file_cities": {"f1": "buffalo"}},
    )
    for kind in KINDS:
        weights = f"{kind}-0123abcd.bin"
        (layout.model_candidates / weights).parent.mkdir(parents=True, exist_ok=True)
        (layout.model_candidates / weights).write_bytes(kind.encode())
        write_json(
            layout.model_candidates / f"{kind}.json",
            seal_metadata({"features": list(features), "data_version": data_version, "weights_file": weights}),
        )
    return layout


def scoring(monkeypatch, incidents: pd.DataFrame, leaky: str | None = None) -> None:
    """Models that score the test rows as chosen: half the true posterior, half the prior (honest,
    below the Bayes limit), or for the `leaky` kind 0.7 on the true label."""
    test = incidents[incidents["split"] == "test"]
    posterior = synthetic.posterior(test["latitude"], test["longitude"], test["incident_datetime"])
    truth = test["label_id"].to_numpy()

    def predict_proba(kind, model, x, n_classes):
        assert len(x) == len(truth)
        if kind == leaky:
            proba = np.full((len(x), n_classes), 0.3 / (n_classes - 1))
            proba[np.arange(len(x)), truth] = 0.7
            return proba
        return 0.5 * posterior + 0.5 * synthetic.PRIORS

    monkeypatch.setattr(model_gate, "load_model", lambda folder, kind, name: (kind, {}))
    monkeypatch.setattr(model_gate, "predict_proba", predict_proba)


def reads(layout: LakeLayout) -> DeclaredReads:
    return DeclaredReads(layout, "model_evaluation", STEP_READS)


def test_honest_models_on_generated_data_are_judged_against_bayes_and_published(tmp_path, incidents, monkeypatch):
    layout = tiny_lake(tmp_path, incidents, synthetic.GENERATOR_VERSION)
    scoring(monkeypatch, incidents)
    result = evaluate_and_publish(reads(layout))
    assert result.published and result.generated
    assert set(result.checks) == {"model_features_allowed", "no_model_beats_bayes", "mlp_beats_baselines"}
    assert result.skipped == ["accuracy_is_plausible"] and "accuracy_is_plausible" in SKIPPED
    bayes = result.checks["no_model_beats_bayes"]
    assert bayes.passed and bayes.metadata["models_beating_bayes"] == "none"
    assert bayes.metadata["cities_judged"] == "buffalo"
    assert result.checks["model_features_allowed"].passed
    # Published: the evaluation where the report reads it, and every candidate where predict loads.
    assert result.written == result.path == layout.report_file("evaluation.json")
    assert json.loads(result.path.read_text()) == json.loads(json.dumps(result.doc))
    assert result.doc["n_test"] == int((incidents["split"] == "test").sum())
    assert result.doc["bayes"]["accuracy"] > max(m["accuracy"] for m in result.doc["models"].values())
    for kind in KINDS:
        published = json.loads((layout.models / f"{kind}.json").read_text())
        assert published["test_metrics"] == json.loads(json.dumps(result.doc["models"][kind]))
        assert (layout.models / published["weights_file"]).read_bytes() == kind.encode()
    assert layout.lake_file("test_predictions.parquet").exists()
    assert result.table.startswith("|")


def test_a_model_that_sees_the_label_is_caught_and_nothing_is_published(tmp_path, incidents, monkeypatch):
    layout = tiny_lake(tmp_path, incidents, synthetic.GENERATOR_VERSION)
    scoring(monkeypatch, incidents)
    first = evaluate_and_publish(reads(layout))
    before = {p.name: p.read_bytes() for p in layout.models.glob("*") if p.is_file()}
    evaluation = first.path.read_bytes()
    scoring(monkeypatch, incidents, leaky="mlp")
    result = evaluate_and_publish(reads(layout))
    assert not result.published
    bayes = result.checks["no_model_beats_bayes"]
    assert not bayes.passed and bayes.metadata["models_beating_bayes"] == "mlp"
    assert {p.name: p.read_bytes() for p in layout.models.glob("*") if p.is_file()} == before
    assert first.path.read_bytes() == evaluation  # the previous evaluation stays
    assert result.written != result.path and result.written.exists()  # this one is kept as rejected
    assert json.loads(result.written.read_text())["models"]["mlp"]["accuracy"] > 0.9


def test_on_real_data_the_bayes_check_is_skipped_and_plausibility_runs(tmp_path, incidents, monkeypatch):
    layout = tiny_lake(tmp_path, incidents, generator_version=None)
    scoring(monkeypatch, incidents, leaky="gbdt")  # too good to be true: only a warning on real data
    result = evaluate_and_publish(reads(layout))
    assert result.published and not result.generated and result.doc["bayes"] is None
    assert result.skipped == ["no_model_beats_bayes"]
    plausible = result.checks["accuracy_is_plausible"]
    assert not plausible.passed and plausible.metadata == {"models_above_0.8": "gbdt"}


@pytest.mark.parametrize(
    "lake_args, found",
    [
        ({"data_version": "older"}, {"features_not_allowed": {}, "trained_on_other_data": ", ".join(KINDS)}),
        (
            {"features": ("latitude", "parent_incident_type")},
            {"features_not_allowed": {k: ["parent_incident_type"] for k in KINDS}, "trained_on_other_data": "none"},
        ),
    ],
)
def test_candidates_failing_the_audit_are_neither_evaluated_nor_published(
    tmp_path, incidents, monkeypatch, lake_args, found
):
    layout = tiny_lake(tmp_path, incidents, synthetic.GENERATOR_VERSION, **lake_args)
    scoring(monkeypatch, incidents)
    result = evaluate_and_publish(reads(layout))
    assert not result.published and result.doc is None and result.skipped == []
    assert list(result.checks) == ["model_features_allowed"]
    assert not result.checks["model_features_allowed"].passed
    assert result.checks["model_features_allowed"].metadata == found
    assert not layout.report_file("evaluation.json").exists() and not list(layout.models.glob("*.json"))


def test_only_files_all_from_one_current_generator_version_count_as_generated():
    without_near_repeats = synthetic.generator_version(near_repeat=False)
    assert without_near_repeats != synthetic.GENERATOR_VERSION
    assert all_generated({"a": synthetic.GENERATOR_VERSION, "b": synthetic.GENERATOR_VERSION})
    assert all_generated({"a": without_near_repeats})  # `generate --no-near-repeat`: the same exact posterior
    assert not all_generated({"a": synthetic.GENERATOR_VERSION, "b": without_near_repeats})  # a mixture
    assert not all_generated({"a": synthetic.GENERATOR_VERSION, "b": None})
    assert not all_generated({"a": "an-older-version"})
    assert not all_generated({})


def test_a_weighted_mlp_built_on_another_network_than_the_mlp_candidate_is_stale():
    """mlp_model retrained without mlp_weighted_model: the weighted candidate names the old network."""
    features = ["hour", "latitude"]
    candidates = {
        ("mlp", "buffalo"): {"features": features, "data_version": "v1", "weights_sha256": "new"},
        ("mlp_weighted", "buffalo"): {"features": features, "data_version": "v1", "network": {"weights_sha256": "old"}},
        ("mlp", "chicago"): {"features": features, "data_version": "v1", "weights_sha256": "same"},
        ("mlp_weighted", "chicago"): {
            "features": features,
            "data_version": "v1",
            "network": {"weights_sha256": "same"},
        },
    }
    assert model_gate.audit_candidates(candidates, "v1") == ({}, ["mlp_weighted"])
    candidates[("mlp_weighted", "buffalo")]["network"]["weights_sha256"] = "new"
    assert model_gate.audit_candidates(candidates, "v1") == ({}, [])
