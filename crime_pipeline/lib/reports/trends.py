"""Time: monthly trend, hour x weekday per type and year-over-year change, each with a sentence computed
from the data. The report (`time_section`) and the notebook (explore.py) both call these, so they agree.

Every statistic goes through the unknown-time rule (lib/validate/unknown_time.py): an hour counts only
where the time of day is known, a weekday only where the day is known, and each sentence says how many
incidents were left out. Months and years are always known.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from crime_pipeline.lib.lake.atomic import atomic_path
from crime_pipeline.lib.reports.sections import Section, esc, figure_html
from crime_pipeline.lib.validate.unknown_time import (
    day_unknown,
    left_out_sentence,
    time_left_out,
    time_unknown,
    with_known_time,
)

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MIN_PEAK_ROWS = 200  # fewer incidents than this make a type's busiest hour noise
MIN_YOY_ROWS = 20  # a type's change over a year is named only with this many incidents in the earlier year
TOP_TRENDS = 5  # types drawn as their own line in the monthly trend; the rest are summed
FIGURES = ("trend_monthly.png", "trend_hour_weekday.png", "trend_year_over_year.png")


def class_order(labels: pd.Series) -> list[str]:
    """Classes by count, largest first (ties by name), so no class list is assumed."""
    counts = labels.value_counts()
    return sorted(counts.index, key=lambda c: (-counts[c], str(c)))


# --- the statistics ------------------------------------------------------------------------------


def with_known_hour_and_weekday(incidents: pd.DataFrame) -> pd.DataFrame:
    """Rows whose time of day and day are both known: what an hour x weekday cell counts."""
    return incidents[~(time_unknown(incidents) | day_unknown(incidents)).to_numpy()]


def hour_weekday_left_out(incidents: pd.DataFrame) -> str:
    """How many incidents an hour x weekday statistic leaves out, and why."""
    n = int((time_unknown(incidents) | day_unknown(incidents)).sum())
    return left_out_sentence(n, len(incidents), "time of day or day")


def hour_weekday_counts(incidents: pd.DataFrame) -> pd.DataFrame:
    """Incidents per weekday (rows, Monday first) and hour (columns 0..23), known times and days only."""
    when = pd.to_datetime(with_known_hour_and_weekday(incidents)["incident_datetime"])
    counts = pd.crosstab(when.dt.day_of_week, when.dt.hour)
    return counts.reindex(index=range(7), columns=range(24), fill_value=0)


def monthly_counts(incidents: pd.DataFrame) -> pd.Series:
    """Incidents per calendar month, every month from the first to the last (empty months are 0)."""
    month = pd.to_datetime(incidents["incident_datetime"]).dt.to_period("M")
    if month.empty:
        return pd.Series(dtype=int)
    counts = month.value_counts()
    return counts.reindex(pd.period_range(month.min(), month.max(), freq="M"), fill_value=0).sort_index()


def last_two_years(incidents: pd.DataFrame) -> tuple[pd.PeriodIndex, pd.PeriodIndex] | None:
    """(the 12 months before, the last 12 months) ending at the data's last month; None under 24 months."""
    months = monthly_counts(incidents).index
    if len(months) < 24:
        return None
    return months[-24:-12], months[-12:]


def year_over_year(incidents: pd.DataFrame, group: str = "label") -> pd.DataFrame:
    """Per value of `group` (the type by default): incidents in the 12 months before and the last 12
    months, and the change (NaN where the earlier year had none). Empty under 24 months of data."""
    windows = last_two_years(incidents)
    if windows is None:
        return pd.DataFrame(columns=["before", "last", "change"])
    month = pd.to_datetime(incidents["incident_datetime"]).dt.to_period("M")
    key = incidents[group].astype("string").fillna("(none)")
    before = key[month.isin(windows[0])].value_counts()
    last = key[month.isin(windows[1])].value_counts()
    table = pd.DataFrame({"before": before, "last": last}).fillna(0).astype(int)
    table["change"] = (table["last"] / table["before"].where(table["before"] > 0)) - 1
    return table.sort_values(["last", "before"], ascending=False)


# --- the sentences -------------------------------------------------------------------------------


def _with(text: str, left_out: str) -> str:
    return f"{text} {left_out}" if left_out else text


def _change(change: float) -> str:
    return f"{abs(change):.1%} {'more' if change >= 0 else 'fewer'}"


def hour_weekday_sentence(incidents: pd.DataFrame) -> str:
    """The busiest hour of the week and each common type's busiest hour of day, through the rule."""
    left_out = hour_weekday_left_out(incidents)
    counts = hour_weekday_counts(incidents).to_numpy()
    if counts.sum() == 0:
        return _with("Hour by weekday: no incidents with a known time and day.", left_out)
    day, hour = np.unravel_index(int(np.argmax(counts)), counts.shape)  # ties go to the earliest
    share = float(counts[day, hour] / counts.sum())
    text = (
        f"Hour by weekday: the busiest hour of the week is {WEEKDAYS[day]} {hour:02d}:00, {share:.2%} of "
        f"{int(counts.sum()):,} incidents ({share * 168:.1f} times an even spread over the 168 hours)"
    )
    timed = with_known_time(incidents)
    hours = pd.to_datetime(timed["incident_datetime"]).dt.hour
    peaks = []
    for label in class_order(timed["label"]):
        mine = hours[timed["label"] == label].to_numpy()
        if len(mine) >= MIN_PEAK_ROWS:  # the busiest hour of day, ties to the earliest
            peaks.append(f"{label} {int(np.bincount(mine, minlength=24).argmax()):02d}:00")
    if peaks:
        text += f"; each type's busiest hour of day (types with at least {MIN_PEAK_ROWS} incidents): {', '.join(peaks)}"
    return _with(text + ".", left_out)


def monthly_sentence(incidents: pd.DataFrame) -> str:
    """The span, the busiest and quietest months, and the last 12 months against the first 12."""
    if incidents.empty:
        return "Monthly trend: no incidents."
    monthly = monthly_counts(incidents)
    busiest, quietest = monthly.idxmax(), monthly.idxmin()  # ties go to the earliest month
    text = (
        f"Monthly trend: {len(incidents):,} incidents over {len(monthly)} months ({monthly.index[0]} to "
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
            text += (
                f"; the last 12 months have {_change(last / first - 1)} incidents than the first 12 "
                f"({last:,} against {first:,})"
            )
    return text + "."


def year_over_year_sentence(incidents: pd.DataFrame) -> str:
    """All incidents and the types that rose and fell most, last 12 months against the 12 before."""
    windows = last_two_years(incidents)
    if windows is None:
        months = len(monthly_counts(incidents))
        return f"Year over year: {months} months of data, fewer than the 24 a year-over-year change needs."
    table = year_over_year(incidents)
    before, last = int(table["before"].sum()), int(table["last"].sum())
    span = f"{windows[1][0]} to {windows[1][-1]} against {windows[0][0]} to {windows[0][-1]}"
    total = f"{_change(last / before - 1)} incidents ({last:,} against {before:,})" if before else f"{last:,} incidents"
    text = f"Year over year ({span}): {total}"
    named = table[table["before"] >= MIN_YOY_ROWS].sort_values("change", kind="stable")
    if len(named):
        top, bottom = named.index[-1], named.index[0]
        if named.loc[top, "change"] > 0:
            text += f"; the largest rise is {top} ({named.loc[top, 'change']:+.1%})"
        if named.loc[bottom, "change"] < 0:
            text += f"; the largest fall is {bottom} ({named.loc[bottom, 'change']:+.1%})"
    return text + "."


# --- the figures ---------------------------------------------------------------------------------


def small_multiples(panels: int, ncols: int, width: float, height: float) -> tuple[Figure, list]:
    """A figure of `panels` axes in rows of `ncols` (each `width` x `height` inches), spare axes hidden."""
    nrows = max(1, int(np.ceil(panels / ncols)))
    ncols = min(ncols, max(panels, 1))
    fig = Figure(figsize=(width * ncols, height * nrows))
    axes = list(fig.subplots(nrows, ncols, squeeze=False).flat)
    for ax in axes[panels:]:
        ax.axis("off")
    return fig, axes


def hour_weekday_figure(incidents: pd.DataFrame, title: str = "") -> Figure:
    """Per type (every type, small multiples), the share of its incidents in each hour of each weekday.
    Each panel has its own colour scale: the shape of the week is the point, not the volume."""
    rows = with_known_hour_and_weekday(incidents)
    order = class_order(rows["label"])
    fig, axes = small_multiples(len(order), 3, 5.0, 2.4)
    for ax, label in zip(axes, order):
        group = rows[rows["label"] == label]
        share = hour_weekday_counts(group) / len(group)
        image = ax.imshow(share.to_numpy(), aspect="auto", cmap="magma", interpolation="nearest")
        ax.set_yticks(range(7), [d[:3] for d in WEEKDAYS], fontsize=7)
        ax.set_xticks(range(0, 24, 3), [f"{h:02d}" for h in range(0, 24, 3)], fontsize=7)
        ax.set_title(f"{label} (n={len(group):,})", fontsize=9)
        fig.colorbar(image, ax=ax, format=lambda x, _: f"{x:.1%}").ax.tick_params(labelsize=6)
    fig.suptitle(title or "Hour of day (x) by weekday (y): share of each type's incidents (known times and days)")
    fig.tight_layout()
    return fig


def monthly_trend_plot(ax, incidents: pd.DataFrame, title: str = "Monthly trend", top: int = TOP_TRENDS) -> None:
    """Incidents per month for the commonest types, the rest summed, on one axis."""
    order = class_order(incidents["label"])
    main = order[:top]
    label = incidents["label"].where(incidents["label"].isin(main), "other types")
    months = pd.to_datetime(incidents["incident_datetime"]).dt.to_period("M")
    table = pd.crosstab(months, label)
    if len(table):
        table = table.reindex(pd.period_range(table.index.min(), table.index.max(), freq="M"), fill_value=0)
    for name in [*main, *(["other types"] if len(order) > top else [])]:
        ax.plot(table.index.to_timestamp(), table[name], linewidth=1.1, label=name)
    ax.set_ylabel("incidents per month")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if main:
        ax.legend(fontsize=7, ncols=3)


def monthly_trend_figure(incidents: pd.DataFrame, title: str = "Monthly trend", top: int = TOP_TRENDS) -> Figure:
    """Incidents per month for the commonest types, the rest summed."""
    fig, (ax,) = small_multiples(1, 1, 11.0, 3.8)
    monthly_trend_plot(ax, incidents, title, top)
    fig.tight_layout()
    return fig


def year_over_year_figure(incidents: pd.DataFrame) -> Figure:
    """Per type, the change from the 12 months before to the last 12 months (bars right: more)."""
    table = year_over_year(incidents)
    fig, (ax,) = small_multiples(1, 1, 8.0, 0.35 * max(len(table), 1) + 1.6)
    windows = last_two_years(incidents)
    if windows is None or table.empty:
        ax.text(0.5, 0.5, "fewer than 24 months of data", ha="center", va="center")
        ax.axis("off")
        return fig
    change = table["change"].fillna(0.0)[::-1]
    ax.barh(change.index, change.to_numpy(), color=np.where(change.to_numpy() >= 0, "firebrick", "steelblue"))
    for y, (before, last) in enumerate(zip(table["before"][::-1], table["last"][::-1])):
        ax.text(0, y, f" {before:,} -> {last:,}", va="center", fontsize=7)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.xaxis.set_major_formatter(lambda x, _: f"{x:+.0%}")
    ax.set_xlabel("change in incidents (red: more, blue: fewer)")
    ax.set_title(f"Year over year by type: {windows[1][0]} to {windows[1][-1]} against the 12 months before")
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return path


def time_figures(incidents: pd.DataFrame, report_file: Callable[[str], Path]) -> list[tuple[Path, str]]:
    """Draw the three time figures through `report_file(name)`; (path, computed caption) of each."""
    monthly, hour_weekday, yoy = FIGURES
    return [
        (save_figure(monthly_trend_figure(incidents), report_file(monthly)), monthly_sentence(incidents)),
        (save_figure(hour_weekday_figure(incidents), report_file(hour_weekday)), hour_weekday_sentence(incidents)),
        (save_figure(year_over_year_figure(incidents), report_file(yoy)), year_over_year_sentence(incidents)),
    ]


def time_section(incidents: pd.DataFrame, report_file: Callable[[str], Path]) -> Section:
    """The report's "Time" section: monthly trend, hour x weekday per type, year-over-year change.

    `incidents`: the lake's `incidents` table (one city's rows) with `incident_datetime`, `label` and,
    when present, validation's `time_defaulted_noon` / `date_is_first_of_month` flags (else the rule
    derives them from `incident_datetime`). `report_file(name)`: where a figure is written
    (LakeLayout.report_file); the PNGs are written atomically and inlined in the section.
    """
    figures = time_figures(incidents, report_file)
    intro = (
        "<p>When incidents were recorded. An hour counts only where the export knew the time of day, a weekday "
        "only where it knew the day (the unknown-time rule); months and years are always known. "
        f"{esc(time_left_out(incidents))}</p>"
    )
    return Section("time", "Time", intro + "".join(figure_html(path, caption) for path, caption in figures))
