"""Districts by place: a generated incident's police district, council district and neighbourhood is the
nearest of a few fixed centres (a Voronoi tessellation of the city box), as real districts are areas.

Centres sit on a grid over the box, each nudged by a fixed offset so borders are not straight lines; no
random draw is made, so the other columns of a seed's export stay what they were. `LAYOUT` enters the
generator version (spec.py): moving a centre is a new version.
"""

from __future__ import annotations

import numpy as np

KM_PER_DEG = 111.0
GOLDEN = 0.6180339887


def grid_centres(rows: int, cols: int) -> np.ndarray:
    """(rows * cols, 2) centres as (lat, lon) fractions of the box, row by row from the south-west,
    each nudged within its cell by a fixed quasi-random offset."""
    i, j = np.divmod(np.arange(rows * cols), cols)
    nudge_lat = ((i * cols + j) * GOLDEN % 1.0 - 0.5) * 0.5
    nudge_lon = ((i * cols + j) * GOLDEN * GOLDEN % 1.0 - 0.5) * 0.5
    return np.column_stack([(i + 0.5 + nudge_lat) / rows, (j + 0.5 + nudge_lon) / cols])


# Per export: how many centres, as (rows, cols) of the grid. Buffalo: 5 police districts (a centre and
# four around it), 9 council districts; neighbourhoods are the hotspots' areas.
BUFFALO_POLICE = np.array([[0.5, 0.5], [0.8, 0.3], [0.78, 0.75], [0.22, 0.28], [0.2, 0.72]])
BUFFALO_COUNCIL = (3, 3)
CHICAGO_DISTRICTS = (5, 5)  # 25 police districts
CHICAGO_WARDS = (5, 10)  # 50 wards
CHICAGO_AREAS = (7, 11)  # 77 community areas
LAYOUT = {
    "buffalo_police": BUFFALO_POLICE.tolist(),
    "buffalo_council": BUFFALO_COUNCIL,
    "chicago": [CHICAGO_DISTRICTS, CHICAGO_WARDS, CHICAGO_AREAS],
    "nudge": GOLDEN,
}


def _km(lat: np.ndarray, lon: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    lat_min, lat_max, lon_min, lon_max = box
    scale = np.cos(np.radians((lat_min + lat_max) / 2))
    return np.column_stack([(lat - lat_min) * KM_PER_DEG, (lon - lon_min) * KM_PER_DEG * scale])


def nearest_point(lat: np.ndarray, lon: np.ndarray, points: np.ndarray, box: tuple) -> np.ndarray:
    """Index of the nearest of `points` ((k, 2) as degrees lat, lon) to each place, by ground distance."""
    here, there = _km(np.asarray(lat, float), np.asarray(lon, float), box), _km(points[:, 0], points[:, 1], box)
    best, index = np.full(len(here), np.inf), np.zeros(len(here), dtype=int)
    for k, point in enumerate(there):  # one centre at a time: memory stays one column of rows
        distance = ((here - point) ** 2).sum(axis=1)
        closer = distance < best  # ties go to the first centre
        best, index = np.where(closer, distance, best), np.where(closer, k, index)
    return index


def nearest_centre(lat: np.ndarray, lon: np.ndarray, centres: np.ndarray, box: tuple) -> np.ndarray:
    """Index of the nearest centre ((k, 2) as fractions of the box) to each place."""
    lat_min, lat_max, lon_min, lon_max = box
    points = np.column_stack(
        [lat_min + centres[:, 0] * (lat_max - lat_min), lon_min + centres[:, 1] * (lon_max - lon_min)]
    )
    return nearest_point(lat, lon, points, box)


def nearest_on_grid(lat: np.ndarray, lon: np.ndarray, shape: tuple[int, int], box: tuple) -> np.ndarray:
    """Index (0-based, row by row from the south-west) of the nearest of a grid of nudged centres."""
    return nearest_centre(lat, lon, grid_centres(*shape), box)
