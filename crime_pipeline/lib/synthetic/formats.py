"""How the exports write dates and points (shared by the layouts and the dirt)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DATETIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"
WEEKDAY_NAMES = np.array(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"])


def format_datetime(when: np.ndarray) -> np.ndarray:
    """Datetimes as the portal writes them (`DATETIME_FORMAT`), as text."""
    return pc.strftime(pa.array(when.astype("datetime64[s]")), format=DATETIME_FORMAT).to_numpy(zero_copy_only=False)


def point_text(layout: str, lat: np.ndarray, lon: np.ndarray) -> list[str]:
    """The Location column: "(lat, lon)" in Chicago's layout, "POINT (lon lat)" in Buffalo's."""
    if layout == "chicago_portal":  # "(lat, lon)", as Chicago writes it
        return [f"({a:.6f}, {b:.6f})" for a, b in zip(lat, lon)]
    return [f"POINT ({b:.6f} {a:.6f})" for a, b in zip(lat, lon)]
