"""The exploration notebook's figures and the sentence under each, computed from the table shown.

Every function takes the merged `incidents` table (label, incident_datetime, latitude, longitude,
and whatever else it carries). When a `city` column holds more than one value, every figure and
sentence is given per city; nothing here knows which city or which classes to expect.
Figures are built on `matplotlib.figure.Figure` (no pyplot state), and `show` displays them as
PNG, so they appear the same whatever matplotlib backend the kernel ended up with.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from crime_pipeline.lib.reports import captions, trends
from crime_pipeline.lib.reports.plots import time_band_panels
from crime_pipeline.lib.reports.trends import class_order, small_multiples

CITY = "city"
WEEKDAYS = trends.WEEKDAYS


def cities(incidents: pd.DataFrame) -> list[str]:
    """The cities to show separately: the `city` column's values when it has more than one."""
    if CITY not in incidents.columns:
        return []
    names = sorted(incidents[CITY].dropna().astype(str).unique())
    return names if len(names) > 1 else []


def by_city(incidents: pd.DataFrame) -> list[tuple[str | None, pd.DataFrame]]:
    """(city, rows) per city, or [(None, all rows)] for a one-city table."""
    names = cities(incidents)
    if not names:
        return [(None, incidents)]
    return [(name, incidents[incidents[CITY].astype(str) == name]) for name in names]


def _per_city(incidents: pd.DataFrame, sentence: Callable[[pd.DataFrame], str]) -> str:
    return "\n".join(
        sentence(rows) if city is None else f"{city}: {sentence(rows)}" for city, rows in by_city(incidents)
    )


# --- sentences: the report's own (captions.py, trends.py), per city --------------------------------


def class_balance_sentence(incidents: pd.DataFrame) -> str:
    return _per_city(incidents, lambda rows: captions.class_distribution(rows["label"]))


def hour_weekday_sentence(incidents: pd.DataFrame) -> str:
    return _per_city(incidents, trends.hour_weekday_sentence)


def hotspots_sentence(incidents: pd.DataFrame) -> str:
    return _per_city(
        incidents, lambda rows: captions.hotspots_by_time_band(rows.dropna(subset=["latitude", "longitude"]))
    )


def monthly_trend_sentence(incidents: pd.DataFrame) -> str:
    return _per_city(incidents, trends.monthly_sentence)


def year_over_year_sentence(incidents: pd.DataFrame) -> str:
    return _per_city(incidents, trends.year_over_year_sentence)


# --- figures -----------------------------------------------------------------------------------


def _titled(title: str, city: str | None) -> str:
    return title if city is None else f"{city}: {title}"


def class_balance_figure(incidents: pd.DataFrame) -> Figure:
    """Share of each type, one panel per city, types in the same order everywhere."""
    order = class_order(incidents["label"])
    groups = by_city(incidents)
    fig, axes = small_multiples(len(groups), 3, 6.0, 0.35 * len(order) + 1.5)
    for ax, (city, rows) in zip(axes, groups):
        counts = rows["label"].value_counts().reindex(order, fill_value=0)
        shares = counts / max(int(counts.sum()), 1)
        bars = ax.barh(order[::-1], shares.to_numpy()[::-1], color="steelblue")
        for bar, (share, count) in zip(bars, zip(shares.to_numpy()[::-1], counts.to_numpy()[::-1])):
            ax.text(
                bar.get_width(),
                bar.get_y() + bar.get_height() / 2,
                f" {share:.1%} ({count:,})",
                va="center",
                fontsize=8,
            )
        ax.set_xlim(0, max(shares.max(), 0.01) * 1.35)
        ax.set_xlabel("share of incidents")
        ax.set_title(_titled(f"Class balance ({len(rows):,} incidents)", city), fontsize=10)
    fig.tight_layout()
    return fig


def hour_weekday_figures(incidents: pd.DataFrame) -> list[Figure]:
    """Per type, the share of its incidents in each hour of each weekday (one figure per city): the
    report's figure (trends.py), known times and days only."""
    return [
        trends.hour_weekday_figure(
            rows, _titled("Hour of day (x) by weekday (y): share of each type's incidents", city)
        )
        for city, rows in by_city(incidents)
    ]


def _extent(rows: pd.DataFrame) -> tuple[float, float, float, float]:
    """The box holding all but the outermost 0.5% on each side: the city, without stray geocodes."""
    lon = rows["longitude"].quantile([0.005, 0.995]).to_numpy()
    lat = rows["latitude"].quantile([0.005, 0.995]).to_numpy()
    return float(lon[0]), float(lon[1]) + 1e-6, float(lat[0]), float(lat[1]) + 1e-6


def hotspot_figures(incidents: pd.DataFrame) -> list[Figure]:
    """Hexbin density per time band (one figure per city), on one log colour scale of shares so
    bands of different sizes compare fairly."""
    figures = []
    for city, rows in by_city(incidents):
        panels = time_band_panels(rows.dropna(subset=["latitude", "longitude"]))  # the report's bands
        placed = pd.concat(panels.values())
        extent = _extent(placed) if len(placed) else (0.0, 1.0, 0.0, 1.0)
        fig, axes = small_multiples(len(panels), 2, 4.6, 4.2)
        image = None
        for ax, (band, part) in zip(axes, panels.items()):
            if len(part):
                image = ax.hexbin(
                    part["longitude"],
                    part["latitude"],
                    C=np.full(len(part), 1.0 / len(part)),
                    reduce_C_function=np.sum,
                    gridsize=30,
                    extent=extent,
                    cmap="inferno",
                    norm=LogNorm(vmin=1e-4, vmax=5e-2),
                )
            ax.set_xlim(extent[:2])
            ax.set_ylim(extent[2:])
            ax.set_title(f"{band} (n={len(part):,})", fontsize=9)
            ax.tick_params(labelsize=7)
        fig.suptitle(_titled("Incident density by time band", city))
        if image is not None:
            fig.colorbar(image, ax=axes, label="share of the band's incidents per cell (log)", shrink=0.8)
        figures.append(fig)
    return figures


def monthly_trend_figure(incidents: pd.DataFrame, top: int = trends.TOP_TRENDS) -> Figure:
    """Incidents per month for the commonest types, the rest summed; one panel per city."""
    groups = by_city(incidents)
    fig, axes = small_multiples(len(groups), 1, 11.0, 3.8)
    for ax, (city, rows) in zip(axes, groups):
        trends.monthly_trend_plot(ax, rows, _titled("Monthly trend", city), top)
    fig.tight_layout()
    return fig


def show(figures: Figure | Iterable[Figure]) -> None:
    """Display figures as PNG in a notebook (independent of the matplotlib backend)."""
    from IPython.display import Image, display

    for fig in [figures] if isinstance(figures, Figure) else figures:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90)
        display(Image(data=buffer.getvalue(), format="png"))
