"""Generated incidents in a city's export layout, with the truth behind each row."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from crime_pipeline.lib.synthetic.buffalo import buffalo_frame
from crime_pipeline.lib.synthetic.chicago import chicago_frame
from crime_pipeline.lib.synthetic.dirt import REISSUED_RATE, dirty_export
from crime_pipeline.lib.synthetic.near_repeat import sample_with_near_repeats
from crime_pipeline.lib.synthetic.sample import sample_clean
from crime_pipeline.lib.synthetic.spec import DEFAULT_ROWS, DEFAULT_SEED, spec


@dataclass(frozen=True)
class GeneratedIncidents:
    """A generated export (portal CSV layout) with the truth behind each row."""

    frame: pd.DataFrame  # columns exactly EXPORT_COLUMNS, all text
    true_label: np.ndarray  # class name per row
    dirt: np.ndarray  # "clean", a quarantine rule name, or "reissued_original"/"reissued_newer"
    # near-repeat generation: 0 a background draw, g >= 1 an offspring, -1 a dirt row (triggers nothing)
    generation: np.ndarray | None = None


def generate_incidents(
    rows: int = DEFAULT_ROWS,
    seed: int = DEFAULT_SEED,
    city: str | None = None,
    lake_root: str | Path | None = None,
    near_repeat: bool = True,
) -> GeneratedIncidents:
    """Generate `rows` incidents in the city's export layout; deterministic for a seed.

    A city other than the default is looked up among the profiles of `lake_root` (see `spec`).
    `near_repeat=False`: independent draws, without the near-repeat component (near_repeat.py).
    """
    if rows < 1:
        raise ValueError("rows must be at least 1")
    S = spec(city, lake_root, near_repeat)
    rng = np.random.default_rng(seed)
    n_reissued = int(round(rows * REISSUED_RATE)) if rows >= 100 else 0
    n = rows - n_reissued
    if S.near_repeat is None:
        clean, dirty_rows = sample_clean(n, rng, S), None
        clean["generation"] = np.zeros(n, dtype=np.int64)
    else:
        clean, dirty_rows = sample_with_near_repeats(n, rng, S)
    label_idx, lat, lon, when = clean["label"], clean["lat"], clean["lon"], clean["when"]
    labels = np.asarray(S.classes, dtype=object)[label_idx]
    if S.layout == "chicago_portal":
        out, created = chicago_frame(S, rng, label_idx, lat, lon, when)
        record_column = "Updated On"
    else:
        out, created = buffalo_frame(S, rng, label_idx, labels, lat, lon, when)
        record_column = "Created At"
    frame, true_label, dirt, generation = dirty_export(
        out, created, labels, when, rng, n_reissued, record_column, S, dirty_rows, clean["generation"]
    )
    return GeneratedIncidents(frame=frame, true_label=true_label, dirt=dirt, generation=generation)
