"""Models: they learn, their artifacts load safely and score exactly as in memory, the device is chosen well."""

from __future__ import annotations

import json
import pickle  # only to forge a malicious artifact for the safety test
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from crime_pipeline.cli import main as cli_main
from crime_pipeline.lib.models.artifacts import ArtifactError, load_model, predict_proba, save_model
from crime_pipeline.lib.models.metadata import seal_metadata
from crime_pipeline.lib.models.mlp.encoder import InputEncoder
from crime_pipeline.lib.models.mlp.network import CrimeMLP
from crime_pipeline.lib.models.mlp.settings import MLPSettings, select_device
from crime_pipeline.lib.models.mlp.train import predict_proba as mlp_predict_proba
from crime_pipeline.lib.models.mlp.train import train_mlp
from crime_pipeline.lib.models.scoring import probability_column
from crime_pipeline.lib.models.training import matrices
from crime_pipeline.lib.reports.metrics import classification_metrics
from crime_pipeline.resources import TorchDeviceResource

KINDS = ("baseline", "mlp", "mlp_weighted", "gbdt")


def test_every_model_beats_the_majority_class(trained):
    lake, splits, info = trained
    test = matrices(splits, info["scaler"], "test")
    train_y = splits.loc[splits["split"] == "train", "label_id"].to_numpy()
    majority = np.bincount(train_y).argmax()
    majority_accuracy = (test.y == majority).mean()
    prior = np.bincount(train_y, minlength=9) / len(train_y)
    prior_loss = -np.log(np.clip(prior[test.y], 1e-12, 1)).mean()
    for kind in KINDS:
        model, meta = load_model(lake.models, kind)
        proba = predict_proba(kind, model, test.x, 9)
        accuracy = (proba.argmax(1) == test.y).mean()
        loss = -np.log(np.clip(proba[np.arange(len(test.y)), test.y], 1e-12, 1)).mean()
        if kind == "mlp_weighted":  # trades accuracy for recall on every type: judged by mean recall
            recall = [(proba.argmax(1)[test.y == k] == k).mean() for k in np.unique(test.y)]
            assert np.mean(recall) > 1 / len(recall) + 0.05, (kind, recall)
            continue
        assert accuracy > majority_accuracy + 0.01, (kind, accuracy, majority_accuracy)
        assert loss < prior_loss, (kind, loss, prior_loss)
        assert meta["features"] == info["features"] and meta["scaler"] == info["scaler"]
        assert meta["data_version"] == info["data_version"]


def _test_metrics(trained, kind: str) -> dict:
    lake, splits, info = trained
    test = matrices(splits, info["scaler"], "test")
    model, _ = load_model(lake.models, kind)
    return classification_metrics(test.y, predict_proba(kind, model, test.x, 9), info["classes"])


def test_the_mlp_is_never_behind_logistic_regression(trained):
    """On generated data the network's log loss is at or below the linear baseline's."""
    mlp, baseline = _test_metrics(trained, "mlp"), _test_metrics(trained, "baseline")
    assert mlp["log_loss"] <= baseline["log_loss"], (mlp["log_loss"], baseline["log_loss"])


def test_the_class_weighted_mlp_raises_macro_recall(trained):
    plain, weighted = _test_metrics(trained, "mlp"), _test_metrics(trained, "mlp_weighted")
    assert weighted["balanced_accuracy"] > plain["balanced_accuracy"] + 0.01, (
        plain["balanced_accuracy"],
        weighted["balanced_accuracy"],
    )
    rare = [c for c, n in plain["per_class_support"].items() if 0 < n < 0.1 * sum(plain["per_class_support"].values())]
    assert sum(weighted["per_class_recall"][c] for c in rare) > sum(plain["per_class_recall"][c] for c in rare)


def test_mlp_inputs_are_fitted_on_training_rows_and_saved_as_json(trained):
    lake, splits, info = trained
    meta = json.loads((lake.models / "mlp.json").read_text())
    spec = meta["mlp"]
    encoder = InputEncoder.from_dict(spec["input_encoder"])
    assert encoder.scales == meta["config"]["cell_scales"] and spec["vocab_sizes"] == encoder.vocab_sizes
    assert 0.5 < spec["temperature"] < 2.0
    # The place encoding's smoothing is fitted on training rows; once the model is selected, its
    # counts are those of training and validation rows (more rows per place for test rows and predict).
    train, val = matrices(splits, info["scaler"], "train"), matrices(splits, info["scaler"], "validation")
    again = InputEncoder.fit(train.x, info["features"], info["scaler"], MLPSettings(), train.y, len(info["classes"]))
    assert again.vocab == encoder.vocab and again.target_strength == encoder.target_strength
    recounted = again.recount(np.concatenate([train.x, val.x]), np.concatenate([train.y, val.y]))
    assert recounted.target_counts == encoder.target_counts and recounted.target_point_keys == encoder.target_point_keys
    assert sum(encoder.class_counts) == len(train.y) + len(val.y) and again.target_counts != encoder.target_counts
    assert spec["n_offset"] == len(info["classes"])
    # The validation score in the metadata comes from the training-only encoding, never from one
    # that counted the validation rows' own labels (which scores them better than it should).
    model, _ = load_model(lake.models, "mlp")
    honest = mlp_predict_proba(model, val.x, encoder=again).astype(np.float64)
    in_sample = mlp_predict_proba(model, val.x).astype(np.float64)
    loss = [-np.log(p[np.arange(len(val.y)), val.y] / p.sum(1)).mean() for p in (honest, in_sample)]
    assert meta["metrics"]["validation_log_loss"] == pytest.approx(loss[0], abs=1e-6) and loss[1] < loss[0] - 0.005
    # With cell embeddings configured, a cell only the test split has is the rare-cell bucket (id 0).
    test_rows = splits[splits["split"] == "test"]
    seen = splits.loc[splits["split"] != "test"]
    seen_cells = set(zip(seen["latitude"].round(3), seen["longitude"].round(3)))
    only_test = test_rows[
        [cell not in seen_cells for cell in zip(test_rows["latitude"].round(3), test_rows["longitude"].round(3))]
    ]
    assert len(only_test) > 0
    from crime_pipeline.lib.features.splits import apply_minmax

    with_cells = InputEncoder.fit(
        train.x,
        info["features"],
        info["scaler"],
        MLPSettings(cell_scales=(0.02, 0.005, 0.001)),
        train.y,
        len(info["classes"]),
    )
    cells = with_cells.encode(apply_minmax(only_test, info["scaler"]))[:, -3:]
    assert (cells[:, 2] == 0).all()
    # Rows that are not training rows are encoded a chunk at a time, to exactly the same matrix.
    whole = encoder.encode(val.x)
    np.testing.assert_array_equal(encoder.encode_rows(val.x, chunk=700), whole)
    assert len(val.x) > 3 * 700 and whole.dtype == np.float32


def test_training_rows_never_see_their_own_label_in_the_target_encoding():
    # Place A: 60 rows, all type 0. Place C: one row of type 2, far from everything.
    xy = np.array([[0.5, 0.5]] * 60 + [[0.9, 0.1]])
    y = np.array([0] * 60 + [2])
    scaler = {"latitude": [0.0, 1.0], "longitude": [0.0, 1.0]}
    settings = MLPSettings(one_hot_time=False, fourier=0, cell_scales=())
    encoder = InputEncoder.fit(xy, ["latitude", "longitude"], scaler, settings, y, 3)
    # 5 spread levels on 4 shifted grids, then the all-rows level; features per scale, shifts averaged.
    assert encoder.target_spread == [True] * 20 + [False] and encoder.target_shift[:6] == [0, 0, 0, 0, 0, 0.25]
    n_levels = 6
    folds = np.random.default_rng(settings.seed).integers(0, settings.target_folds, len(y))
    as_training = encoder.encode(xy, y, folds, settings.target_folds)
    as_new = encoder.encode(xy)
    finest = slice(2 + 4 * (n_levels - 1), 2 + 4 * (n_levels - 1) + 3)  # log P(type | cell) / P(type)
    count = 2 + 4 * n_levels - 1
    # The lone row learns nothing about itself: its cell is empty out of fold, its estimate the prior.
    assert as_training[-1, count] == 0 and np.allclose(as_training[-1, finest], 0, atol=1e-6)
    # A new row at the same point does see that training row.
    assert as_new[-1, count] > 0 and as_new[-1, finest][2] > 0.5
    # At A the other folds' rows still say type 0, and the offset columns are the log-probabilities.
    assert (as_training[:60, finest][:, 0] > 0).all()
    assert np.allclose(np.exp(as_new[:, 2 + 4 * n_levels :]).sum(1), 1, atol=1e-5)


def test_mlp_history_and_architecture(trained):
    lake, _, _ = trained
    model, meta = load_model(lake.models, "mlp")
    assert [m.out_features for m in model.net if isinstance(m, torch.nn.Linear)] == [128, 64, 32, 9]
    assert [m.p for m in model.net if isinstance(m, torch.nn.Dropout)] == [0.3, 0.3]
    history = meta["history"]
    assert 1 <= len(history) <= meta["config"]["epochs"] == 20
    assert {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy"} <= set(history[0])
    assert meta["device"] == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("kind", KINDS)
def test_predict_command_matches_the_in_memory_model(trained, tmp_path, monkeypatch, kind):
    lake, splits, info = trained
    source = tmp_path / "to_score.csv"
    shutil.copy(next(lake.incoming.iterdir()), source)
    out = tmp_path / "scored.csv"
    monkeypatch.setenv("CRIME_PIPELINE_LAKE", str(lake.root))
    assert cli_main(["predict", "--model", kind, "--input", str(source), "--out", str(out)]) == 0
    scored = pd.read_csv(out, dtype={"case_number": str})
    # In memory: the same rows' features straight from the split table, through the loaded model.
    model, meta = load_model(lake.models, kind)
    rows = splits.set_index("case_number").loc[scored["case_number"]]
    from crime_pipeline.lib.features.splits import apply_minmax

    expected = predict_proba(kind, model, apply_minmax(rows, meta["scaler"]), 9)
    got = scored[[probability_column(c) for c in meta["classes"]]].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    assert len(scored) > 0.9 * len(splits)  # superseded duplicates score too; quarantined rows do not


def test_saved_artifacts_round_trip_exactly(tmp_path, trained):
    lake, splits, info = trained
    x = matrices(splits, info["scaler"], "test").x
    for kind in KINDS:
        model, meta = load_model(lake.models, kind)
        save_model(
            tmp_path, kind, model, {k: v for k, v in meta.items() if k not in ("weights_file", "weights_sha256")}
        )
        again, _ = load_model(tmp_path, kind)
        np.testing.assert_array_equal(predict_proba(kind, again, x, 9), predict_proba(kind, model, x, 9))
    assert not list(tmp_path.glob("*.pkl")) and not list(tmp_path.glob("*.pickle"))


def test_altered_weights_are_refused(tmp_path, trained):
    lake, _, _ = trained
    shutil.copytree(lake.models, tmp_path / "models")
    meta = json.loads((tmp_path / "models" / "gbdt.json").read_text())
    weights = tmp_path / "models" / meta["weights_file"]
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="altered"):
        load_model(tmp_path / "models", "gbdt")


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED_MARKER",))


def test_a_code_executing_artifact_is_refused_even_with_a_matching_hash(tmp_path, trained, monkeypatch):
    lake, _, _ = trained
    folder = tmp_path / "models"
    shutil.copytree(lake.models, folder)
    monkeypatch.chdir(tmp_path)
    import hashlib

    for kind in ("mlp", "gbdt"):
        meta_path = folder / f"{kind}.json"
        meta = json.loads(meta_path.read_text())
        # Padded past the size the metadata's network needs, so the file reaches the loader itself.
        payload = pickle.dumps({"net.0.weight": _Exploit(), "padding": b"0" * 2_000_000})
        (folder / meta["weights_file"]).write_bytes(payload)
        meta["weights_sha256"] = hashlib.sha256(payload).hexdigest()  # a forger fixes the hashes too
        meta_path.write_text(json.dumps(seal_metadata(meta)))
        with pytest.raises(ArtifactError, match="could not be loaded safely"):
            load_model(folder, kind)
    assert not (tmp_path / "PWNED_MARKER").exists()


def test_device_selection():
    assert select_device("auto", cuda_available=False) == "cpu"
    assert select_device("auto", cuda_available=True) == "cuda"
    assert select_device("cuda:1", cuda_available=True) == "cuda:1"
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        select_device("cuda", cuda_available=False)
    with pytest.raises(ValueError, match="unknown device"):
        select_device("tpu", cuda_available=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert TorchDeviceResource(device="auto").resolve() == expected


def test_mlp_training_is_deterministic_on_the_cpu():
    rng = np.random.default_rng(0)
    x = rng.random((3000, 6), dtype=np.float32)
    y = (x[:, 0] * 3).astype(np.int64)
    settings = MLPSettings(epochs=3, batch_size=256, seed=5)
    first, h1 = train_mlp(x[:2000], y[:2000], x[2000:], y[2000:], 3, settings, "cpu", log=lambda m: None)
    second, h2 = train_mlp(x[:2000], y[:2000], x[2000:], y[2000:], 3, settings, "cpu", log=lambda m: None)
    assert h1 == [dict(h, seconds=a["seconds"]) for h, a in zip(h2, h1)]
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)
    assert isinstance(first, CrimeMLP)


def test_a_repeated_point_keeps_its_own_type_mix_while_spread_cells_follow_their_neighbourhood():
    # 1,500 spread-out rows (each at its own point; 75% type 0, 20% type 1, 5% type 2) around
    # (0.5, 0.5), a lone cell nearby whose 3 spread-out rows are all type 2, and 10 block points with 60 rows
    # each, every point with its own dominant type (as a store or a bar has).
    rng = np.random.default_rng(0)
    spread = 0.5 + rng.uniform(-0.01, 0.01, (1500, 2))
    odd = np.array([[0.5201, 0.5201], [0.5202, 0.5199], [0.5199, 0.5202]])
    points = 0.5 + np.array([[-0.008 + 0.0017 * k, 0.0063 - 0.0013 * k] for k in range(10)])  # 10 cells
    point_y = [np.where(rng.random(60) < 0.8, k % 3, rng.integers(0, 3, 60)) for k in range(10)]
    xy = np.concatenate([spread, odd, np.repeat(points, 60, axis=0)])
    y = np.concatenate([rng.choice(3, 1500, p=[0.75, 0.2, 0.05]), [2, 2, 2], *point_y])
    scaler = {"latitude": [0.0, 1.0], "longitude": [0.0, 1.0]}

    def finest(point_cells: bool, at) -> np.ndarray:
        settings = MLPSettings(one_hot_time=False, fourier=0, cell_scales=(), spread_shifts=1, point_cells=point_cells)
        encoder = InputEncoder.fit(xy, ["latitude", "longitude"], scaler, settings, y, 3)
        assert [len(keys) for keys in encoder.target_point_keys] == [0] * 5 + [10 if point_cells else 0]
        return np.exp(encoder.encode(np.asarray(at))[:, -3:])

    at_points, at_odd = finest(True, points[:3]), finest(True, [[0.52, 0.52]])[0]
    assert (at_points[[0, 1, 2], [0, 1, 2]] > 0.75).all()  # each point keeps its own dominant type
    # A cell of 3 spread-out rows is pulled toward the map of spread-out rows around it; one
    # smoothing for all cells, fitted mostly to the points, trusts those 3 rows far more.
    assert at_odd[2] < 0.3 and finest(False, [[0.52, 0.52]])[0][2] > at_odd[2] + 0.05


def test_mlp_members_average_probabilities_and_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.random((1200, 4), dtype=np.float32)
    y = (x[:, 0] * 3).astype(np.int64)
    model, _ = train_mlp(
        x[:900],
        y[:900],
        x[900:],
        y[900:],
        3,
        MLPSettings(epochs=2, batch_size=128, members=3),
        "cpu",
        log=lambda m: None,
    )
    assert len(model.more) == 2
    batch = torch.as_tensor(x[900:])
    with torch.no_grad():
        members = [torch.softmax(z, 1) for z in model.member_logits(batch)]
        assert not torch.allclose(members[0], members[1], atol=1e-3)  # different initialisations
        mean = torch.stack(members).mean(0)
    expected = torch.softmax(torch.log(mean) / model.temperature, 1).numpy()
    assert np.allclose(mlp_predict_proba(model, x[900:]), expected, atol=1e-5)
    meta = {
        "features": ["a", "b", "c", "d"],
        "classes": ["x", "y", "z"],
        "scaler": {k: [0.0, 1.0] for k in "abcd"},
        "config": {"dropout": 0.3},
    }
    save_model(tmp_path, "mlp", model, meta)
    loaded, _ = load_model(tmp_path, "mlp")
    assert np.array_equal(mlp_predict_proba(loaded, x[900:]), mlp_predict_proba(model, x[900:]))


def test_the_pipeline_derives_the_weighted_mlp_from_the_mlp_without_training_it_again(trained_run):
    import dagster as dg

    lake, defs, instance = trained_run
    graph = defs.resolve_asset_graph()
    assert dg.AssetKey("mlp_model") in graph.get(dg.AssetKey("mlp_weighted_model")).parent_keys
    plain, weighted = (json.loads((lake.model_candidates / f"{k}.json").read_text()) for k in ("mlp", "mlp_weighted"))
    assert weighted["weights_sha256"] == plain["weights_sha256"]
    assert weighted["network"] == {"kind": "mlp", "weights_sha256": plain["weights_sha256"]}
    messages: dict[str, list[str]] = {"mlp_model": [], "mlp_weighted_model": []}
    for run in instance.get_runs():
        for entry in instance.all_logs(run.run_id):
            if entry.step_key in messages and entry.user_message:
                messages[entry.step_key].append(entry.user_message)
    assert any(m.startswith("epoch 1/") for m in messages["mlp_model"])
    assert messages["mlp_weighted_model"] and not [m for m in messages["mlp_weighted_model"] if "epoch" in m]
