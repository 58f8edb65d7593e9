"""mlp_weighted reuses mlp_model's network: the same weights with the class-balanced decision rule,
no second training, and the validation metrics a second training with `prior_correction` gave."""

from __future__ import annotations

import dataclasses
import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch

from crime_pipeline.lib.lake.atomic import write_json
from crime_pipeline.lib.lake.errors import StageError
from crime_pipeline.lib.lake.layout import LakeLayout
from crime_pipeline.lib.lake.parquet import write_parquet
from crime_pipeline.lib.lake.reads import DeclaredReads
from crime_pipeline.lib.models import stages
from crime_pipeline.lib.models.artifacts import load_model, predict_proba
from crime_pipeline.lib.models.candidates import validation_metrics
from crime_pipeline.lib.models.mlp.network import prior_correction_offset
from crime_pipeline.lib.models.mlp.settings import MLPSettings
from crime_pipeline.lib.models.mlp.train import predict_proba as mlp_predict_proba
from crime_pipeline.lib.models.mlp.train import train_mlp
from crime_pipeline.lib.models.stages import fit_mlp, weight_mlp
from crime_pipeline.lib.models.training import matrices

FEATURES = ["latitude", "longitude", "hour", "weekday", "month"]
CLASSES = ["theft", "assault", "burglary", "robbery"]
pytestmark = pytest.mark.slow  # tiny MLPs, trained in process: seconds each

SETTINGS = MLPSettings(epochs=3, batch_size=128, spread_scales=(0.04, 0.01), spread_shifts=2)
QUIET = logging.getLogger("crime_pipeline_tests.weighted_mlp")  # stages log to a logger, as to context.log


class Messages(logging.Handler):
    """A logger's messages, kept."""

    def __init__(self):
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def collecting_logger() -> tuple[logging.Logger, list[str]]:
    logger = logging.getLogger("crime_pipeline_tests.weighted_mlp.collected")
    logger.handlers, logger.propagate = [Messages()], False
    logger.setLevel(logging.INFO)
    return logger, logger.handlers[0].messages


def _splits(rows: int = 1600, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """A tiny dataset_splits table (rarer types in some places and hours) and its summary."""
    rng = np.random.default_rng(seed)
    lat, lon = 42.85 + 0.1 * rng.random(rows), -78.9 + 0.1 * rng.random(rows)
    lat[: rows // 4] = np.round(lat[: rows // 4], 2)  # repeated points
    hour, weekday, month = rng.integers(0, 24, rows), rng.integers(0, 7, rows), rng.integers(1, 13, rows)
    score = 3 * (lat - 42.85) / 0.1 + (hour > 18) + rng.normal(0, 0.8, rows)
    label = np.digitize(score, [1.2, 2.4, 3.2])  # type 0 common, type 3 rare
    frame = pd.DataFrame(
        {
            "latitude": lat,
            "longitude": lon,
            "hour": hour,
            "weekday": weekday,
            "month": month,
            "label_id": label.astype(np.int64),
        }
    )
    frame["split"] = np.where(
        np.arange(rows) < 0.7 * rows, "train", np.where(np.arange(rows) < 0.85 * rows, "validation", "test")
    )
    scaler = {
        f: [float(frame.loc[frame["split"] == "train", f].min()), float(frame.loc[frame["split"] == "train", f].max())]
        for f in FEATURES
    }
    info = {
        "strategy": "temporal",
        "features": FEATURES,
        "classes": CLASSES,
        "scaler": scaler,
        "data_version": "v1",
        "parts": {},
    }
    return frame, info


@pytest.fixture
def tiny_lake(tmp_path) -> tuple[LakeLayout, pd.DataFrame, dict]:
    layout = LakeLayout(tmp_path / "lake").ensure()
    frame, info = _splits()
    write_parquet(layout.table("dataset_splits"), frame)
    write_json(layout.lake_file("dataset_splits.json"), info)
    return layout, frame, info


def _reads(layout: LakeLayout, asset: str, *deps: str) -> DeclaredReads:
    return DeclaredReads(layout, asset, {asset, "dataset_splits", *deps})


def _train_mlp(layout: LakeLayout) -> dict:
    fit_mlp(_reads(layout, "mlp_model"), SETTINGS, 0, "cpu", log=QUIET)
    return json.loads((layout.model_candidates / "mlp.json").read_text())


def test_the_weighted_mlp_is_the_mlp_network_with_the_prior_correction_and_trains_nothing(tiny_lake, monkeypatch):
    layout, frame, info = tiny_lake
    mlp_meta = _train_mlp(layout)
    train_y = frame.loc[frame["split"] == "train", "label_id"].to_numpy()
    assert mlp_meta["train_class_counts"] == np.bincount(train_y, minlength=4).tolist()

    def no_training(*args, **kwargs):
        raise AssertionError("mlp_weighted trained a network")

    monkeypatch.setattr(stages, "train_mlp", no_training)
    log, messages = collecting_logger()
    fitted = weight_mlp(
        _reads(layout, "mlp_weighted_model", "mlp_model"),
        dataclasses.replace(SETTINGS, prior_correction=True),
        0,
        log=log,
    )
    assert messages and not [m for m in messages if "epoch" in m]
    weighted_meta = json.loads((layout.model_candidates / "mlp_weighted.json").read_text())
    # The very same weights (the same state_dict bytes) ...
    assert weighted_meta["weights_sha256"] == mlp_meta["weights_sha256"] == fitted.primary.weights_sha256
    plain, _ = load_model(layout.model_candidates, "mlp")
    weighted, _ = load_model(layout.model_candidates, "mlp_weighted")
    for a, b in zip(plain.state_dict().values(), weighted.state_dict().values()):
        assert torch.equal(a, b)
    # ... with the offset -log(training share), and the metadata of the network it reuses.
    offset = np.asarray(prior_correction_offset(mlp_meta["train_class_counts"]))
    assert weighted.logit_offset == pytest.approx(-np.log(np.bincount(train_y) / len(train_y)), abs=1e-12)
    assert weighted_meta["history"] == mlp_meta["history"] and weighted_meta["sampling"] == mlp_meta["sampling"]
    assert weighted_meta["config"] == {**mlp_meta["config"], "prior_correction": True}
    assert weighted_meta["mlp"]["input_encoder"] == mlp_meta["mlp"]["input_encoder"]
    test = matrices(frame, info["scaler"], "test")
    p_plain, p_weighted = predict_proba("mlp", plain, test.x, 4), predict_proba("mlp_weighted", weighted, test.x, 4)
    expected = p_plain * np.exp(offset)
    np.testing.assert_allclose(p_weighted, expected / expected.sum(1, keepdims=True), rtol=0, atol=1e-6)
    assert (p_weighted.argmax(1) != p_plain.argmax(1)).any()  # the decisions do change


def test_the_weighted_mlp_scores_validation_as_training_it_separately_did(tiny_lake):
    layout, frame, info = tiny_lake
    _train_mlp(layout)
    fitted = weight_mlp(
        _reads(layout, "mlp_weighted_model", "mlp_model"),
        dataclasses.replace(SETTINGS, prior_correction=True),
        0,
        log=QUIET,
    )
    # The old way: the same network trained again with prior_correction, validation scored with the
    # training-only place encoding.
    train, val = matrices(frame, info["scaler"], "train"), matrices(frame, info["scaler"], "validation")
    again, _ = train_mlp(
        train.x,
        train.y,
        val.x,
        val.y,
        4,
        dataclasses.replace(SETTINGS, prior_correction=True),
        "cpu",
        log=lambda m: None,
        features=FEATURES,
        scaler=info["scaler"],
    )
    proba = mlp_predict_proba(again, val.x, encoder=again.selection_encoder).astype(np.float64)
    proba /= proba.sum(1, keepdims=True)
    expected = validation_metrics(val.y, proba, 4, 0.0)
    got = fitted.primary.metrics
    assert got["validation_accuracy"] == expected["validation_accuracy"]
    assert got["validation_log_loss"] == pytest.approx(expected["validation_log_loss"], abs=1e-12)
    # Without the prior correction the weighted candidate scores exactly as the plain MLP.
    plain = weight_mlp(_reads(layout, "mlp_weighted_model", "mlp_model"), SETTINGS, 0, log=QUIET)
    mlp_meta = json.loads((layout.model_candidates / "mlp.json").read_text())
    assert {k: plain.primary.metrics[k] for k in ("validation_accuracy", "validation_log_loss")} == {
        k: mlp_meta["metrics"][k] for k in ("validation_accuracy", "validation_log_loss")
    }


def test_the_weighted_mlp_refuses_a_network_it_cannot_reuse(tiny_lake):
    layout, frame, info = tiny_lake
    weighted = dataclasses.replace(SETTINGS, prior_correction=True)
    reads = lambda: _reads(layout, "mlp_weighted_model", "mlp_model")  # noqa: E731
    with pytest.raises(StageError, match="no mlp_model candidate mlp.json"):
        weight_mlp(reads(), weighted, 0)
    mlp_meta = _train_mlp(layout)
    # A training setting mlp_model did not use cannot be honoured by reusing its network.
    with pytest.raises(StageError, match=r"cannot retrain it with epochs=5 \(mlp_model used 3\)"):
        weight_mlp(reads(), dataclasses.replace(weighted, epochs=5), 0)
    # Logits that are not the ones the metadata recorded.
    logits = layout.model_candidates / mlp_meta["validation_logits"]["file"]
    original = logits.read_bytes()
    np.save(logits, np.zeros((2, 4), dtype=np.float32), allow_pickle=False)
    with pytest.raises(StageError, match="it was altered"):
        weight_mlp(reads(), weighted, 0)
    logits.write_bytes(original)
    # Splits newer than the network.
    write_json(layout.lake_file("dataset_splits.json"), {**info, "data_version": "v2"})
    with pytest.raises(StageError, match="trained on data version v1, the splits are v2: rematerialize mlp_model"):
        weight_mlp(reads(), weighted, 0)


def test_retraining_the_mlp_replaces_its_validation_logits(tiny_lake):
    layout, _, _ = tiny_lake
    first = _train_mlp(layout)["validation_logits"]
    fit_mlp(_reads(layout, "mlp_model"), dataclasses.replace(SETTINGS, seed=1), 0, "cpu", log=QUIET)
    second = json.loads((layout.model_candidates / "mlp.json").read_text())["validation_logits"]
    assert first["file"] != second["file"]
    assert [p.name for p in layout.model_candidates.glob("mlp-validation-*.npy")] == [second["file"]]
    logits = np.load(layout.model_candidates / second["file"], allow_pickle=False)
    assert logits.dtype == np.float32 and logits.shape == (second["rows"], 4)
