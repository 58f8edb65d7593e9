"""The seed project's MLP, trained on tensors that stay on the device for the whole run.

Architecture: input -> 128 ReLU Dropout(0.3) -> 64 ReLU Dropout(0.3) -> 32 ReLU -> one logit per
class (softmax at inference). Adam, cross-entropy (optionally class-weighted), early stopping on
validation loss with the best epoch's weights restored. Batches are slices of a permutation of
in-memory tensors: no per-sample DataLoader, no host copies inside an epoch.
"""

from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn


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


class CrimeMLP(nn.Module):
    def __init__(self, n_features: int, n_classes: int, dropout: float = 0.3):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_features, 128), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(128, 64), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(64, 32), nn.ReLU(),
            nn.Linear(32, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@dataclass(frozen=True)
class MLPSettings:
    epochs: int = 15
    batch_size: int = 1024
    learning_rate: float = 1e-3
    dropout: float = 0.3
    patience: int = 3
    class_weighted: bool = False
    bf16_autocast: bool = False
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """'balanced' weights n / (k * count), with absent classes given weight 0."""
    counts = np.bincount(y, minlength=n_classes).astype(float)
    return np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0)


def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn, batch: int) -> tuple[float, float]:
    model.eval()
    total_loss, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(x), batch):
            logits = model(x[start:start + batch]).float()
            total_loss += loss_fn(logits, y[start:start + batch]).item() * len(logits)
            correct += (logits.argmax(1) == y[start:start + batch]).sum().item()
    return total_loss / max(len(x), 1), correct / max(len(x), 1)


def train_epoch(model, optimizer, loss_fn, x, y, batch_size: int, generator, autocast) -> tuple[float, float]:
    """One pass over (x, y) in shuffled mini-batches; returns mean loss and accuracy."""
    model.train()
    order = torch.randperm(len(x), device=x.device, generator=generator)
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        xb, yb = x[idx], y[idx]
        with autocast():
            logits = model(xb)
            loss = loss_fn(logits.float(), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():  # running sums stay on the device: no sync per batch
            loss_sum.add_(loss.detach(), alpha=len(idx))
            correct.add_((logits.argmax(1) == yb).sum())
    return loss_sum.item() / len(x), correct.item() / len(x)  # one device sync per epoch


def train_mlp(
    x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, n_classes: int,
    settings: MLPSettings, device: str = "cpu", log: Callable[[str], None] = print,
) -> tuple[CrimeMLP, list[dict]]:
    """Train with early stopping; return the best model (on the CPU) and the per-epoch history."""
    torch.manual_seed(settings.seed)
    generator = torch.Generator(device=device).manual_seed(settings.seed)
    model = CrimeMLP(x_train.shape[1], n_classes, settings.dropout).to(device)
    xt = torch.as_tensor(x_train, dtype=torch.float32, device=device)
    yt = torch.as_tensor(y_train, dtype=torch.long, device=device)
    xv = torch.as_tensor(x_val, dtype=torch.float32, device=device)
    yv = torch.as_tensor(y_val, dtype=torch.long, device=device)
    weight = None
    if settings.class_weighted:
        weight = torch.as_tensor(class_weights(y_train, n_classes), dtype=torch.float32, device=device)
    loss_fn = nn.CrossEntropyLoss(weight=weight)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    use_bf16 = settings.bf16_autocast and device.startswith("cuda")

    def autocast():
        if use_bf16:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    history: list[dict] = []
    best_loss, best_state, stale = float("inf"), copy.deepcopy(model.state_dict()), 0
    for epoch in range(1, settings.epochs + 1):
        started = time.perf_counter()
        train_loss, train_acc = train_epoch(model, optimizer, loss_fn, xt, yt, settings.batch_size, generator, autocast)
        val_loss, val_acc = _evaluate(model, xv, yv, loss_fn, 8192)
        seconds = time.perf_counter() - started
        history.append({"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_acc,
                        "val_loss": val_loss, "val_accuracy": val_acc, "seconds": seconds})
        log(f"epoch {epoch}/{settings.epochs}: train loss {train_loss:.4f} acc {train_acc:.4f} | "
            f"val loss {val_loss:.4f} acc {val_acc:.4f} | {len(xt) / seconds:,.0f} samples/s")
        if val_loss < best_loss - 1e-4:
            best_loss, best_state, stale = val_loss, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
            if stale >= settings.patience:
                log(f"early stop after epoch {epoch}: no validation improvement for {stale} epochs")
                break
    model.load_state_dict(best_state)
    return model.cpu().eval(), history


def predict_proba(model: CrimeMLP, x: np.ndarray, batch: int = 65536) -> np.ndarray:
    """Softmax probabilities, computed on the CPU in batches."""
    model = model.cpu().eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(x), batch):
            out.append(torch.softmax(model(torch.as_tensor(x[start:start + batch], dtype=torch.float32)), 1).numpy())
    return np.concatenate(out) if out else np.empty((0, model.net[-1].out_features), dtype=np.float32)
