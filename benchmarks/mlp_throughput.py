"""MLP training throughput: our training step next to a bare torch loop, same network, same tensors.

Run: python benchmarks/mlp_throughput.py [--rows 200000] [--epochs 3] [--rounds 3] [--threads 1] [--device auto]
Prints samples/s for both and their ratio (ours / bare); the target is >= 0.8. `python -m benchmarks`
runs `measure` as one of its sections.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import numpy as np
import torch
from torch import nn

from crime_pipeline.lib.models.mlp.network import CrimeMLP
from crime_pipeline.lib.models.mlp.settings import MLPSettings, select_device
from crime_pipeline.lib.models.mlp.train import train_epoch


def bare_epoch(model, optimizer, loss_fn, x, y, batch_size):
    """The plainest correct loop: shuffle, slice, step."""
    model.train()
    order = torch.randperm(len(x), device=x.device)
    for start in range(0, len(x), batch_size):
        idx = order[start : start + batch_size]
        optimizer.zero_grad()
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        optimizer.step()


def measure(
    rows: int = 200_000,
    features: int = 17,
    batch_size: int = 1024,
    epochs: int = 3,
    rounds: int = 3,
    device: str = "auto",
    threads: int = MLPSettings.cpu_threads,
) -> dict:
    """Median samples/s of our train_epoch and of bare_epoch, interleaved round by round.

    `threads`: torch CPU threads for both (default: what the pipeline's MLP trains with).
    """
    device = select_device(device)
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        rng = np.random.default_rng(0)
        x = torch.as_tensor(rng.random((rows, features), dtype=np.float32), device=device)
        y = torch.as_tensor(rng.integers(0, 9, rows), device=device)

        def timed(step) -> float:
            torch.manual_seed(0)
            model = CrimeMLP(features, 9).to(device)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            loss_fn = nn.CrossEntropyLoss()
            step(model, optimizer, loss_fn)  # warm-up epoch
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            started = time.perf_counter()
            for _ in range(epochs):
                step(model, optimizer, loss_fn)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            return rows * epochs / (time.perf_counter() - started)

        generator = torch.Generator(device=device).manual_seed(0)
        ours_runs, bare_runs = [], []
        for _ in range(rounds):  # interleaved, so drift in machine load hits both alike
            ours_runs.append(
                timed(lambda m, o, loss: train_epoch(m, o, loss, x, y, batch_size, generator, contextlib.nullcontext))
            )
            bare_runs.append(timed(lambda m, o, loss: bare_epoch(m, o, loss, x, y, batch_size)))
        used_threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)
    ours, bare = float(np.median(ours_runs)), float(np.median(bare_runs))
    return {
        "device": device,
        "rows": rows,
        "batch_size": batch_size,
        "epochs": epochs,
        "rounds": rounds,
        "threads": used_threads,
        "ours": ours,
        "bare": bare,
        "ratio": ours / bare,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=17)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=int,
        default=MLPSettings.cpu_threads,
        help="torch CPU threads (default: the pipeline MLP's; 0 leaves torch's default)",
    )
    args = parser.parse_args()
    m = measure(args.rows, args.features, args.batch_size, args.epochs, args.rounds, args.device, args.threads)
    print(f"device={m['device']} rows={m['rows']} batch={m['batch_size']} epochs={m['epochs']} threads={m['threads']}")
    print(f"ours: {m['ours']:,.0f} samples/s (median of {m['rounds']})")
    print(f"bare: {m['bare']:,.0f} samples/s (median of {m['rounds']})")
    print(f"ratio ours/bare: {m['ratio']:.3f} (target >= 0.8)")


if __name__ == "__main__":
    main()
