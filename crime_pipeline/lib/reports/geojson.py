"""The report's hotspot cells as GeoJSON (RFC 7946) a GIS tool opens (`predict`'s points: models/scoring.py).

Coordinates are [longitude, latitude] in WGS 84, polygons' outer rings closed and counter-clockwise;
only plain JSON is written, so QGIS, geopandas or a web map reads it without a new dependency here.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from crime_pipeline.lib.cities.profiles import CityProfile  # noqa: E402
from crime_pipeline.lib.reports.plots import HEXBIN_GRIDSIZE  # noqa: E402


def _hexbin_counts(lon, lat, extent) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every cell of the report's hexbin grid (same extent and grid size as its maps): centres, the
    hexagon's vertices relative to a centre, and the count per cell."""
    fig, ax = plt.subplots()
    try:
        cells = ax.hexbin(lon, lat, gridsize=HEXBIN_GRIDSIZE, extent=extent, mincnt=0)
        return (
            np.asarray(cells.get_offsets(), dtype=float),
            np.asarray(cells.get_paths()[0].vertices, dtype=float),
            np.asarray(cells.get_array(), dtype=float),
        )
    finally:
        plt.close(fig)


def _ring(center: np.ndarray, hexagon: np.ndarray) -> list[list[float]]:
    points = [[round(float(x), 6), round(float(y), 6)] for x, y in center + hexagon[:6]]
    area2 = sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(points, points[1:] + points[:1]))
    if area2 < 0:  # RFC 7946: exterior rings are counter-clockwise
        points.reverse()
    return points + [points[0]]


def hotspot_cells(incidents: pd.DataFrame, classes: list[str], profile: CityProfile) -> dict:
    """The hotspot maps' hexagonal cells holding at least one incident, as a FeatureCollection of
    polygons with the number of incidents, the share of all incidents, the rank by count and the count
    of every type."""
    box = profile.box
    extent = (box.lon_min, box.lon_max, box.lat_min, box.lat_max)
    centers, hexagon, total = _hexbin_counts(incidents["longitude"], incidents["latitude"], extent)
    by_type = {}
    for name in classes:
        rows = incidents[incidents["label"] == name]
        by_type[name] = _hexbin_counts(rows["longitude"], rows["latitude"], extent)[2]
    order = np.argsort(-total, kind="stable")
    rank = np.empty(len(total), dtype=int)
    rank[order] = np.arange(1, len(total) + 1)
    n = max(float(total.sum()), 1.0)
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [_ring(centers[i], hexagon)]},
            "properties": {
                "incidents": int(total[i]),
                "share": round(float(total[i]) / n, 6),
                "rank": int(rank[i]),
                **{f"n_{name}": int(by_type[name][i]) for name in classes},
            },
        }
        for i in order
        if total[i] > 0
    ]
    return {"type": "FeatureCollection", "name": f"{profile.name} incident hotspot cells", "features": features}
