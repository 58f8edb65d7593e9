"""MLP training throughput: our training step next to a bare torch loop, same network, same tensors.

Run: python benchmarks/mlp_throughput.py [--rows 200000] [--epochs 3] [--rounds 3] [--device auto]
Prints samples/s for both and their ratio (ours / bare); the target is >= 0.8.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import numpy as np
import torch
from torch import nn

from crime_pipeline.lib.mlp import CrimeMLP, select_device, train_epoch


def bare_epoch(model, optimizer, loss_fn, x, y, batch_size):
    """The plainest correct loop: shuffle, slice, step."""
    model.train()
    order = torch.randperm(len(x), device=x.device)
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        optimizer.zero_grad()
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=17)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    device = select_device(args.device)
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.random((args.rows, args.features), dtype=np.float32), device=device)
    y = torch.as_tensor(rng.integers(0, 9, args.rows), device=device)

    def timed(step) -> float:
        torch.manual_seed(0)
        model = CrimeMLP(args.features, 9).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = nn.CrossEntropyLoss()
        step(model, optimizer, loss_fn)  # warm-up epoch
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(args.epochs):
            step(model, optimizer, loss_fn)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return args.rows * args.epochs / (time.perf_counter() - started)

    generator = torch.Generator(device=device).manual_seed(0)
    ours_runs, bare_runs = [], []
    for _ in range(args.rounds):  # interleaved, so drift in machine load hits both alike
        ours_runs.append(timed(lambda m, o, l: train_epoch(m, o, l, x, y, args.batch_size, generator, contextlib.nullcontext)))
        bare_runs.append(timed(lambda m, o, l: bare_epoch(m, o, l, x, y, args.batch_size)))
    ours, bare = float(np.median(ours_runs)), float(np.median(bare_runs))
    print(f"device={device} rows={args.rows} batch={args.batch_size} epochs={args.epochs} threads={torch.get_num_threads()}")
    print(f"ours: {ours:,.0f} samples/s (median of {args.rounds})")
    print(f"bare: {bare:,.0f} samples/s (median of {args.rounds})")
    print(f"ratio ours/bare: {ours / bare:.3f} (target >= 0.8)")


if __name__ == "__main__":
    main()
