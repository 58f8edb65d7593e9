"""What an analyst looks at: the next period's flagged cells beside the Gi* hotspots, and PAI curves.

Drawn with matplotlib's Agg backend (no display), written atomically. The streets come from the
incidents themselves: a faint scatter of every event location draws them without any map tiles or
network access.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from crime_pipeline.lib.forecast.grid import Grid  # noqa: E402
from crime_pipeline.lib.lake.atomic import atomic_path  # noqa: E402

MAX_BACKGROUND_POINTS = 200_000  # a seeded sample beyond this: the streets show as well, drawing stays fast
FLAG_COLOURS = {"flagged_5": "#fdd49e", "flagged_2": "#fc8d59", "flagged_1": "#b30000"}  # 5%, 2%, 1% of the area
FLAG_LABELS = {"flagged_1": "top 1% of cells", "flagged_2": "top 2%", "flagged_5": "top 5%"}


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def _background(ax, grid: Grid, points: pd.DataFrame) -> None:
    """Every event location as a faint dot (the streets), the axes in the grid's box, metres square."""
    if len(points) > MAX_BACKGROUND_POINTS:
        points = points.sample(MAX_BACKGROUND_POINTS, random_state=0)
    alpha = float(np.clip(3_000 / max(len(points), 1), 0.05, 0.6))  # sparse data: darker dots, still faint
    ax.scatter(points["lon"], points["lat"], s=0.8, c="#555555", alpha=alpha, linewidths=0, rasterized=True)
    ax.set_xlim(grid.lon_min, grid.lon_max)
    ax.set_ylim(grid.lat_min, grid.lat_max)
    ax.set_aspect(1 / np.cos(np.radians((grid.lat_min + grid.lat_max) / 2)))
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")


def _cell_image(grid: Grid, values: np.ndarray) -> np.ndarray:
    """Per-cell values as an image, row 0 the southernmost row (Grid.cell_of is row-major)."""
    return np.asarray(values, dtype=float).reshape(grid.n_rows, grid.n_cols)


def _extent(grid: Grid) -> list[float]:
    return [grid.lon_min, grid.lon_max, grid.lat_min, grid.lat_max]


def draw_forecast_and_gi_star(
    path: Path,
    grid: Grid,
    forecast: pd.DataFrame,
    points: pd.DataFrame,
    gi: pd.DataFrame,
    week: str,
    method: str,
    gi_months: int = 12,
) -> Path:
    """Left: the cells `method` flags for the week of `week` (top 1%, 2%, 5% of the area). Right:
    Getis-Ord Gi* of the last `gi_months` months, significant hot (red) and cold (blue) cells."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 6))
    ordered = forecast.sort_values("cell")
    level = np.zeros(grid.n_cells)
    for i, column in enumerate(("flagged_5", "flagged_2", "flagged_1"), start=1):
        level[ordered[column].to_numpy(dtype=bool)] = i
    _background(left, grid, points)
    image = np.ma.masked_equal(_cell_image(grid, level), 0)
    cmap = ListedColormap([FLAG_COLOURS["flagged_5"], FLAG_COLOURS["flagged_2"], FLAG_COLOURS["flagged_1"]])
    left.imshow(
        image, origin="lower", extent=_extent(grid), cmap=cmap, vmin=0.5, vmax=3.5, alpha=0.85, interpolation="nearest"
    )
    left.legend(handles=[Patch(color=FLAG_COLOURS[c], label=FLAG_LABELS[c]) for c in FLAG_LABELS], loc="upper right")
    left.set_title(f"Forecast for the week of {week}: {method}, {grid.cell_m:g} m cells")
    _background(right, grid, points)
    by_cell = gi.set_index("cell").reindex(range(grid.n_cells))
    z = by_cell["z"].to_numpy(dtype=float)
    hot = np.where(by_cell["hot"].fillna(False).to_numpy(dtype=bool), z, np.nan)
    cold = np.where(by_cell["cold"].fillna(False).to_numpy(dtype=bool), z, np.nan)
    right.imshow(
        np.ma.masked_invalid(_cell_image(grid, hot)),
        origin="lower",
        extent=_extent(grid),
        cmap="Reds",
        interpolation="nearest",
    )
    right.imshow(
        np.ma.masked_invalid(_cell_image(grid, cold)),
        origin="lower",
        extent=_extent(grid),
        cmap="Blues_r",
        interpolation="nearest",
    )
    n_hot, n_cold = int(np.isfinite(hot).sum()), int(np.isfinite(cold).sum())
    right.set_title(f"Getis-Ord Gi*, last {gi_months} months: {n_hot} hot, {n_cold} cold cells (p < 0.05)")
    return _save(fig, path)


def draw_pai_curves(path: Path, curves: pd.DataFrame, generated: bool = False) -> Path:
    """Mean PAI over the test weeks against the share of the area flagged, one line per method (the
    oracle dashed: the best achievable, on generated data only)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method, part in curves.groupby("method", sort=True):
        part = part.sort_values("area_share")
        style = {"linestyle": "--", "color": "black"} if method == "oracle" else {"marker": "o", "markersize": 3}
        ax.plot(part["area_share"] * 100, part["pai"], label=method, **style)
    ax.set_xscale("log")
    ax.set_xlabel("share of the area flagged (%)")
    ax.set_ylabel("PAI (share of incidents / share of area)")
    title = "PAI against area flagged" + (" (oracle: the generator's true intensity)" if generated else "")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)
