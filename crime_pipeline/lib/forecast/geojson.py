"""A week's flagged cells as GeoJSON: what a GIS or a web map loads.

One Feature per (method, cell) flagged at the largest area share: the cell's polygon as a closed
ring of [lon, lat] pairs (RFC 7946 order), with the method, its rank, the expected count and the
smallest area share (1%, 2% or 5%) that flags it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crime_pipeline.lib.forecast.grid import Grid

SHARE_COLUMNS = (("flagged_1", 0.01), ("flagged_2", 0.02), ("flagged_5", 0.05))  # smallest first


def flagged_cells_geojson(forecast: pd.DataFrame, grid: Grid) -> dict:
    """A FeatureCollection of every method's flagged cells of one week's forecast file."""
    flagged = forecast[forecast[SHARE_COLUMNS[-1][0]]].sort_values(["method", "rank"])
    cells = flagged["cell"].to_numpy(dtype=int)
    rows, cols = np.divmod(cells, grid.n_cols)
    lat0, lat1 = np.round(grid.lat_edges[rows], 7), np.round(grid.lat_edges[rows + 1], 7)
    lon0, lon1 = np.round(grid.lon_edges[cols], 7), np.round(grid.lon_edges[cols + 1], 7)
    share = np.select([flagged[c].to_numpy(dtype=bool) for c, _ in SHARE_COLUMNS], [s for _, s in SHARE_COLUMNS])
    features = [
        {
            "type": "Feature",
            "geometry": {  # the closed ring, counter-clockwise from the south-west corner (Grid.polygon's order)
                "type": "Polygon",
                "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]],
            },
            "properties": {
                "method": method,
                "cell": int(cell),
                "rank": int(rank),
                "expected": float(expected),
                "share": float(sh),
                "issue_time": str(issue),
            },
        }
        for w, e, s, n, method, cell, rank, expected, sh, issue in zip(
            lon0.tolist(),
            lon1.tolist(),
            lat0.tolist(),
            lat1.tolist(),
            flagged["method"],
            cells,
            flagged["rank"],
            flagged["expected"],
            share,
            flagged["issue_time"],
        )
    ]
    return {"type": "FeatureCollection", "features": features}
