"""The seed project's MLP, trained on tensors that stay on the device for the whole run.

Trunk (the seed's): input -> 128 ReLU Dropout(0.3) -> 64 ReLU Dropout(0.3) -> 32 ReLU -> one logit
per class (softmax at inference). In front of it (`InputEncoder`, fitted on training rows only):
one-hot hour, weekday and month, Fourier features of the coordinates, learned embeddings of
grid cells at several scales (cells seen fewer than `cell_min_count` times share one rare-cell
bucket), and a target encoding of place: per level, log P(type | cell) from training counts,
smoothed toward the level above (family and strength chosen by out-of-fold likelihood), first
over the spread-out rows (those at no exact point another row shares) from 0.04 down to 0.0025
degrees on 4 grids shifted by a quarter cell (their estimates averaged), then over all rows at
0.001 degrees, where cells holding a repeated point (a store, a bar) are smoothed apart from the
rest: such a place has its own type mix, a cell of spread-out rows barely differs from its
neighbourhood. Training rows get it out of fold (5 folds), so no row sees its own label; once the
model is selected, the saved encoding also counts the validation rows (more rows per place). The
finest level's log-probabilities are also added to the trunk's logits (an offset, as in a GLM):
the trunk learns what time and place add to them instead of carrying them through dropout.
`members` > 1 trains that many trunks side by side and averages their probabilities (off by
default: 3 members gained 0.0006 nats for 2.5 times the training time). Training: Adam with a
one-cycle learning-rate schedule, cross-entropy (optionally class-weighted), early stopping on
validation log loss (weighted alike) with the best epoch's weights restored, then one temperature
fitted on validation. The balanced variant (`prior_correction`) divides the calibrated
probabilities by each type's training share, the decision that maximises mean recall
(mlp_weighted_model applies it to mlp_model's network). Batches are slices of a permutation of
in-memory tensors: no per-sample DataLoader, no host copies inside an epoch.

The encoder reads the same scaled feature matrix every other model gets (it undoes the MinMax
scaling for the columns it needs), so callers and `predict` hand the MLP exactly what they hand
the others; its fitted state is plain JSON saved beside the state_dict.

The modules: settings.py (MLPSettings, select_device); encoder.py (InputEncoder) over
place_encoding.py (the counting and smoothing); network.py (CrimeMLP, the prior correction);
train.py (train_mlp, train_epoch, fit_temperature, predict_proba).
"""

from __future__ import annotations

from crime_pipeline.lib.models.mlp.encoder import InputEncoder
from crime_pipeline.lib.models.mlp.network import CrimeMLP, combine, prior_correction_offset
from crime_pipeline.lib.models.mlp.settings import MLPSettings, select_device
from crime_pipeline.lib.models.mlp.train import (
    fit_temperature,
    predict_proba,
    proba_from_logits,
    scaled_logits,
    train_epoch,
    train_mlp,
)

__all__ = [
    "CrimeMLP",
    "InputEncoder",
    "MLPSettings",
    "combine",
    "fit_temperature",
    "predict_proba",
    "prior_correction_offset",
    "proba_from_logits",
    "scaled_logits",
    "select_device",
    "train_epoch",
    "train_mlp",
]
