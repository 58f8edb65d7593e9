"""The seed project's MLP, trained on tensors that stay on the device for the whole run.

Trunk (the seed's): input -> 128 ReLU Dropout(0.3) -> 64 ReLU Dropout(0.3) -> 32 ReLU -> one logit
per class (softmax at inference). In front of it (`InputEncoder`, fitted on training rows only):
one-hot hour, weekday and month, Fourier features of the coordinates, and learned embeddings of
grid cells at several scales, cells seen fewer than `cell_min_count` times sharing one rare-cell
bucket. Training: Adam with a one-cycle learning-rate schedule, cross-entropy (optionally
class-weighted), early stopping on validation log loss (weighted alike) with the best epoch's weights restored,
then one temperature fitted on validation. The balanced variant (`prior_correction`) divides the
calibrated probabilities by each type's training share, the decision that maximises mean recall. Batches are slices of a permutation of in-memory
tensors: no per-sample DataLoader, no host copies inside an epoch.

The encoder reads the same scaled feature matrix every other model gets (it undoes the MinMax
scaling for the columns it needs), so callers and `predict` hand the MLP exactly what they hand
the others; its fitted state is plain JSON saved beside the state_dict.
"""

from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch
from scipy.optimize import minimize_scalar
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


@dataclass(frozen=True)
class MLPSettings:
    epochs: int = 40
    batch_size: int = 1024
    learning_rate: float = 3e-3  # the one-cycle peak (or the constant rate)
    dropout: float = 0.3
    patience: int = 6
    class_weighted: bool = False
    bf16_autocast: bool = False
    seed: int = 0
    one_hot_time: bool = True
    fourier: int = 6
    cell_scales: tuple[float, ...] = (0.02, 0.005, 0.001)
    cell_min_count: int = 5
    embed_dim: int = 8
    schedule: str = "onecycle"  # or "constant"
    temperature_scaling: bool = True
    prior_correction: bool = False  # divide probabilities by the training shares: decisions optimal for balanced accuracy
    cpu_threads: int = 1  # the net is too small for intra-op threads to pay; on a busy machine they spin-wait

    def to_dict(self) -> dict:
        return {**asdict(self), "cell_scales": list(self.cell_scales)}


def _cell_keys(lat: np.ndarray, lon: np.ndarray, scale: float) -> np.ndarray:
    # Cells centred on multiples of the scale: a coordinate rounded to 3 decimals stays in its cell.
    return np.round(lat / scale).astype(np.int64) * 10**8 + np.round(lon / scale).astype(np.int64) + 5 * 10**7


@dataclass
class InputEncoder:
    """What goes in front of the trunk; fitted on training rows, saved as plain JSON."""

    features: list[str]
    scaler: dict[str, list[float]]
    one_hot_time: bool
    fourier: int  # frequencies per coordinate (0 = none): 1, 2, 4, ... cycles over the training range
    scales: list[float]  # grid-cell sizes in degrees
    vocab: list[list[int]]  # per scale: sorted keys of cells seen often enough in training

    @classmethod
    def fit(cls, x_train: np.ndarray, features: list[str], scaler: dict, settings: MLPSettings) -> InputEncoder:
        enc = cls(list(features), dict(scaler), settings.one_hot_time, settings.fourier, list(settings.cell_scales), [])
        if enc.scales:
            lat, lon = enc._raw(x_train, "latitude"), enc._raw(x_train, "longitude")
            for scale in enc.scales:
                keys, counts = np.unique(_cell_keys(lat, lon, scale), return_counts=True)
                enc.vocab.append(keys[counts >= settings.cell_min_count].tolist())
        return enc

    def _raw(self, x: np.ndarray, name: str) -> np.ndarray:
        low, high = self.scaler[name]
        return x[:, self.features.index(name)].astype(np.float64) * (high - low if high > low else 1.0) + low

    @property
    def vocab_sizes(self) -> list[int]:
        return [len(v) for v in self.vocab]

    def encode(self, x: np.ndarray) -> np.ndarray:
        """[scaled features, one-hots, Fourier features, cell ids] as one float32 matrix."""
        parts = [np.asarray(x, dtype=np.float32)]
        if self.one_hot_time:
            for name, n, first in (("hour", 24, 0), ("weekday", 7, 0), ("month", 12, 1)):
                value = np.round(self._raw(x, name)).astype(int) - first
                parts.append(np.eye(n, dtype=np.float32)[np.clip(value, 0, n - 1)])
        if self.fourier:
            freq = 2 * np.pi * 2.0 ** np.arange(self.fourier)
            for name in ("latitude", "longitude"):
                angle = x[:, self.features.index(name), None].astype(np.float64) * freq
                parts += [np.sin(angle).astype(np.float32), np.cos(angle).astype(np.float32)]
        if self.scales:
            lat, lon = self._raw(x, "latitude"), self._raw(x, "longitude")
            cells = np.zeros((len(x), len(self.scales)), dtype=np.float32)
            for i, (scale, vocab) in enumerate(zip(self.scales, self.vocab)):
                known = np.asarray(vocab, dtype=np.int64)
                if len(known):
                    keys = _cell_keys(lat, lon, scale)
                    pos = np.searchsorted(known, keys).clip(max=len(known) - 1)
                    cells[:, i] = np.where(known[pos] == keys, pos + 1, 0)
            parts.append(cells)
        return np.concatenate(parts, axis=1)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> InputEncoder:
        return cls(**data)


class CrimeMLP(nn.Module):
    """The trunk, with optional cell embeddings in front.

    The last `len(vocab_sizes)` input columns are cell ids (0 = rare or unseen cell), carried as
    floats so one tensor holds a batch; each is looked up in its scale's embedding table.
    """

    def __init__(self, n_features: int, n_classes: int, dropout: float = 0.3,
                 vocab_sizes: tuple[int, ...] | list[int] = (), embed_dim: int = 8):
        super().__init__()
        self.n_dense = n_features - len(vocab_sizes)
        self.embeddings = nn.ModuleList(nn.Embedding(size + 1, embed_dim) for size in vocab_sizes)
        self.net = nn.Sequential(
            nn.Linear(self.n_dense + embed_dim * len(vocab_sizes), 128), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(128, 64), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(64, 32), nn.ReLU(),
            nn.Linear(32, n_classes),
        )
        self.encoder: InputEncoder | None = None  # set when trained on named features
        self.temperature = 1.0
        self.logit_offset: list[float] | None = None  # added to logits / T (prior correction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not len(self.embeddings):
            return self.net(x)
        cells = x[:, self.n_dense:].long()
        parts = [x[:, :self.n_dense]] + [emb(cells[:, i]) for i, emb in enumerate(self.embeddings)]
        return self.net(torch.cat(parts, dim=1))

    def artifact_meta(self) -> dict:
        """Everything besides the state_dict needed to rebuild and apply the model (plain JSON)."""
        return {"n_inputs": self.n_dense + len(self.embeddings), "vocab_sizes": [e.num_embeddings - 1 for e in self.embeddings],
                "embed_dim": self.embeddings[0].embedding_dim if len(self.embeddings) else 0,
                "input_encoder": self.encoder.to_dict() if self.encoder else None, "temperature": self.temperature,
                "logit_offset": self.logit_offset}

    @classmethod
    def from_artifact_meta(cls, meta: dict, n_classes: int, dropout: float) -> CrimeMLP:
        spec = meta.get("mlp") or {"n_inputs": len(meta["features"]), "vocab_sizes": [], "embed_dim": 0,
                                   "input_encoder": None, "temperature": 1.0}
        model = cls(spec["n_inputs"], n_classes, dropout, spec["vocab_sizes"], spec["embed_dim"] or 8)
        model.encoder = InputEncoder.from_dict(spec["input_encoder"]) if spec["input_encoder"] else None
        model.temperature = float(spec["temperature"])
        model.logit_offset = spec.get("logit_offset")
        return model


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """'balanced' weights n / (k * count), with absent classes given weight 0."""
    counts = np.bincount(y, minlength=n_classes).astype(float)
    return np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0)


def _logits(model: nn.Module, x: torch.Tensor, batch: int) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return torch.cat([model(x[start:start + batch]).float() for start in range(0, len(x), batch)])


def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int, weight=None) -> tuple[float, float]:
    """Validation loss (of the training objective: class-weighted for the weighted variant) and accuracy."""
    logits = _logits(model, x, batch)
    loss = nn.functional.cross_entropy(logits, y, weight=weight).item() if len(x) else 0.0
    return loss, (logits.argmax(1) == y).float().mean().item() if len(x) else 0.0


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The single temperature T minimising validation log loss of softmax(logits / T)."""
    if len(y) == 0:
        return 1.0
    z = torch.as_tensor(logits, dtype=torch.float64)
    t = torch.as_tensor(y, dtype=torch.long)

    def loss(log_t: float) -> float:
        return nn.functional.cross_entropy(z / np.exp(log_t), t).item()

    return float(np.exp(minimize_scalar(loss, bounds=(-1.5, 1.5), method="bounded").x))


def train_epoch(model, optimizer, loss_fn, x, y, batch_size: int, generator, autocast,
                scheduler=None) -> tuple[float, float]:
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
        if scheduler is not None:
            scheduler.step()
        with torch.no_grad():  # running sums stay on the device: no sync per batch
            loss_sum.add_(loss.detach(), alpha=len(idx))
            correct.add_((logits.argmax(1) == yb).sum())
    return loss_sum.item() / len(x), correct.item() / len(x)  # one device sync per epoch


def train_mlp(
    x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, n_classes: int,
    settings: MLPSettings, device: str = "cpu", log: Callable[[str], None] = print,
    features: list[str] | None = None, scaler: dict | None = None,
) -> tuple[CrimeMLP, list[dict]]:
    """Train with early stopping; return the best model (on the CPU) and the per-epoch history.

    With `features` and `scaler` (the columns of x and their MinMax state) the input encoder is
    fitted on x_train and travels with the model; without them x goes into the trunk as it is.
    """
    threads = torch.get_num_threads()
    if device == "cpu":
        torch.set_num_threads(settings.cpu_threads)
    try:
        return _train(x_train, y_train, x_val, y_val, n_classes, settings, device, log, features, scaler)
    finally:
        torch.set_num_threads(threads)


def _train(x_train, y_train, x_val, y_val, n_classes, settings, device, log, features, scaler):
    torch.manual_seed(settings.seed)
    generator = torch.Generator(device=device).manual_seed(settings.seed)
    encoder = InputEncoder.fit(x_train, features, scaler, settings) if features is not None else None
    if encoder is not None:
        x_train, x_val = encoder.encode(x_train), encoder.encode(x_val)
    vocab = encoder.vocab_sizes if encoder else []
    model = CrimeMLP(x_train.shape[1], n_classes, settings.dropout, vocab, settings.embed_dim).to(device)
    xt = torch.as_tensor(x_train, dtype=torch.float32, device=device)
    yt = torch.as_tensor(y_train, dtype=torch.long, device=device)
    xv = torch.as_tensor(x_val, dtype=torch.float32, device=device)
    yv = torch.as_tensor(y_val, dtype=torch.long, device=device)
    weight = None
    if settings.class_weighted:
        weight = torch.as_tensor(class_weights(y_train, n_classes), dtype=torch.float32, device=device)
    loss_fn = nn.CrossEntropyLoss(weight=weight)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    scheduler = None
    if settings.schedule == "onecycle":
        steps = settings.epochs * -(-len(xt) // settings.batch_size)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, settings.learning_rate, total_steps=max(steps, 1))
    elif settings.schedule != "constant":
        raise ValueError(f"unknown schedule {settings.schedule!r}: use 'onecycle' or 'constant'")
    use_bf16 = settings.bf16_autocast and device.startswith("cuda")

    def autocast():
        if use_bf16:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    history: list[dict] = []
    best_loss, best_state, stale = float("inf"), copy.deepcopy(model.state_dict()), 0
    for epoch in range(1, settings.epochs + 1):
        started = time.perf_counter()
        train_loss, train_acc = train_epoch(model, optimizer, loss_fn, xt, yt, settings.batch_size, generator,
                                            autocast, scheduler)
        val_loss, val_acc = _evaluate(model, xv, yv, 8192, weight)
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
    model.encoder = encoder
    if settings.temperature_scaling:
        model.temperature = fit_temperature(_logits(model, xv, 8192).cpu().numpy(), y_val)
        log(f"temperature {model.temperature:.3f} fitted on validation")
    if settings.prior_correction:  # p(type | x) / p(type): the posterior as if every type were equally common
        counts = np.bincount(y_train, minlength=n_classes).astype(float)
        model.logit_offset = (-np.log(np.maximum(counts, 1) / len(y_train))).tolist()
    return model.cpu().eval(), history


def predict_proba(model: CrimeMLP, x: np.ndarray, batch: int = 65536) -> np.ndarray:
    """Softmax probabilities of the scaled feature matrix x, computed on the CPU in batches."""
    model = model.cpu().eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(x), batch):
            chunk = x[start:start + batch]
            if model.encoder is not None:
                chunk = model.encoder.encode(chunk)
            logits = model(torch.as_tensor(chunk, dtype=torch.float32)) / model.temperature
            if model.logit_offset is not None:
                logits = logits + torch.as_tensor(model.logit_offset, dtype=logits.dtype)
            out.append(torch.softmax(logits, 1).numpy())
    return np.concatenate(out) if out else np.empty((0, model.net[-1].out_features), dtype=np.float32)
