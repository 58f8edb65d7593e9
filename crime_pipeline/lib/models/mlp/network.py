"""The MLP itself: the seed's 128-64-32 trunk, optional cell embeddings in front, an offset behind.

`prior_correction_offset` is the class-balanced decision rule as a logit offset: added to the
calibrated logits, it divides each type's probability by its training share.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from crime_pipeline.lib.models.mlp.encoder import InputEncoder


def _trunk(n_inputs: int, n_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(n_inputs, 128),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(128, 64),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(64, 32),
        nn.ReLU(),
        nn.Linear(32, n_classes),
    )


class CrimeMLP(nn.Module):
    """The trunk, with optional cell embeddings in front and an optional fixed offset behind.

    The last `len(vocab_sizes)` input columns are cell ids (0 = rare or unseen cell), carried as
    floats so one tensor holds a batch; each is looked up in its scale's embedding table. The
    `n_offset` columns before them (a log-probability per class) are added to the trunk's logits,
    so the trunk learns what time and place add to that estimate rather than carrying it through
    two dropout layers. With `members` > 1, that many trunks (`net`, then `more`) see the same
    inputs; each is trained on its own loss and the output is the log of their mean probability.
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        dropout: float = 0.3,
        vocab_sizes: tuple[int, ...] | list[int] = (),
        embed_dim: int = 8,
        n_offset: int = 0,
        members: int = 1,
    ):
        super().__init__()
        self.n_offset = n_offset
        self.n_dense = n_features - len(vocab_sizes) - n_offset
        self.embeddings = nn.ModuleList(nn.Embedding(size + 1, embed_dim) for size in vocab_sizes)
        n_inputs = self.n_dense + embed_dim * len(vocab_sizes)
        self.net = _trunk(n_inputs, n_classes, dropout)
        self.more = nn.ModuleList(_trunk(n_inputs, n_classes, dropout) for _ in range(members - 1))
        self.encoder: InputEncoder | None = None  # set when trained on named features
        self.selection_encoder: InputEncoder | None = None  # training counts only, for validation scores; not saved
        self.temperature = 1.0
        self.logit_offset: list[float] | None = None  # added to logits / T (prior correction)

    def member_logits(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each member's logits (offset included)."""
        if not len(self.embeddings) and not self.n_offset:
            return [net(x) for net in (self.net, *self.more)]
        cells = x[:, self.n_dense + self.n_offset :].long()
        parts = [x[:, : self.n_dense]] + [emb(cells[:, i]) for i, emb in enumerate(self.embeddings)]
        inputs = torch.cat(parts, dim=1)
        offset = x[:, self.n_dense : self.n_dense + self.n_offset] if self.n_offset else 0.0
        return [net(inputs) + offset for net in (self.net, *self.more)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return combine(self.member_logits(x))

    def artifact_meta(self) -> dict:
        """Everything besides the state_dict needed to rebuild and apply the model (plain JSON)."""
        return {
            "n_inputs": self.n_dense + self.n_offset + len(self.embeddings),
            "n_offset": self.n_offset,
            "vocab_sizes": [e.num_embeddings - 1 for e in self.embeddings],
            "members": 1 + len(self.more),
            "embed_dim": self.embeddings[0].embedding_dim if len(self.embeddings) else 0,
            "input_encoder": self.encoder.to_dict() if self.encoder else None,
            "temperature": self.temperature,
            "logit_offset": self.logit_offset,
        }

    @classmethod
    def from_artifact_meta(cls, meta: dict, n_classes: int, dropout: float) -> CrimeMLP:
        spec = meta.get("mlp") or {
            "n_inputs": len(meta["features"]),
            "vocab_sizes": [],
            "embed_dim": 0,
            "input_encoder": None,
            "temperature": 1.0,
        }
        model = cls(
            spec["n_inputs"],
            n_classes,
            dropout,
            spec["vocab_sizes"],
            spec["embed_dim"] or 8,
            spec.get("n_offset", 0),
            spec.get("members", 1),
        )
        model.encoder = InputEncoder.from_dict(spec["input_encoder"]) if spec["input_encoder"] else None
        model.temperature = float(spec["temperature"])
        model.logit_offset = spec.get("logit_offset")
        return model


def combine(logits: list[torch.Tensor]) -> torch.Tensor:
    """One member's logits as they are; several: the log of their mean probability (a valid logit vector)."""
    if len(logits) == 1:
        return logits[0]
    return torch.logsumexp(torch.stack([z.log_softmax(1) for z in logits]), 0) - math.log(len(logits))


def prior_correction_offset(class_counts) -> list[float]:
    """-log(training share) per type: p(type | x) / p(type), the posterior as if every type were
    equally common (the decision that maximises mean recall). A type training lacks counts as one."""
    counts = np.asarray(class_counts).astype(float)
    return (-np.log(np.maximum(counts, 1) / counts.sum())).tolist()
