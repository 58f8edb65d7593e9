"""Training the MLP: Adam with a one-cycle schedule, early stopping, a temperature; and its probabilities.

Batches are slices of a permutation of in-memory tensors: no per-sample DataLoader, no host
copies inside an epoch. `scaled_logits` and `proba_from_logits` are the two halves of
`predict_proba`, so a caller can keep the logits and apply another decision rule (an offset) later
with exactly the probabilities `predict_proba` would give.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from torch import nn

from crime_pipeline.lib.models.mlp.encoder import InputEncoder
from crime_pipeline.lib.models.mlp.network import CrimeMLP, combine, prior_correction_offset
from crime_pipeline.lib.models.mlp.place_encoding import training_folds
from crime_pipeline.lib.models.mlp.settings import MLPSettings


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """'balanced' weights n / (k * count), with absent classes given weight 0."""
    counts = np.bincount(y, minlength=n_classes).astype(float)
    return np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0)


def _logits(model: nn.Module, x: torch.Tensor, batch: int) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return torch.cat([model(x[start : start + batch]).float() for start in range(0, len(x), batch)])


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


def train_epoch(
    model, optimizer, loss_fn, x, y, batch_size: int, generator, autocast, scheduler=None
) -> tuple[float, float]:
    """One pass over (x, y) in shuffled mini-batches; returns mean loss and accuracy."""
    model.train()
    order = torch.randperm(len(x), device=x.device, generator=generator)
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    for start in range(0, len(x), batch_size):
        idx = order[start : start + batch_size]
        xb, yb = x[idx], y[idx]
        with autocast():  # each member learns on its own loss (the mixture's would tie them together)
            members = model.member_logits(xb) if isinstance(model, CrimeMLP) else [model(xb)]
            loss = sum(loss_fn(z.float(), yb) for z in members)
            logits = combine(members).detach()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        with torch.no_grad():  # running sums stay on the device: no sync per batch
            loss_sum.add_(loss.detach(), alpha=len(idx) / len(members))
            correct.add_((logits.argmax(1) == yb).sum())
    return loss_sum.item() / len(x), correct.item() / len(x)  # one device sync per epoch


def train_mlp(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    n_classes: int,
    settings: MLPSettings,
    device: str = "cpu",
    log: Callable[[str], None] = print,
    features: list[str] | None = None,
    scaler: dict | None = None,
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
    encoder, raw = None, (x_train, y_train, x_val, y_val)
    if features is not None:
        encoder = InputEncoder.fit(x_train, features, scaler, settings, y_train, n_classes)
        folds = training_folds(len(y_train), settings)
        x_train, x_val = encoder.encode(x_train, y_train, folds, settings.target_folds), encoder.encode_rows(x_val)
    vocab = encoder.vocab_sizes if encoder else []
    model = CrimeMLP(
        x_train.shape[1],
        n_classes,
        settings.dropout,
        vocab,
        settings.embed_dim,
        encoder.n_offset if encoder else 0,
        settings.members,
    ).to(device)
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
        train_loss, train_acc = train_epoch(
            model, optimizer, loss_fn, xt, yt, settings.batch_size, generator, autocast, scheduler
        )
        val_loss, val_acc = _evaluate(model, xv, yv, 8192, weight)
        seconds = time.perf_counter() - started
        history.append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "train_accuracy": train_acc,
                "val_loss": val_loss,
                "val_accuracy": val_acc,
                "seconds": seconds,
            }
        )
        log(
            f"epoch {epoch}/{settings.epochs}: train loss {train_loss:.4f} acc {train_acc:.4f} | "
            f"val loss {val_loss:.4f} acc {val_acc:.4f} | {len(xt) / seconds:,.0f} samples/s"
        )
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
        model.logit_offset = prior_correction_offset(np.bincount(y_train, minlength=n_classes))
    if encoder is not None and settings.recount_with_validation and len(y_val):
        model.selection_encoder = encoder
        model.encoder = encoder.recount(np.concatenate([raw[0], raw[2]]), np.concatenate([raw[1], raw[3]]))
        log(f"place encoding recounted on {len(raw[1]) + len(raw[3]):,} training and validation rows")
    return model.cpu().eval(), history


def scaled_logits(
    model: CrimeMLP, x: np.ndarray, batch: int = 65536, encoder: InputEncoder | None = None
) -> np.ndarray:
    """The logits divided by the temperature (float32, before any offset) of the scaled feature matrix
    x, computed on the CPU in batches; `encoder` replaces the model's own (see `predict_proba`)."""
    model = model.cpu().eval()
    encoder = encoder or model.encoder
    out = []
    with torch.no_grad():
        for start in range(0, len(x), batch):
            chunk = x[start : start + batch]
            if encoder is not None:
                chunk = encoder.encode(chunk)
            out.append((model(torch.as_tensor(chunk, dtype=torch.float32)) / model.temperature).numpy())
    return np.concatenate(out) if out else np.empty((0, model.net[-1].out_features), dtype=np.float32)


def proba_from_logits(logits: np.ndarray, logit_offset: list[float] | None = None) -> np.ndarray:
    """Softmax probabilities of `scaled_logits`' output, with the logit offset (prior correction) added."""
    z = torch.as_tensor(logits)
    if logit_offset is not None:
        z = z + torch.as_tensor(logit_offset, dtype=z.dtype)
    return torch.softmax(z, 1).numpy()


def predict_proba(
    model: CrimeMLP, x: np.ndarray, batch: int = 65536, encoder: InputEncoder | None = None
) -> np.ndarray:
    """Softmax probabilities of the scaled feature matrix x, computed on the CPU in batches.

    `encoder` replaces the model's own (validation rows are scored with `selection_encoder`, the
    encoding their model was selected with, never with one that counted their own labels).
    """
    return proba_from_logits(scaled_logits(model, x, batch, encoder), model.logit_offset)
