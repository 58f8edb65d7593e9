"""A report section: what every part of report.html is, so the table of contents is built from them."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

from crime_pipeline.lib.lake.storage import read_bytes


@dataclass(frozen=True)
class Section:
    """One <h2> section of the report. `body_html` is already escaped HTML (use `esc` on data)."""

    anchor: str  # the id the table of contents links to: lower case, [a-z0-9-]
    title: str
    body_html: str


def esc(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def figure_html(path: Path, caption: str) -> str:
    """A PNG inlined as base64 (the report stays self-contained) with its computed caption."""
    data = base64.b64encode(read_bytes(path)).decode("ascii")
    return (
        f'<figure><img alt="{esc(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )
