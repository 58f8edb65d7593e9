"""The Districts section's HTML: per district column, its sentences, the counts table and the model table."""

from __future__ import annotations

import math

import pandas as pd

from crime_pipeline.lib.reports.sections import esc

MAX_ROWS = 15  # districts shown per table, most incidents first; all of them are in the asset's metadata


def _cell(value, kind: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "&ndash;"
    if kind == "share":
        return f"{value:.1%}"
    if kind == "change":
        return f"{value:+.1%}"
    return f"{int(value):,}"


def _kind(column: str) -> str:
    if column.startswith("share") or column == "share":
        return "share"
    return "change" if column == "change" else "count"


def counts_html(table: pd.DataFrame) -> str:
    shown = table.head(MAX_ROWS)
    head = "".join(f"<th>{esc(c)}</th>" for c in [table.index.name, *table.columns])
    body = "".join(
        "<tr><td>"
        + esc(name)
        + "</td>"
        + "".join(f"<td>{_cell(row[c], _kind(c))}</td>" for c in table.columns)
        + "</tr>"
        for name, row in shown.iterrows()
    )
    more = f"<p>and {len(table) - MAX_ROWS} more (all in the asset's metadata).</p>" if len(table) > MAX_ROWS else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def metrics_html(table: pd.DataFrame) -> str:
    """One cell per model: accuracy / log loss / ECE."""
    models = list(dict.fromkeys(c.rsplit(" ", 1)[0] for c in table.columns if c.endswith(" accuracy")))
    head = f"<th>{esc(table.index.name)}</th><th>test incidents</th>" + "".join(
        f"<th>{esc(m)}<br>accuracy / log loss / ECE</th>" for m in models
    )
    rows = []
    for name, row in table.head(MAX_ROWS).iterrows():
        cells = []
        for m in models:
            acc, loss, ece = (row.get(f"{m} {k}") for k in ("accuracy", "log_loss", "ece"))
            cells.append(
                "<td>&ndash;</td>"
                if acc is None or (isinstance(acc, float) and math.isnan(acc))
                else f"<td>{acc:.1%} / {loss:.3f} / {ece:.3f}</td>"
            )
        rows.append(f"<tr><td>{esc(name)}</td><td>{int(row['test incidents']):,}</td>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def section_html(parts: list, missing: list[str], min_rows: int) -> str:
    """`parts`: (title, counts table, metrics table or None, sentences) per district column."""
    intro = (
        "<p>Where incidents were recorded, by the districts the export names: counts, the share of each type, "
        "and the last 12 months against the 12 before, from every incident; each model's accuracy, log loss "
        f"and expected calibration error (ECE) per district on the test split (districts with fewer than "
        f"{min_rows} test incidents get none: too few to tell).</p>"
    )
    html = [intro, *(f"<p>{esc(s)}</p>" for s in missing)]
    if not parts:
        html.append("<p>No district column holds a value: no table by district.</p>")
    for title, table, metrics, sentences in parts:
        html.append(f"<h3>By {esc(title)}</h3>")
        html.extend(f"<p>{esc(s)}</p>" for s in sentences)
        html.append(counts_html(table))
        if metrics is not None:
            html.append(metrics_html(metrics))
        else:
            html.append("<p>This evaluation holds no metrics by district (evaluation.json predates them).</p>")
    return "".join(html)
