"""Train / validation / test splits and the scaler fitted on the training part only."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

SPLITS = ("train", "validation", "test")

# The least each part must hold. Below this, models train on a handful of rows and the metrics are
# noise; 20 also keeps every stratified random part at least as large as the 9 classes. Training
# needs two incident types at least (one type leaves nothing to classify).
MIN_ROWS = {"train": 100, "validation": 20, "test": 20}
MIN_TRAIN_CLASSES = 2


class TooLittleDataError(ValueError):
    """The incidents cannot be split into parts every model can train and be judged on.

    The message is one sentence for the user; `counts` holds the rows per part (and "incidents").
    """

    def __init__(self, message: str, counts: dict[str, int]):
        super().__init__(message)
        self.counts = counts


def incidents_needed(validation_fraction: float, test_fraction: float) -> int:
    """About how many incidents give every part its minimum at these fractions."""
    train_fraction = 1 - validation_fraction - test_fraction
    return max(
        math.ceil(MIN_ROWS["train"] / train_fraction),
        math.ceil(MIN_ROWS["validation"] / validation_fraction),
        math.ceil(MIN_ROWS["test"] / test_fraction),
    )


def check_parts(
    counts: dict[str, int], train_labels: pd.Series, validation_fraction: float, test_fraction: float, why: str = ""
) -> None:
    """Raise TooLittleDataError unless every part has its minimum and training sees two types."""
    n = sum(counts.values())
    got = ", ".join(f"{part} {counts[part]}" for part in SPLITS)
    minimum = " / ".join(str(MIN_ROWS[part]) for part in SPLITS)
    if any(counts[part] < MIN_ROWS[part] for part in SPLITS):
        raise TooLittleDataError(
            f"Too little data to split: {n} incidents gave {got}{why}, but each part needs at least "
            f"{minimum} incidents (train / validation / test), about "
            f"{incidents_needed(validation_fraction, test_fraction)} incidents in all at validation_fraction "
            f"{validation_fraction} and test_fraction {test_fraction}.",
            {"incidents": n, **counts},
        )
    types = train_labels.nunique()
    if types < MIN_TRAIN_CLASSES:
        raise TooLittleDataError(
            f"Too little variety to train: {n} incidents gave {got}, but the training part holds "
            f"{types} incident type(s) ({', '.join(map(str, sorted(train_labels.unique()))) or 'none'}) "
            f"and at least {MIN_TRAIN_CLASSES} are needed.",
            {"incidents": n, **counts},
        )


def temporal_split(table: pd.DataFrame, validation_fraction: float, test_fraction: float) -> pd.Series:
    """Oldest incidents train, the next period validates, the most recent test.

    Cut points are instants: every incident at or after a cut goes to the later part, so no test
    incident is ever older than a training one. One row per case number is assumed (the merged
    incidents table guarantees it) and checked, and so is every part's minimum (`MIN_ROWS`):
    TooLittleDataError says how many incidents each part got.
    """
    if not table["case_number"].is_unique:
        raise ValueError("temporal_split needs one row per case number (de-duplicate first)")
    when = table["incident_datetime"]
    ranked = when.sort_values(kind="stable").to_numpy()
    n = len(ranked)
    if n == 0:
        split = np.array([], dtype=object)
    else:
        t_validation = ranked[int(n * (1 - validation_fraction - test_fraction))]
        t_test = ranked[int(n * (1 - test_fraction))]
        split = np.where(when >= t_test, "test", np.where(when >= t_validation, "validation", "train"))
    counts = {part: int((split == part).sum()) for part in SPLITS}
    instants = when.nunique()
    why = ""
    if n and instants == 1:
        why = f" because all of them are at one instant ({when.iloc[0]}) and a temporal split cannot order them"
    elif instants < n and n >= incidents_needed(validation_fraction, test_fraction):
        why = f" (only {instants} distinct instants; incidents at one instant stay in one part)"
    check_parts(counts, table["label"][split == "train"], validation_fraction, test_fraction, why)
    return pd.Series(split, index=table.index, name="split")


def random_split(table: pd.DataFrame, validation_fraction: float, test_fraction: float, seed: int) -> pd.Series:
    """Stratified random split, for comparison with the seed project's (leaky) numbers.

    Part sizes are checked (`MIN_ROWS`) before splitting, with scikit-learn's rounding, so tiny
    tables get TooLittleDataError rather than scikit-learn's errors.
    """
    if not table["case_number"].is_unique:
        raise ValueError("random_split needs one row per case number (de-duplicate first)")
    n = len(table)
    n_test = math.ceil(test_fraction * n)
    n_validation = math.ceil(validation_fraction / (1 - test_fraction) * (n - n_test))
    sizes = {"train": n - n_test - n_validation, "validation": n_validation, "test": n_test}
    check_parts(sizes, table["label"], validation_fraction, test_fraction)
    index = table.index.to_numpy()
    stratify = table["label_id"].to_numpy()
    counts = np.bincount(stratify)
    can_stratify = counts[counts > 0].min() >= 3
    rest, test = train_test_split(
        index, test_size=test_fraction, random_state=seed, stratify=stratify if can_stratify else None
    )
    train, validation = train_test_split(
        rest,
        test_size=validation_fraction / (1 - test_fraction),
        random_state=seed,
        stratify=table.loc[rest, "label_id"].to_numpy() if can_stratify else None,
    )
    split = pd.Series("train", index=table.index, name="split")
    split.loc[validation] = "validation"
    split.loc[test] = "test"
    check_parts(
        {part: int((split == part).sum()) for part in SPLITS},
        table.loc[split == "train", "label"],
        validation_fraction,
        test_fraction,
    )
    return split


def fit_minmax(train: pd.DataFrame, columns: tuple[str, ...] | list[str]) -> dict[str, list[float]]:
    """Min and max of each column on the training rows: the scaler's whole state, as JSON-able lists."""
    return {c: [float(train[c].min()), float(train[c].max())] for c in columns}


def merge_minmax(a: dict[str, list[float]] | None, b: dict[str, list[float]]) -> dict[str, list[float]]:
    """The scaler of two batches of training rows together (fit_minmax streamed)."""
    if a is None:
        return b
    return {c: [min(a[c][0], b[c][0]), max(a[c][1], b[c][1])] for c in b}


def apply_minmax(frame: pd.DataFrame, scaler: dict[str, list[float]]) -> np.ndarray:
    """Scale columns to [0, 1] by training min/max (values outside training range go beyond)."""
    out = np.empty((len(frame), len(scaler)), dtype=np.float32)
    for j, (column, (low, high)) in enumerate(scaler.items()):
        span = high - low if high > low else 1.0
        out[:, j] = (frame[column].to_numpy(dtype=float) - low) / span
    return out


def split_per_city(
    table: pd.DataFrame, strategy: str, validation_fraction: float, test_fraction: float, seed: int = 0
) -> pd.Series:
    """The split of every city's rows on its own (each city's own time line, its own minimums).

    A table without a `city` column is one city. TooLittleDataError names the city when there are several.
    """

    def one(rows: pd.DataFrame) -> pd.Series:
        if strategy == "temporal":
            return temporal_split(rows, validation_fraction, test_fraction)
        return random_split(rows, validation_fraction, test_fraction, seed)

    if "city" not in table or table["city"].nunique() <= 1:
        return one(table)
    parts = []
    for city, rows in table.groupby("city", sort=True):
        try:
            parts.append(one(rows))
        except TooLittleDataError as exc:
            raise TooLittleDataError(f"{city}: {exc}", {f"{city}/{k}": v for k, v in exc.counts.items()}) from exc
    return pd.concat(parts).reindex(table.index).rename("split")


def city_parts(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Rows of each city (one entry, the default city's, for a table without a `city` column)."""
    from crime_pipeline.lib.cities.profiles import DEFAULT_CITY

    if "city" not in table:
        return {DEFAULT_CITY: table}
    return {str(city): rows for city, rows in table.groupby("city", sort=True)}
