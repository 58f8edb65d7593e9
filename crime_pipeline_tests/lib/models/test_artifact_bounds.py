"""Model files cost bounded work: the metadata is sealed by its own hash, every size field is bounded
before anything is allocated, deep nesting and symbolic links are refused, each in one sentence."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from crime_pipeline.lib.models import metadata
from crime_pipeline.lib.models.artifacts import ArtifactError, load_model, predict_proba, publish_model, save_model
from crime_pipeline.lib.models.metadata import seal_metadata
from crime_pipeline.lib.models.mlp.network import CrimeMLP

FEATURES = ["latitude", "longitude", "hour"]
CLASSES = ["Theft", "Assault", "Robbery"]
X = np.random.default_rng(0).random((60, 3))


def _meta() -> dict:
    return {
        "features": FEATURES,
        "classes": CLASSES,
        "scaler": {f: [0.0, 1.0] for f in FEATURES},
        "config": {"dropout": 0.3},
        "metrics": {"log_loss": float("nan")},
    }


@pytest.fixture
def models(tmp_path) -> Path:
    """A folder with a tiny baseline and a tiny MLP, saved as the pipeline saves them."""
    folder = tmp_path / "models"
    baseline = LogisticRegression(max_iter=200).fit(X, np.arange(60) % 3)
    save_model(folder, "baseline", baseline, _meta())
    save_model(folder, "mlp", CrimeMLP(3, 3), _meta())
    return folder


def _edit(path: Path, change, reseal: bool) -> None:
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(seal_metadata(meta) if reseal else meta))


def _refusal(folder: Path, kind: str, within: float = 1.0) -> str:
    started = time.monotonic()
    with pytest.raises(ArtifactError) as info:
        load_model(folder, kind)
    assert time.monotonic() - started < within
    message = str(info.value)
    assert "\n" not in message and len(message) < 400, message
    return message


def _sentence(folder: Path, kind: str, problem: str) -> str:
    named = re.escape(str(folder / f"{kind}.json"))
    return f"{named} {problem}; retrain with the {kind}_model asset or restore the file"


def test_saved_models_load_and_publishing_reseals_them(models, tmp_path):
    for kind in ("baseline", "mlp"):
        model, meta = load_model(models, kind)
        assert predict_proba(kind, model, X, 3).shape == (60, 3)
        assert meta[metadata.SEAL] == seal_metadata(meta)[metadata.SEAL]
        publish_model(models, tmp_path / "published", kind, {"published_at": "2026-12-03T20:00:00+00:00"})
        assert load_model(tmp_path / "published", kind)[1]["published_at"] == "2026-12-03T20:00:00+00:00"


def test_the_parameter_count_the_bound_uses_is_the_networks_own():
    for net in (CrimeMLP(3, 3), CrimeMLP(7, 4, vocab_sizes=[10, 20], embed_dim=5, n_offset=2, members=3)):
        meta = {"classes": ["c"] * net.net[-1].out_features, "mlp": net.artifact_meta()}
        assert metadata.mlp_parameters(meta) == sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize(
    "kind, change",
    [
        ("mlp", lambda m: m["mlp"].update(members=100_000)),  # made predict hang before the seal
        ("mlp", lambda m: m["mlp"].update(n_inputs=3e9)),
        ("baseline", lambda m: m.update(classes=["Assault", "Theft", "Robbery"])),  # silently swapped labels
        ("baseline", lambda m: m.pop(metadata.SEAL)),
    ],
)
def test_metadata_edited_after_saving_is_refused(models, kind, change):
    _edit(models / f"{kind}.json", change, reseal=False)
    message = _refusal(models, kind)
    assert re.fullmatch(
        _sentence(
            models,
            kind,
            r"(was edited after it was saved \(its content does not match its "
            r"'metadata_sha256'\)|has no 'metadata_sha256' entry \(saved by an older version, or written "
            r"by hand\))",
        ),
        message,
    ), message


@pytest.mark.parametrize(
    "field, change, problem",
    [
        ("members", lambda s: s.update(members=100_000), "has 'mlp.members' = 100000, outside 1..16"),
        ("n_inputs", lambda s: s.update(n_inputs=3e9), "has 'mlp.n_inputs' = '3000000000.0', not a whole number"),
        ("n_inputs", lambda s: s.update(n_inputs=3_000_000_000), "has 'mlp.n_inputs' = 3000000000, outside 1..4,096"),
        ("embed_dim", lambda s: s.update(embed_dim=-1), "has 'mlp.embed_dim' = -1, outside 0..256"),
        ("vocab", lambda s: s.update(vocab_sizes=[10**9]), "has 'mlp.vocab_sizes\\[\\]' = 1000000000, outside"),
        ("tables", lambda s: s.update(vocab_sizes=[1] * 17), "has 'mlp.vocab_sizes' = 17, outside 0..16"),
        ("fourier", lambda s: s.update(input_encoder={"fourier": 10**6}), "has 'mlp.input_encoder.fourier' = 1000000"),
    ],
)
def test_every_size_field_is_bounded_before_anything_is_allocated(models, field, change, problem):
    # A forger who also fixes the seal still cannot make loading allocate without bound.
    _edit(models / "mlp.json", lambda m: change(m["mlp"]), reseal=True)
    message = _refusal(models, "mlp")
    assert re.fullmatch(_sentence(models, "mlp", problem + ".*"), message), message


def test_a_network_larger_than_its_weights_is_refused_before_it_is_built(models):
    _edit(models / "mlp.json", lambda m: m["mlp"].update(n_inputs=4_000, members=16), reseal=True)
    message = _refusal(models, "mlp")
    assert re.fullmatch(
        rf"{re.escape(str(models / 'mlp.json'))} describes a network of 8,361,008 parameters, more than "
        r"mlp-[0-9a-f]{12}\.pt \([\d,]+ bytes, 4 a parameter\) holds; retrain with the mlp_model asset or "
        "restore the file",
        message,
    ), message


def test_too_many_classes_is_refused(models):
    _edit(models / "baseline.json", lambda m: m.update(classes=[f"c{i}" for i in range(5_000)]), reseal=True)
    assert "has 'classes' = 5000, outside 2..1,000" in _refusal(models, "baseline")


@pytest.mark.parametrize("text", ["[" * 100_000, '{"features": ' + "[" * 100_000 + "]" * 100_000 + "}"])
def test_deeply_nested_metadata_is_one_sentence_not_a_recursion_error(models, text):
    (models / "mlp.json").write_text(text)
    message = _refusal(models, "mlp")
    problem = r"(nests arrays or objects too deeply to be model metadata|is not valid JSON \(.*\))"
    assert re.fullmatch(_sentence(models, "mlp", problem), message), message


def test_metadata_over_the_size_limit_is_refused_before_parsing(models, monkeypatch):
    size = (models / "mlp.json").stat().st_size
    monkeypatch.setattr(metadata, "MAX_METADATA_BYTES", size - 1)
    monkeypatch.setattr("crime_pipeline.lib.models.artifacts.MAX_METADATA_BYTES", size - 1)
    message = _refusal(models, "mlp")
    assert re.fullmatch(_sentence(models, "mlp", f"is {size:,} bytes, over the {size - 1:,}-byte limit"), message)


def test_symbolic_links_in_the_models_folder_are_not_followed(models, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    meta = models / "baseline.json"
    (elsewhere / "baseline.json").write_bytes(meta.read_bytes())
    meta.unlink()
    meta.symlink_to(elsewhere / "baseline.json")
    message = _refusal(models, "baseline")
    assert re.fullmatch(
        _sentence(models, "baseline", r"is a symbolic link \(a model is loaded from regular files only\)"), message
    ), message

    meta.unlink()
    meta.write_bytes((elsewhere / "baseline.json").read_bytes())
    weights = models / json.loads(meta.read_text())["weights_file"]
    (elsewhere / weights.name).write_bytes(weights.read_bytes())
    weights.unlink()
    weights.symlink_to(elsewhere / weights.name)
    message = _refusal(models, "baseline")
    assert message == (
        f"{weights} (named by baseline.json) is a symbolic link (a model is loaded from regular files only)"
    ), message


def test_an_edited_candidate_is_not_resealed_by_publishing(models, tmp_path):
    _edit(models / "baseline.json", lambda m: m.update(classes=["Assault", "Theft", "Robbery"]), reseal=False)
    with pytest.raises(ArtifactError, match="was edited after it was saved"):
        publish_model(models, tmp_path / "published", "baseline", {})
    assert not (tmp_path / "published" / "baseline.json").exists()


def test_a_directory_or_a_fifo_in_place_of_a_model_file_is_not_a_regular_file(models):
    meta = models / "baseline.json"
    meta.unlink()
    os.mkfifo(meta)  # opening it must not wait for a writer
    assert _refusal(models, "baseline").endswith(
        "baseline.json is not a regular file; retrain with the baseline_model asset or restore the file"
    )
