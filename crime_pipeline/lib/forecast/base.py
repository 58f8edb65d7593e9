"""What every forecast method shares: the Forecast it returns, its settings, and the no-peeking guard."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from crime_pipeline.lib.forecast.events import countable


@dataclass
class Forecast:
    """Expected incidents per cell in the period starting at `issue_time`, from events before it.

    `latest_event_used` is the latest event time the method read (None: it read none): the evidence
    the backtest's gate checks against `issue_time`. `params` are the fitted parameters (JSON-ready).
    """

    method: str
    issue_time: pd.Timestamp
    expected: np.ndarray
    latest_event_used: pd.Timestamp | None
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class MethodSettings:
    """The methods' settings. A None hyper-parameter is chosen before the first issue time (see methods.prepare)."""

    validation_periods: int = 8  # periods before the first issue time on which kde's bandwidth and decay are chosen
    kde_bandwidths_m: tuple[float, ...] = (75.0, 150.0, 300.0, 600.0)
    kde_decays_days: tuple[float, ...] = (14.0, 60.0, 180.0, 365.0, 1500.0)
    kde_criterion: Literal["pai", "deviance"] = "pai"  # pai: mean PAI at 1/2/5%; deviance: Poisson deviance
    kde_bandwidth_m: float | None = None
    kde_decay_days: float | None = None
    sepp_train_days: int = 365  # EM fits on the events of this many days before the issue time
    sepp_window_days: float = 60.0  # triggering is truncated to this many days (and 1/omega to a third of it)
    sepp_cutoff_cells: int = 4  # and to this many cells in each direction
    # The background's kernel width is each event's distance to its k-th nearest neighbour. A fixed width
    # failed both ways: too wide for a busy address (its repeats read as near-repeats), too narrow for sparse
    # shootings (each explained itself as background).
    sepp_background_k: int = 15
    sepp_iterations: int = 40
    gbdt_train_periods: int = 52  # target periods the learned model is trained on
    gbdt_max_iter: int = 100
    gbdt_max_rows: int = 40_000  # cell-periods it trains on, sampled (see learned._training_rows)
    seed: int = 0  # the learned model's and the bootstrap's
    n_bootstrap: int = 1000


def history_before(history: pd.DataFrame, issue_time: pd.Timestamp, period: str) -> pd.DataFrame:
    """The events a method may use: it refuses history at or after the issue time, and keeps the countable ones."""
    issue_time = pd.Timestamp(issue_time)
    if len(history) and history["time"].max() >= issue_time:
        late = history.loc[history["time"] >= issue_time, "time"]
        raise ValueError(
            f"a forecast issued at {issue_time} was given {len(late)} event(s) at or after it "
            f"(first {late.min()}): methods see only history before the issue time"
        )
    return history[countable(history, period)]


def latest_time(history: pd.DataFrame) -> pd.Timestamp | None:
    return pd.Timestamp(history["time"].max()) if len(history) else None
