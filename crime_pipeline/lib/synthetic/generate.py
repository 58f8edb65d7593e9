"""Generated incidents in a city's export layout, with the truth behind each row."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from crime_pipeline.lib.synthetic.buffalo import buffalo_frame
from crime_pipeline.lib.synthetic.chicago import chicago_frame
from crime_pipeline.lib.synthetic.dirt import REISSUED_RATE, dirty_export
from crime_pipeline.lib.synthetic.sample import sample_clean
from crime_pipeline.lib.synthetic.spec import DEFAULT_ROWS, DEFAULT_SEED, spec


@dataclass(frozen=True)
class GeneratedIncidents:
    """A generated export (portal CSV layout) with the truth behind each row."""

    frame: pd.DataFrame  # columns exactly EXPORT_COLUMNS, all text
    true_label: np.ndarray  # class name per row
    dirt: np.ndarray  # "clean", a quarantine rule name, or "reissued_original"/"reissued_newer"


def generate_incidents(
    rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED, city: str | None = None, lake_root: str | Path | None = None
) -> GeneratedIncidents:
    """Generate `rows` incidents in the city's export layout; deterministic for a seed.

    A city other than the default is looked up among the profiles of `lake_root` (see `spec`).
    """
    if rows < 1:
        raise ValueError("rows must be at least 1")
    S = spec(city, lake_root)
    rng = np.random.default_rng(seed)
    n_reissued = int(round(rows * REISSUED_RATE)) if rows >= 100 else 0
    n = rows - n_reissued
    clean = sample_clean(n, rng, S)
    label_idx, lat, lon, when = clean["label"], clean["lat"], clean["lon"], clean["when"]
    labels = np.asarray(S.classes, dtype=object)[label_idx]
    if S.layout == "chicago_portal":
        out, created = chicago_frame(S, rng, label_idx, lat, lon, when)
        record_column = "Updated On"
    else:
        out, created = buffalo_frame(S, rng, label_idx, labels, lat, lon, when)
        record_column = "Created At"
    frame, true_label, dirt = dirty_export(out, created, labels, when, rng, n_reissued, record_column, S)
    return GeneratedIncidents(frame=frame, true_label=true_label, dirt=dirt)
