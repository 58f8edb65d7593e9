"""How the forecast group runs: the one declaration of its settings (the Dagster config derives from it).

`forecast_counts` takes these settings as its run config and records them in `forecast/setup.json`;
`hotspot_forecast` and `forecast_backtest` read them from there, so the three assets cannot disagree
about the grid, the events or the test window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

EVENT_SOURCES = ("incidents", "xyt")
XYT_FOLDER = "raw/events"  # where XYT event files go (`<name>_<year>_xyt.csv`, e.g. the Chicago shootings)


@dataclass(frozen=True)
class ForecastSettings:
    """Hotspot forecasts: the grid, the events counted, the methods and the backtest's test window.

    The one declaration of these settings: the Dagster run config of `forecast_counts`
    (defs/forecasts.ForecastConfig) is derived from its fields, types and defaults.
    """

    cell_m: float = field(default=150.0, metadata={"description": "grid cell side in metres"})
    period: Literal["week", "day", "shift"] = field(
        default="week", metadata={"description": "the forecast period starting at each issue time"}
    )
    labels: tuple[str, ...] = field(
        default=(), metadata={"description": "incident types to count (parent types); empty: all crime"}
    )
    events_source: Literal["incidents", "xyt"] = field(
        default="incidents",
        metadata={
            "description": "incidents: the `incidents` table; xyt: every `raw/events/<name>_<year>_xyt.csv` "
            "in the lake (X longitude, Y latitude, T days since that year's start; one class of event)"
        },
    )
    city: str = field(default="", metadata={"description": "whose box the grid covers; empty: the data's city"})
    methods: tuple[str, ...] = field(
        default=(), metadata={"description": "forecast methods to run (lib/forecast/methods.METHODS); empty: all"}
    )
    test_weeks: int = field(default=26, metadata={"description": "weeks the backtest scores (the last complete)"})
    test_from: str = field(
        default="",
        metadata={"description": "ISO date: score every complete week from this one on instead of the last test_weeks"},
    )
    gi_star_months: int = field(default=12, metadata={"description": "months of events the Gi* map counts"})
    seed: int = field(default=0, metadata={"description": "seed of the backtest's bootstrap intervals"})
