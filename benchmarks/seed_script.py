"""The seed project's approach as one plain script, for timing and accuracy next to the pipeline.

    python benchmarks/seed_script.py EXPORT.csv [--epochs 15] [--batch-size 256] [--json OUT.json]

What the seed did: read the CSV with pandas, drop rows missing a used column, MinMax-scale
latitude, longitude and hour of day, one-hot the weekday, label-encode `Parent Incident Type` as
it is written, split 80/20 at random, and train an MLP 128-64-32 ReLU with dropout 0.3 (Adam,
cross-entropy) for a fixed 15 epochs in batches of 256 from a torch DataLoader, on the CPU with
torch's default threads. No validation, no quarantine, no saved model. Imports nothing from
crime_pipeline on purpose. Prints (and with --json writes) test accuracy, log loss and seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import time

STARTED = time.perf_counter()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import MinMaxScaler  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

USED = ["Latitude", "Longitude", "Hour of Day", "Day of Week", "Parent Incident Type"]


def network(n_in: int, n_out: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(n_in, 128),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(128, 64),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(64, 32),
        nn.ReLU(),
        nn.Linear(32, n_out),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.manual_seed(args.seed)

    df = pd.read_csv(args.csv, low_memory=False)
    rows_read = len(df)
    for column in ("Latitude", "Longitude", "Hour of Day"):
        df[column] = pd.to_numeric(df[column], errors="coerce")
    df = df.dropna(subset=USED)
    numeric = MinMaxScaler().fit_transform(df[["Latitude", "Longitude", "Hour of Day"]])
    weekday = pd.get_dummies(df["Day of Week"]).to_numpy(dtype=np.float32)
    x = np.hstack([numeric, weekday]).astype(np.float32)
    labels, y = np.unique(df["Parent Incident Type"].astype(str), return_inverse=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=args.seed)

    loader = DataLoader(
        TensorDataset(torch.tensor(x_train), torch.tensor(y_train)), batch_size=args.batch_size, shuffle=True
    )
    model = network(x.shape[1], len(labels))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    train_started = time.perf_counter()
    for _ in range(args.epochs):
        model.train()
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
    train_s = time.perf_counter() - train_started

    model.eval()
    with torch.no_grad():
        proba = torch.softmax(model(torch.tensor(x_test)), 1).numpy().astype(np.float64)
    accuracy = float((proba.argmax(1) == y_test).mean())
    log_loss = float(-np.mean(np.log(np.clip(proba[np.arange(len(y_test)), y_test], 1e-12, 1))))
    result = {
        "rows_read": rows_read,
        "rows_used": int(len(df)),
        "train": int(len(y_train)),
        "test": int(len(y_test)),
        "labels": int(len(labels)),
        "inputs": int(x.shape[1]),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "accuracy": accuracy,
        "log_loss": log_loss,
        "train_s": train_s,
        "run_s": time.perf_counter() - STARTED,
        "torch_threads": torch.get_num_threads(),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json + ".tmp", "w") as fh:  # written whole, then renamed: never half a file
            json.dump(result, fh, indent=2)
        os.replace(args.json + ".tmp", args.json)


if __name__ == "__main__":
    main()
