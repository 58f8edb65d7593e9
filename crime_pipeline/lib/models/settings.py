"""The settings of the scikit-learn models, and how every model setting carries its description.

Each model's settings are one frozen dataclass: the one declaration of its knobs. The Dagster run
config of its asset (defs/models.py) is derived from the dataclass fields (names, types, defaults
and the descriptions given with `setting`), so the two cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crime_pipeline.lib.models.training import DEFAULT_MAX_TRAIN_ROWS


def setting(default: Any, description: str) -> Any:
    """A dataclass field with its default and the sentence the launchpad shows beside it."""
    return field(default=default, metadata={"description": description})


def max_train_rows_setting() -> Any:
    """The training-sample limit every model asset takes (a new field object each time it is used)."""
    return setting(
        DEFAULT_MAX_TRAIN_ROWS,
        "Train on a stratified sample of at most this many training rows, "
        "each city's types keeping their shares (0 = every row).",
    )


@dataclass(frozen=True)
class TrainingSample:
    """How many training rows a model trains on (the MLP's settings leave it out: its run config adds it)."""

    max_train_rows: int = max_train_rows_setting()


@dataclass(frozen=True)
class LogisticRegressionSettings:
    """Baseline settings: class weighting and inverse regularisation strength."""

    class_weighted: bool = setting(False, "Balanced class weights in the loss.")
    c: float = setting(1.0, "Inverse regularisation strength (scikit-learn's C).")
    max_iter: int = setting(500, "Most lbfgs iterations.")
    max_train_rows: int = max_train_rows_setting()


@dataclass(frozen=True)
class GBDTSettings:
    """Gradient-boosting settings."""

    class_weighted: bool = setting(False, "Balanced class weights in the loss.")
    max_iter: int = setting(150, "Most boosting iterations (early stopping on a 10% hold-out may stop sooner).")
    learning_rate: float = setting(0.1, "Shrinkage of each tree.")
    max_leaf_nodes: int = setting(31, "Most leaves per tree.")
    max_train_rows: int = max_train_rows_setting()
