"""Model candidates: scored on validation and saved under models/candidates/ with their metadata.

A candidate is what a model asset trained; model_evaluation audits it and publishes it to models/.
Beside an MLP candidate lie its validation logits (`<name>-validation-<hash>.npy`, plain NumPy,
no pickle): mlp_weighted_model applies its decision rule to them instead of training the network
again, so its validation metrics are exactly those the same network would score.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, log_loss

from crime_pipeline.lib.cities.profiles import model_name
from crime_pipeline.lib.lake import storage
from crime_pipeline.lib.lake.atomic import write_bytes
from crime_pipeline.lib.lake.errors import StageError
from crime_pipeline.lib.lake.layout import LakeLayout
from crime_pipeline.lib.lake.reads import DeclaredReads
from crime_pipeline.lib.models.artifacts import save_model


@dataclass(frozen=True)
class Candidate:
    """One city's saved candidate: its validation metrics, its metadata file, its weights' SHA-256."""

    metrics: dict
    path: Path
    weights_sha256: str


def validation_metrics(y: np.ndarray, proba: np.ndarray, n_classes: int, seconds: float) -> dict:
    """Accuracy and log loss of the validation probabilities, and the seconds training took."""
    return {
        "validation_accuracy": float(accuracy_score(y, proba.argmax(1))),
        "validation_log_loss": float(log_loss(y, np.clip(proba, 1e-12, 1), labels=range(n_classes))),
        "train_seconds": round(seconds, 2),
    }


def save_candidate(
    layout: LakeLayout,
    kind: str,
    city: str,
    model,
    info: dict,
    config: dict,
    metrics: dict,
    extra: dict,
    log: logging.Logger,
) -> Candidate:
    """Save the candidate artifact with its metadata (features, classes, scaler, config, data version...)."""
    meta = {
        "features": info["features"],
        "classes": info["classes"],
        "scaler": info["scaler"],
        "config": config,
        "data_version": info["data_version"],
        "split_strategy": info["strategy"],
        "metrics": metrics,
        "city": city,
        **extra,
    }
    path = save_model(layout.model_candidates, kind, model, meta, model_name(kind, city))
    log.info(f"{kind} ({city}): {metrics}")
    return Candidate(metrics, path, json.loads(storage.read_bytes(path))["weights_sha256"])


def save_validation_logits(folder: Path, name: str, logits: np.ndarray) -> dict:
    """Write a candidate's validation logits, named by their hash (before its metadata, which records
    the file: a crash in between leaves the previous candidate whole); return that record."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(logits, dtype=np.float32), allow_pickle=False)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    path = write_bytes(folder / f"{name}-validation-{digest[:12]}.npy", data)
    return {"file": path.name, "sha256": digest, "rows": int(len(logits))}


def remove_superseded_logits(folder: Path, name: str, keep: str) -> None:
    """Once the metadata names the new logits file, the older ones of that candidate go."""
    for old in storage.glob(folder, f"{name}-validation-*.npy"):
        if old.name != keep:
            storage.remove(old)


def read_validation_logits(reads: DeclaredReads, folder: Path, record: dict, owner: str) -> np.ndarray:
    """The logits a candidate's metadata records, checked against their SHA-256 (`owner` names the
    candidate in the error)."""
    path = folder / Path(record["file"]).name  # never follow a path out of the folder
    if not reads.exists(path):
        raise StageError(f"{path} (named by {owner}) is missing: rematerialize mlp_model")
    data = reads.bytes(path)
    if hashlib.sha256(data).hexdigest() != record["sha256"]:
        raise StageError(f"{path.name} does not match the SHA-256 in {owner}: it was altered; rematerialize mlp_model")
    return np.load(io.BytesIO(data), allow_pickle=False)
