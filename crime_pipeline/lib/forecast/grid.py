"""A regular grid of square cells (about `cell_m` metres a side) over a city's box."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

METRES_PER_DEGREE_LAT = math.pi * 6_371_000 / 180  # spherical Earth: good to ~0.5% at city scale


@dataclass(frozen=True)
class Grid:
    """Cells numbered row-major from the south-west corner: cell = row * n_cols + col.

    The last row and column reach past the box's north and east edges so that the box is covered
    by whole cells; a point outside the box is in no cell (-1).
    """

    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float
    cell_m: float = 150.0

    def __post_init__(self):
        if not (self.lat_min < self.lat_max and self.lon_min < self.lon_max and self.cell_m > 0):
            raise ValueError(f"a grid needs lat_min < lat_max, lon_min < lon_max and cell_m > 0 (got {self})")

    @property
    def dlat(self) -> float:
        return self.cell_m / METRES_PER_DEGREE_LAT

    @property
    def dlon(self) -> float:
        mid = math.radians((self.lat_min + self.lat_max) / 2)
        return self.cell_m / (METRES_PER_DEGREE_LAT * math.cos(mid))

    @property
    def n_rows(self) -> int:
        return max(1, math.ceil((self.lat_max - self.lat_min) / self.dlat - 1e-9))

    @property
    def n_cols(self) -> int:
        return max(1, math.ceil((self.lon_max - self.lon_min) / self.dlon - 1e-9))

    @property
    def shape(self) -> tuple[int, int]:
        return self.n_rows, self.n_cols

    @property
    def n_cells(self) -> int:
        return self.n_rows * self.n_cols

    @property
    def lat_edges(self) -> np.ndarray:
        return self.lat_min + self.dlat * np.arange(self.n_rows + 1)

    @property
    def lon_edges(self) -> np.ndarray:
        return self.lon_min + self.dlon * np.arange(self.n_cols + 1)

    @property
    def cell_area_sq_km(self) -> float:
        return (self.cell_m / 1000) ** 2

    def cell_of(self, lat, lon) -> np.ndarray:
        """Row-major cell index of each point; -1 for a point outside the box or without coordinates."""
        lat = np.asarray(lat, dtype=float)
        lon = np.asarray(lon, dtype=float)
        with np.errstate(invalid="ignore"):
            inside = (lat >= self.lat_min) & (lat <= self.lat_max) & (lon >= self.lon_min) & (lon <= self.lon_max)
            row = np.floor((np.where(inside, lat, self.lat_min) - self.lat_min) / self.dlat).astype(np.int64)
            col = np.floor((np.where(inside, lon, self.lon_min) - self.lon_min) / self.dlon).astype(np.int64)
        row = row.clip(0, self.n_rows - 1)
        col = col.clip(0, self.n_cols - 1)
        return np.where(inside, row * self.n_cols + col, -1)

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """(lat, lon) of every cell's centre, in cell order."""
        lat = self.lat_min + self.dlat * (np.arange(self.n_rows) + 0.5)
        lon = self.lon_min + self.dlon * (np.arange(self.n_cols) + 0.5)
        return np.repeat(lat, self.n_cols), np.tile(lon, self.n_rows)

    def polygon(self, cell: int) -> list[list[float]]:
        """The cell's closed ring of [lon, lat] corners, counter-clockwise (GeoJSON's exterior ring)."""
        row, col = divmod(int(cell), self.n_cols)
        lat0, lat1 = self.lat_min + self.dlat * row, self.lat_min + self.dlat * (row + 1)
        lon0, lon1 = self.lon_min + self.dlon * col, self.lon_min + self.dlon * (col + 1)
        return [[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]

    def neighbours(self, cell: int, distance: int = 1) -> np.ndarray:
        """Cells within `distance` rows and columns of `cell` (queen contiguity), the cell itself excluded."""
        row, col = divmod(int(cell), self.n_cols)
        rows = np.arange(max(0, row - distance), min(self.n_rows, row + distance + 1))
        cols = np.arange(max(0, col - distance), min(self.n_cols, col + distance + 1))
        cells = (rows[:, None] * self.n_cols + cols[None, :]).ravel()
        return cells[cells != cell]


def grid_for_box(box, cell_m: float = 150.0) -> Grid:
    """The grid over a box: a profile's `box` (lat_min, lat_max, lon_min, lon_max attributes) or such a 4-tuple."""
    if hasattr(box, "lat_min"):
        return Grid(float(box.lat_min), float(box.lat_max), float(box.lon_min), float(box.lon_max), float(cell_m))
    lat_min, lat_max, lon_min, lon_max = box
    return Grid(float(lat_min), float(lat_max), float(lon_min), float(lon_max), float(cell_m))
