"""Model artifacts a user can load without running anyone's code.

Each model is a weights file plus `models/<kind>.json` (features, classes, scaler, training config,
data version, the weights file's SHA-256). Nothing is pickled:
- baseline (logistic regression): coefficients in a NumPy .npz, loaded with allow_pickle=False;
- gbdt (HistGradientBoosting): skops, loaded with an explicit list of trusted types;
- mlp, mlp_weighted (PyTorch): a state_dict, loaded with torch.load(weights_only=True); the fitted
  input encoder (cell vocabularies, scaling) and temperature are plain JSON under "mlp" in the metadata.
Weights files carry their hash in their name and the JSON is replaced last, so a crash mid-save
leaves the previous model whole. The JSON is sealed by its own hash and read with bounded work
(metadata.py); neither file is read through a symbolic link.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import skops.io as sio
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from crime_pipeline.lib.lake import storage
from crime_pipeline.lib.lake.atomic import write_bytes, write_json
from crime_pipeline.lib.models.metadata import (
    MAX_METADATA_BYTES,
    MAX_WEIGHTS_BYTES,
    MetadataError,
    check_sizes,
    mlp_parameters,
    parse_metadata,
    read_bounded,
    seal_metadata,
    shown,
)
from crime_pipeline.lib.models.mlp.network import CrimeMLP
from crime_pipeline.lib.models.mlp.train import predict_proba as mlp_predict_proba

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


def save_model(folder: Path, kind: str, model, metadata: dict, name: str | None = None) -> Path:
    """Write the weights (content-addressed) then the metadata JSON; remove superseded weights.

    `name` is the file stem (default: the kind; another city's model is `<kind>.<city>`)."""
    name = name or kind
    data = _serialise(kind, model)
    if kind in MLP_KINDS:
        metadata = {**metadata, "mlp": model.artifact_meta()}
    digest = hashlib.sha256(data).hexdigest()
    weights = folder / f"{name}-{digest[:12]}.{_SUFFIX[kind]}"
    write_bytes(weights, data)
    meta_path = write_json(
        folder / f"{name}.json",
        seal_metadata({**metadata, "kind": kind, "weights_file": weights.name, "weights_sha256": digest}),
    )
    for old in storage.glob(folder, f"{name}-*.{_SUFFIX[kind]}"):
        if old.name != weights.name:
            storage.remove(old)
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


def _read_metadata(meta_path: Path, kind: str) -> dict:
    """The metadata JSON, checked field by field: whatever is wrong is one sentence naming the file."""

    def bad(problem: str) -> ArtifactError:
        return ArtifactError(f"{meta_path} {problem}; retrain with the {kind}_model asset or restore the file")

    try:
        meta = parse_metadata(read_bounded(meta_path, MAX_METADATA_BYTES))
    except MetadataError as exc:
        raise bad(str(exc)) from None
    except OSError as exc:
        raise bad(f"could not be read ({exc.strerror or exc})") from exc
    checks = {
        "weights_file": lambda v: isinstance(v, str) and Path(v).name not in ("", ".", ".."),
        "weights_sha256": lambda v: isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v),
        "features": lambda v: isinstance(v, list) and v and all(isinstance(f, str) for f in v),
        "classes": lambda v: isinstance(v, list) and v and all(isinstance(c, str) for c in v),
        "scaler": lambda v: (
            isinstance(v, dict)
            and all(
                isinstance(r, list) and len(r) == 2 and all(isinstance(x, (int, float)) for x in r) for r in v.values()
            )
        ),
        "config": lambda v: isinstance(v, dict),
    }
    for key, ok in checks.items():
        if key not in meta:
            raise bad(f"has no {key!r} entry")
        if not ok(meta[key]):
            raise bad(f"has an invalid {key!r} entry ({shown(meta[key])})")
    if list(meta["scaler"]) != meta["features"]:
        raise bad("has a 'scaler' whose columns are not its 'features'")
    if meta.get("kind", kind) != kind:
        raise bad(f"describes a {shown(meta['kind'])} model, not {kind!r}")
    try:
        check_sizes(meta, kind)
    except MetadataError as exc:
        raise bad(str(exc)) from None
    return meta


def _check_shape(kind: str, model, meta: dict, weights: Path) -> None:
    """The weights must fit the metadata, or scoring would fail later with a numpy error."""
    if kind in MLP_KINDS:
        return  # load_state_dict already refuses a state of the wrong shape
    n_features, top_class = model.n_features_in_, int(np.asarray(model.classes_).max(initial=0))
    if n_features != len(meta["features"]) or top_class >= len(meta["classes"]):
        raise ArtifactError(
            f"{weights.name} has {n_features} features and class ids up to {top_class}, but its "
            f"metadata lists {len(meta['features'])} features and {len(meta['classes'])} classes"
        )


def load_model(folder: Path, kind: str, name: str | None = None):
    """Load (model, metadata), verifying the metadata and the weights' hash first; raise ArtifactError otherwise."""
    if kind not in KINDS:
        raise ArtifactError(f"unknown model kind {kind!r}: one of {', '.join(KINDS)}")
    meta_path = folder / f"{name or kind}.json"
    if not storage.exists(meta_path) and not _is_link(meta_path):
        raise ArtifactError(f"no {name or kind} model in {folder}: materialize the {kind}_model asset first")
    meta = _read_metadata(meta_path, kind)
    weights = folder / Path(meta["weights_file"]).name  # never follow a path out of the folder
    if not storage.exists(weights) and not _is_link(weights):
        raise ArtifactError(f"{weights} is missing (named by {meta_path.name})")
    try:
        data = read_bounded(weights, MAX_WEIGHTS_BYTES)
    except MetadataError as exc:
        raise ArtifactError(f"{weights} (named by {meta_path.name}) {exc}") from None
    except OSError as exc:
        raise ArtifactError(f"{weights} (named by {meta_path.name}) could not be read ({exc.strerror or exc})") from exc
    if hashlib.sha256(data).hexdigest() != meta["weights_sha256"]:
        raise ArtifactError(f"{weights.name} does not match the SHA-256 in {meta_path.name}: it was altered")
    if kind in MLP_KINDS and 4 * (parameters := mlp_parameters(meta)) > len(data):
        raise ArtifactError(
            f"{meta_path} describes a network of {parameters:,} parameters, more than {weights.name} "
            f"({len(data):,} bytes, 4 a parameter) holds; retrain with the {kind}_model asset or restore the file"
        )
    try:
        model = _deserialise(kind, data, meta)
    except ArtifactError:
        raise
    except Exception as exc:  # a torch UnpicklingError, a skops untrusted type, a bad archive
        raise ArtifactError(f"{weights.name} could not be loaded safely: {exc}") from exc
    _check_shape(kind, model, meta, weights)
    return model, meta


def _is_link(path) -> bool:
    return not storage.is_remote(path) and Path(path).is_symlink()


def predict_proba(kind: str, model, x: np.ndarray, n_classes: int) -> np.ndarray:
    """Probabilities for every class (columns in class-id order), whatever classes training saw."""
    if kind in MLP_KINDS:
        full = mlp_predict_proba(model, x).astype(np.float64)
    else:
        full = np.zeros((len(x), n_classes))
        full[:, np.asarray(model.classes_, dtype=int)] = model.predict_proba(x)
    return full / full.sum(axis=1, keepdims=True)


def publish_model(candidates: Path, published: Path, kind: str, extra: dict, name: str | None = None) -> Path:
    """Copy an audited candidate into the published folder: weights first, then the JSON (with
    `extra`, e.g. the evaluation that passed), so a reader never sees a JSON without its weights."""
    name = name or kind
    source = candidates / f"{name}.json"
    try:  # an edited candidate is refused, never re-sealed by publishing it
        meta = parse_metadata(read_bounded(source, MAX_METADATA_BYTES))
    except MetadataError as exc:
        raise ArtifactError(f"{source} {exc}; retrain with the {kind}_model asset") from None
    weights = published / Path(meta["weights_file"]).name
    write_bytes(weights, storage.read_bytes(candidates / weights.name))
    path = write_json(published / f"{name}.json", seal_metadata({**meta, **extra}))
    for old in storage.glob(published, f"{name}-*.{_SUFFIX[kind]}"):
        if old.name != weights.name:
            storage.remove(old)
    return path
