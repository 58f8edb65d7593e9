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

from crime_pipeline.lib.reports import captions
from crime_pipeline.lib.reports.plots import TIME_BANDS

CITY = "city"
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
NOON_FLAG = "time_defaulted_noon"  # validation's flag: exactly 12:00:00, the export's default time
MIN_PEAK_ROWS = 200  # fewer incidents than this make a type's busiest hour noise
TOP_TRENDS = 5  # types drawn as their own line in the monthly trend; the rest are summed


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


def class_order(labels: pd.Series) -> list[str]:
    """Classes by count, largest first (ties by name), so no class list is assumed."""
    counts = labels.value_counts()
    return sorted(counts.index, key=lambda c: (-counts[c], str(c)))


def known_time(incidents: pd.DataFrame) -> pd.DataFrame:
    """Rows whose time of day is real: 12:00:00 is what the export writes when the time is unknown."""
    if NOON_FLAG not in incidents.columns:
        return incidents
    return incidents[~incidents[NOON_FLAG].fillna(False).astype(bool)]


def _left_out(incidents: pd.DataFrame) -> str:
    dropped = len(incidents) - len(known_time(incidents))
    return f" ({dropped:,} incidents at exactly 12:00:00, the export's default time, are left out.)" if dropped else ""


# --- sentences ---------------------------------------------------------------------------------


def class_balance_sentence(incidents: pd.DataFrame) -> str:
    return _per_city(incidents, lambda rows: captions.class_distribution(rows["label"]))


def _hour_weekday_counts(rows: pd.DataFrame) -> pd.DataFrame:
    when = pd.to_datetime(rows["incident_datetime"])
    counts = pd.crosstab(when.dt.day_of_week, when.dt.hour)
    return counts.reindex(index=range(7), columns=range(24), fill_value=0)


def _peak(rows: pd.DataFrame) -> tuple[str, int, float]:
    """(weekday, hour, share) of the busiest hour of the week; ties go to the earliest."""
    counts = _hour_weekday_counts(rows).to_numpy()
    day, hour = np.unravel_index(int(np.argmax(counts)), counts.shape)
    return WEEKDAYS[day], int(hour), float(counts[day, hour] / counts.sum())


def _hour_weekday(incidents: pd.DataFrame) -> str:
    rows = known_time(incidents)
    if rows.empty:
        return "Hour by weekday: no incidents with a known time." + _left_out(incidents)
    day, hour, share = _peak(rows)
    text = (
        f"Hour by weekday: the busiest hour of the week is {day} {hour:02d}:00, {share:.2%} of {len(rows):,} "
        f"incidents ({share * 168:.1f} times an even spread over the 168 hours)"
    )
    hours = pd.to_datetime(rows["incident_datetime"]).dt.hour
    peaks = []
    for label in class_order(rows["label"]):
        mine = hours[rows["label"] == label].to_numpy()
        if len(mine) >= MIN_PEAK_ROWS:  # the busiest hour of day, ties to the earliest
            peaks.append(f"{label} {int(np.bincount(mine, minlength=24).argmax()):02d}:00")
    if peaks:
        text += f"; each type's busiest hour of day (types with at least {MIN_PEAK_ROWS} incidents): {', '.join(peaks)}"
    return text + "." + _left_out(incidents)


def hour_weekday_sentence(incidents: pd.DataFrame) -> str:
    return _per_city(incidents, _hour_weekday)


def hotspots_sentence(incidents: pd.DataFrame) -> str:
    def one(rows: pd.DataFrame) -> str:
        placed = known_time(rows).dropna(subset=["latitude", "longitude"])
        return captions.hotspots_by_time_band(placed) + _left_out(rows)

    return _per_city(incidents, one)


def _monthly(rows: pd.DataFrame) -> pd.Series:
    """Incidents per calendar month, every month from the first to the last (empty months are 0)."""
    month = pd.to_datetime(rows["incident_datetime"]).dt.to_period("M")
    counts = month.value_counts()
    return counts.reindex(pd.period_range(month.min(), month.max(), freq="M"), fill_value=0).sort_index()


def _trend(rows: pd.DataFrame) -> str:
    if rows.empty:
        return "Monthly trend: no incidents."
    monthly = _monthly(rows)
    busiest, quietest = monthly.idxmax(), monthly.idxmin()  # ties go to the earliest month
    text = (
        f"Monthly trend: {len(rows):,} incidents over {len(monthly)} months ({monthly.index[0]} to "
        f"{monthly.index[-1]}); the busiest month was {busiest} with {monthly[busiest]:,}, the quietest "
        f"{quietest} with {monthly[quietest]:,}"
    )
    if len(monthly) >= 24:
        first, last = int(monthly.iloc[:12].sum()), int(monthly.iloc[-12:].sum())
        if last >= 2 * first:  # "90.0 times as many", not "8900.0% more" (first > 0: months start with one)
            text += (
                f"; the last 12 months have {last / first:.1f} times as many incidents as the first 12 "
                f"({last:,} against {first:,})"
            )
        else:
            change = last / first - 1
            text += (
                f"; the last 12 months have {abs(change):.1%} {'more' if change >= 0 else 'fewer'} "
                f"incidents than the first 12 ({last:,} against {first:,})"
            )
    return text + "."


def monthly_trend_sentence(incidents: pd.DataFrame) -> str:
    return _per_city(incidents, _trend)


# --- figures -----------------------------------------------------------------------------------


def _grid(panels: int, ncols: int, width: float, height: float) -> tuple[Figure, list]:
    nrows = max(1, int(np.ceil(panels / ncols)))
    ncols = min(ncols, max(panels, 1))
    fig = Figure(figsize=(width * ncols, height * nrows))
    axes = list(fig.subplots(nrows, ncols, squeeze=False).flat)
    for ax in axes[panels:]:
        ax.axis("off")
    return fig, axes


def _titled(title: str, city: str | None) -> str:
    return title if city is None else f"{city}: {title}"


def class_balance_figure(incidents: pd.DataFrame) -> Figure:
    """Share of each type, one panel per city, types in the same order everywhere."""
    order = class_order(incidents["label"])
    groups = by_city(incidents)
    fig, axes = _grid(len(groups), 3, 6.0, 0.35 * len(order) + 1.5)
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
    """Per type, the share of its incidents in each hour of each weekday (one figure per city).
    Each panel has its own colour scale: the shape of the week is the point, not the volume."""
    figures = []
    for city, rows in by_city(incidents):
        rows = known_time(rows)
        order = class_order(rows["label"])
        fig, axes = _grid(len(order), 3, 5.0, 2.4)
        for ax, label in zip(axes, order):
            group = rows[rows["label"] == label]
            share = _hour_weekday_counts(group) / len(group)
            image = ax.imshow(share.to_numpy(), aspect="auto", cmap="magma", interpolation="nearest")
            ax.set_yticks(range(7), [d[:3] for d in WEEKDAYS], fontsize=7)
            ax.set_xticks(range(0, 24, 3), [f"{h:02d}" for h in range(0, 24, 3)], fontsize=7)
            ax.set_title(f"{label} (n={len(group):,})", fontsize=9)
            fig.colorbar(image, ax=ax, format=lambda x, _: f"{x:.1%}").ax.tick_params(labelsize=6)
        fig.suptitle(_titled("Hour of day (x) by weekday (y): share of each type's incidents", city))
        fig.tight_layout()
        figures.append(fig)
    return figures


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
        placed = known_time(rows).dropna(subset=["latitude", "longitude"])
        hour = pd.to_datetime(placed["incident_datetime"]).dt.hour
        extent = _extent(placed) if len(placed) else (0.0, 1.0, 0.0, 1.0)
        fig, axes = _grid(len(TIME_BANDS), 2, 4.6, 4.2)
        image = None
        for ax, (band, (lo, hi)) in zip(axes, TIME_BANDS.items()):
            part = placed[(hour >= lo) & (hour < hi)]
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


def monthly_trend_figure(incidents: pd.DataFrame, top: int = TOP_TRENDS) -> Figure:
    """Incidents per month for the commonest types, the rest summed; one panel per city."""
    groups = by_city(incidents)
    fig, axes = _grid(len(groups), 1, 11.0, 3.8)
    for ax, (city, rows) in zip(axes, groups):
        order = class_order(rows["label"])
        main = order[:top]
        label = rows["label"].where(rows["label"].isin(main), "other types")
        months = pd.to_datetime(rows["incident_datetime"]).dt.to_period("M")
        table = pd.crosstab(months, label)
        if len(table):
            table = table.reindex(pd.period_range(table.index.min(), table.index.max(), freq="M"), fill_value=0)
        for name in [*main, *(["other types"] if len(order) > top else [])]:
            ax.plot(table.index.to_timestamp(), table[name], linewidth=1.1, label=name)
        ax.set_ylabel("incidents per month")
        ax.set_title(_titled("Monthly trend", city), fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncols=3)
    fig.tight_layout()
    return fig


def show(figures: Figure | Iterable[Figure]) -> None:
    """Display figures as PNG in a notebook (independent of the matplotlib backend)."""
    from IPython.display import Image, display

    for fig in [figures] if isinstance(figures, Figure) else figures:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90)
        display(Image(data=buffer.getvalue(), format="png"))
