"""Model artifacts a user can load without running anyone's code.

Each model is a weights file plus `models/<kind>.json` (features, classes, scaler, training config,
data version, the weights file's SHA-256). Nothing is pickled:
- baseline (logistic regression): coefficients in a NumPy .npz, loaded with allow_pickle=False;
- gbdt (HistGradientBoosting): skops, loaded with an explicit list of trusted types;
- mlp, mlp_weighted (PyTorch): a state_dict, loaded with torch.load(weights_only=True); the fitted
  input encoder (cell vocabularies, scaling) and temperature are plain JSON under "mlp" in the metadata.
Weights files carry their hash in their name and the JSON is replaced last, so a crash mid-save
leaves the previous model whole.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import skops.io as sio
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from crime_pipeline.lib.atomic import write_bytes, write_json
from crime_pipeline.lib.mlp import CrimeMLP
from crime_pipeline.lib.mlp import predict_proba as mlp_predict_proba

KINDS = ("baseline", "mlp", "mlp_weighted", "gbdt")
MLP_KINDS = ("mlp", "mlp_weighted")
SKOPS_TRUSTED = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
_SUFFIX = {"baseline": "npz", "mlp": "pt", "mlp_weighted": "pt", "gbdt": "skops"}


class ArtifactError(RuntimeError):
    """A saved model is missing, does not match its metadata, or contains something untrusted."""


def _serialise(kind: str, model) -> bytes:
    buffer = io.BytesIO()
    if kind == "baseline":
        np.savez(buffer, coef=model.coef_, intercept=model.intercept_, classes=model.classes_)
        return buffer.getvalue()
    if kind in MLP_KINDS:
        torch.save(model.state_dict(), buffer)
        return buffer.getvalue()
    if kind == "gbdt":
        return sio.dumps(model)
    raise ValueError(f"unknown model kind {kind!r}")


def save_model(folder: Path, kind: str, model, metadata: dict) -> Path:
    """Write the weights (content-addressed) then the metadata JSON; remove superseded weights."""
    data = _serialise(kind, model)
    if kind in MLP_KINDS:
        metadata = {**metadata, "mlp": model.artifact_meta()}
    digest = hashlib.sha256(data).hexdigest()
    weights = folder / f"{kind}-{digest[:12]}.{_SUFFIX[kind]}"
    write_bytes(weights, data)
    meta_path = write_json(folder / f"{kind}.json", {**metadata, "kind": kind, "weights_file": weights.name,
                                                     "weights_sha256": digest})
    for old in folder.glob(f"{kind}-*.{_SUFFIX[kind]}"):
        if old != weights:
            old.unlink()
    return meta_path


def _deserialise(kind: str, data: bytes, meta: dict):
    if kind == "baseline":
        arrays = np.load(io.BytesIO(data), allow_pickle=False)
        model = LogisticRegression()
        model.coef_, model.intercept_, model.classes_ = arrays["coef"], arrays["intercept"], arrays["classes"]
        model.n_features_in_ = model.coef_.shape[1]
        return model
    if kind in MLP_KINDS:
        state = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
        model = CrimeMLP.from_artifact_meta(meta, len(meta["classes"]), meta["config"].get("dropout", 0.3))
        model.load_state_dict(state)
        return model.eval()
    if kind == "gbdt":
        model = sio.loads(data, trusted=SKOPS_TRUSTED)
        if not isinstance(model, HistGradientBoostingClassifier):
            raise ArtifactError(f"gbdt artifact holds a {type(model).__name__}, not a HistGradientBoostingClassifier")
        return model
    raise ValueError(f"unknown model kind {kind!r}")


def load_model(folder: Path, kind: str):
    """Load (model, metadata), verifying the weights' hash first; raise ArtifactError otherwise."""
    meta_path = folder / f"{kind}.json"
    if not meta_path.exists():
        raise ArtifactError(f"no {kind} model in {folder}: materialize the {kind}_model asset first")
    meta = json.loads(meta_path.read_text())
    weights = folder / Path(meta["weights_file"]).name  # never follow a path out of the folder
    if not weights.exists():
        raise ArtifactError(f"{weights} is missing (named by {meta_path.name})")
    data = weights.read_bytes()
    if hashlib.sha256(data).hexdigest() != meta["weights_sha256"]:
        raise ArtifactError(f"{weights.name} does not match the SHA-256 in {meta_path.name}: it was altered")
    try:
        return _deserialise(kind, data, meta), meta
    except ArtifactError:
        raise
    except Exception as exc:  # a torch UnpicklingError, a skops untrusted type, a bad archive
        raise ArtifactError(f"{weights.name} could not be loaded safely: {exc}") from exc


def predict_proba(kind: str, model, x: np.ndarray, n_classes: int) -> np.ndarray:
    """Probabilities for every class (columns in class-id order), whatever classes training saw."""
    if kind in MLP_KINDS:
        full = mlp_predict_proba(model, x).astype(np.float64)
    else:
        full = np.zeros((len(x), n_classes))
        full[:, np.asarray(model.classes_, dtype=int)] = model.predict_proba(x)
    return full / full.sum(axis=1, keepdims=True)
