"""The MLP's settings (the one declaration: the Dagster run config is derived from it) and its device."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from crime_pipeline.lib.models.settings import setting


def select_device(requested: str = "auto", cuda_available: bool | None = None) -> str:
    """'auto' picks CUDA when present, else the CPU; an explicit 'cuda' without a GPU is an error."""
    available = torch.cuda.is_available() if cuda_available is None else cuda_available
    if requested == "auto":
        return "cuda" if available else "cpu"
    if requested.startswith("cuda") and not available:
        raise RuntimeError(f"device {requested!r} requested but CUDA is not available")
    if requested != "cpu" and not requested.startswith("cuda"):
        raise ValueError(f"unknown device {requested!r}: use 'auto', 'cpu' or 'cuda[:N]'")
    return requested


@dataclass(frozen=True)
class MLPSettings:
    """MLP training settings (trunk fixed: 128-64-32 with dropout; see lib/models/mlp for the inputs)."""

    # Defaults are the best row of benchmarks/mlp_ablation.py at 322,000 rows: the smoothed place
    # encoding replaces the Fourier features and the cell embeddings, which then add nothing; point
    # cells, shifted grids and the recount take it within 0.015 nats of the Bayes limit.
    epochs: int = setting(20, "Most training epochs (early stopping may end sooner).")
    batch_size: int = setting(1024, "Rows per mini-batch.")
    learning_rate: float = setting(1e-3, "The one-cycle schedule's peak (or the constant rate).")
    dropout: float = setting(0.3, "Dropout after the first two hidden layers.")
    patience: int = setting(6, "Epochs without a better validation loss before training stops.")
    class_weighted: bool = setting(False, "Balanced class weights in the loss (and the validation loss).")
    bf16_autocast: bool = setting(False, "bfloat16 autocast on CUDA.")
    seed: int = setting(0, "Seed of the initialisation, the batch order and the target-encoding folds.")
    one_hot_time: bool = setting(True, "One-hot hour, weekday and month in front of the trunk.")
    fourier: int = setting(0, "Fourier features per coordinate (0 = none).")
    cell_scales: tuple[float, ...] = setting((), "Grid-cell sizes (degrees) with learned cell embeddings.")
    cell_min_count: int = setting(5, "Cells seen fewer times share one rare-cell embedding.")
    embed_dim: int = setting(8, "Size of each cell embedding.")
    # Target encoding: smoothed, out-of-fold log P(type | cell), coarse to fine; the spread levels
    # count only rows at no repeated exact point and come first, the target levels count all rows.
    spread_scales: tuple[float, ...] = setting(
        (0.04, 0.02, 0.01, 0.005, 0.0025), "Place-encoding cell sizes (degrees) over rows at no repeated point."
    )
    target_scales: tuple[float, ...] = setting((0.001,), "Place-encoding cell sizes (degrees) over all rows.")
    # Spread levels repeated on this many grids shifted by 1/n of a cell, their estimates averaged
    # (averaged shifted histograms: a smoother map than one grid's blocks).
    spread_shifts: int = setting(4, "Grids shifted by 1/n of a cell per spread level, estimates averaged.")
    # All-rows levels smooth cells holding a repeated exact point (a block point: its own type mix)
    # with their own strength, apart from the cells of spread-out rows only.
    point_cells: bool = setting(True, "Smooth cells holding a repeated exact point with their own strength.")
    target_folds: int = setting(5, "Folds of the out-of-fold place encoding of training rows.")
    target_offset: bool = setting(True, "Add the finest level's log P(type | cell) to the logits.")
    # After model selection, count the validation rows too in the place encoding the model is saved
    # with (test split, `predict`); validation metrics are taken before, on training counts only.
    recount_with_validation: bool = setting(
        True, "After model selection, count the validation rows too in the saved place encoding."
    )
    members: int = setting(1, "Trunks trained side by side from different initialisations; probabilities averaged.")
    schedule: str = setting("onecycle", "Learning-rate schedule: 'onecycle' or 'constant'.")
    temperature_scaling: bool = setting(True, "Fit one temperature on validation after training.")
    prior_correction: bool = setting(
        False, "Divide probabilities by the training shares: decisions optimal for balanced accuracy."
    )
    # The net is too small for intra-op threads to pay; on a busy machine they spin-wait.
    cpu_threads: int = setting(1, "Torch threads when training on the CPU.")

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "cell_scales": list(self.cell_scales),
            "target_scales": list(self.target_scales),
            "spread_scales": list(self.spread_scales),
        }
