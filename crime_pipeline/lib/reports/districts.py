"""Districts: counts, type mix, trend and each model's error per police district (and council district,
neighbourhood) -- the places an analyst reports by.

A district column the data does not have is said so, never invented; rows without a value (empty, or
the export's "UNKNOWN") are counted under `NOT_RECORDED`. The counts and trends come from the
`incidents` table; the per-model metrics are computed by the evaluation on the test split
(`district_model_metrics`, stored as evaluation["districts"]) and only read here. Tables for asset
metadata: `district_tables` and `district_metric_tables`; the report section: `district_section`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crime_pipeline.lib.lake.reads import DeclaredReads
from crime_pipeline.lib.reports import trends
from crime_pipeline.lib.reports.districts_html import section_html
from crime_pipeline.lib.reports.metrics import expected_calibration_error, per_row_log_loss
from crime_pipeline.lib.reports.sections import Section

# The incidents table's district columns (validation's names) and how the report names them.
DISTRICT_COLUMNS: dict[str, str] = {
    "police_district": "Police District",
    "council_district": "Council District",
    "neighborhood": "Neighbourhood",
}
NOT_RECORDED = "(not recorded)"
MIN_METRIC_ROWS = 30  # fewer test incidents than this in a district: its metrics are noise, not shown
JOIN_KEYS = ("case_number", "city")  # how a test row finds its incident (case numbers are unique per city)


def district_values(incidents: pd.DataFrame, column: str) -> pd.Series:
    """A district column as text, with empty and "UNKNOWN" values as `NOT_RECORDED`."""
    text = incidents[column].astype("string").str.strip()
    return text.mask(text.isna() | text.eq("") | text.str.upper().eq("UNKNOWN"), NOT_RECORDED).astype(object)


def present_columns(incidents: pd.DataFrame) -> list[str]:
    """The district columns that hold at least one recorded value."""
    return [c for c in DISTRICT_COLUMNS if c in incidents and (district_values(incidents, c) != NOT_RECORDED).any()]


def missing_sentences(incidents: pd.DataFrame) -> list[str]:
    """One sentence per district column the data lacks, whole or in some of its files."""
    out = []
    present = present_columns(incidents)
    for column, title in DISTRICT_COLUMNS.items():
        if column not in present:
            out.append(f"This export has no {title} column: nothing is shown by {title.lower()}.")
        elif "source_file" in incidents:
            recorded = (district_values(incidents, column) != NOT_RECORDED).groupby(incidents["source_file"]).any()
            lacking = sorted(map(str, recorded.index[~recorded.to_numpy()]))
            if lacking:
                n = int(incidents["source_file"].isin(lacking).sum())
                out.append(
                    f"{', '.join(lacking)} {'has' if len(lacking) == 1 else 'have'} no {title} column: "
                    f"{'its' if len(lacking) == 1 else 'their'} {n:,} incidents are counted as {NOT_RECORDED}."
                )
    return out


def district_table(incidents: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per district, most incidents first: incidents, share of all, the share of each type, and the
    last 12 months against the 12 before (the data's last month ends the window; NaN under 24 months)."""
    key = district_values(incidents, column)
    counts = key.value_counts()
    table = pd.DataFrame({"incidents": counts, "share": counts / max(len(key), 1)})
    types = pd.crosstab(key, incidents["label"], normalize="index")
    types = types[trends.class_order(incidents["label"])]
    table = table.join(types.add_prefix("share "))
    yoy = trends.year_over_year(incidents.assign(_district=key), group="_district")
    table["last 12 months"] = yoy["last"].reindex(table.index) if len(yoy) else np.nan
    table["12 months before"] = yoy["before"].reindex(table.index) if len(yoy) else np.nan
    table["change"] = yoy["change"].reindex(table.index) if len(yoy) else np.nan
    table.index.name = column
    return table.sort_values(["incidents"], ascending=False, kind="stable")


def district_tables(incidents: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """`district_table` for every district column the data has (none for a column it lacks)."""
    return {column: district_table(incidents, column) for column in present_columns(incidents)}


# --- per-model metrics on the test split (computed by the evaluation) ------------------------------


def incident_districts(reads: DeclaredReads, test_rows: pd.DataFrame) -> pd.DataFrame:
    """The case number, city and district columns of `incidents` (those it has) for the case numbers of
    `test_rows` only: what `test_row_districts` looks them up in, without reading every incident's
    text. Empty (no district columns) when the test rows carry no case number or there is no table."""
    path = reads.layout.table("incidents")
    if "case_number" not in test_rows or not reads.exists(path):
        return pd.DataFrame()
    names = reads.parquet_schema(path).names
    columns = [c for c in (*JOIN_KEYS, *DISTRICT_COLUMNS) if c in names]
    wanted = pd.unique(test_rows["case_number"].astype(str)).tolist()
    return reads.parquet(path, columns=columns, filters=[("case_number", "in", wanted)] if wanted else None)


def test_row_districts(test_rows: pd.DataFrame, incidents: pd.DataFrame) -> pd.DataFrame:
    """The district columns of each test row (in `test_rows`' order), looked up in `incidents` by case
    number (and city, where both have one); `NOT_RECORDED` where a row has none. No columns when
    `incidents` has no district column or the rows cannot be looked up."""
    columns = present_columns(incidents) if len(incidents) else []
    keys = [k for k in JOIN_KEYS if k in test_rows and k in incidents]
    if not columns or "case_number" not in keys:
        return pd.DataFrame(index=range(len(test_rows)))
    lookup = incidents[[*keys, *columns]].drop_duplicates(keys, keep="last")
    for column in columns:
        lookup[column] = district_values(lookup, column)
    found = test_rows[keys].reset_index(drop=True).merge(lookup, on=keys, how="left")
    return found[columns].fillna(NOT_RECORDED)


def _metrics(y: np.ndarray, proba: np.ndarray) -> dict:
    return {
        "accuracy": float((proba.argmax(axis=1) == y).mean()),
        "log_loss": float(per_row_log_loss(y, proba).mean()),
        "ece": expected_calibration_error(y, proba),
    }


def district_model_metrics(districts: pd.DataFrame, y: np.ndarray, probas: dict[str, np.ndarray]) -> dict:
    """evaluation["districts"]: per district column of `districts` (one row per test row), per district
    (most test incidents first): its test incidents and each model's accuracy, log loss and expected
    calibration error; a district with fewer than `MIN_METRIC_ROWS` test incidents gets no metrics.
    `missing` lists the district columns the data has not."""
    out: dict = {
        "columns": {},
        "missing": [c for c in DISTRICT_COLUMNS if c not in districts],
        "min_rows": MIN_METRIC_ROWS,
    }
    for column in districts:
        values = districts[column].to_numpy()
        names, counts = np.unique(values, return_counts=True)
        rows = []
        for name, n in sorted(zip(names, counts), key=lambda nc: (-nc[1], str(nc[0]))):
            mask = values == name
            models = {k: _metrics(y[mask], p[mask]) for k, p in probas.items()} if n >= MIN_METRIC_ROWS else {}
            rows.append({"district": str(name), "n": int(n), "models": models})
        out["columns"][column] = rows
    return out


def district_metric_tables(evaluation: dict) -> dict[str, pd.DataFrame]:
    """evaluation["districts"] as one table per district column: a row per district, a column per
    model and metric ("gbdt accuracy", ...); for asset metadata and the report."""
    tables = {}
    for column, rows in (evaluation.get("districts") or {}).get("columns", {}).items():
        records = [
            {
                column: r["district"],
                "test incidents": r["n"],
                **{f"{k} {m}": v for k, ms in r["models"].items() for m, v in ms.items()},
            }
            for r in rows
        ]
        tables[column] = pd.DataFrame(records).set_index(column)
    return tables


def district_markdown(evaluation: dict) -> dict[str, str]:
    """{"districts/<column>": Markdown table} of `district_metric_tables`, for the asset's metadata."""
    return {
        f"districts/{column}": table.round(4).to_markdown()
        for column, table in district_metric_tables(evaluation).items()
    }


# --- the sentences and the section -----------------------------------------------------------------


def counts_sentence(table: pd.DataFrame, title: str) -> str:
    """The busiest district and, where 24 months allow, the largest rise and fall over the last year."""
    recorded = table.drop(index=NOT_RECORDED, errors="ignore")
    if recorded.empty:
        return f"By {title}: no incidents with a recorded {title.lower()}."
    top = recorded.index[0]
    text = (
        f"By {title}: {len(recorded)} {title.lower()}s; {top} has the most incidents "
        f"({int(recorded.loc[top, 'incidents']):,}, {recorded.loc[top, 'share']:.1%} of all)"
    )
    change = recorded["change"].where(recorded["12 months before"] >= trends.MIN_YOY_ROWS).dropna()
    if len(change):
        rise, fall = change.idxmax(), change.idxmin()
        if change[rise] > 0:
            text += f"; over the last 12 months against the 12 before, the largest rise is {rise} ({change[rise]:+.1%})"
        if change[fall] < 0:
            text += f"; the largest fall is {fall} ({change[fall]:+.1%})"
        if change[rise] <= 0 and change[fall] >= 0:
            text += "; no district changed over the last 12 months against the 12 before"
    elif recorded["change"].isna().all():
        text += "; fewer than 24 months of data, so no change over the last year"
    return text + "."


def metrics_sentence(table: pd.DataFrame, title: str, model: str) -> str:
    """Where `model` is most and least accurate, among districts with enough test incidents."""
    column = f"{model} accuracy"
    if column not in table:
        return ""
    scored = table.drop(index=NOT_RECORDED, errors="ignore")[column].dropna()
    if len(scored) < 2:
        return f"{model} by {title}: too few test incidents per district to compare."
    best, worst = scored.idxmax(), scored.idxmin()
    return (
        f"{model} by {title}: most accurate in {best} ({scored[best]:.1%}), least in {worst} ({scored[worst]:.1%}); "
        f"a spread of {100 * (scored[best] - scored[worst]):.1f} points over {len(scored)} districts."
    )


def best_model(evaluation: dict) -> str | None:
    models = evaluation.get("models") or {}
    return max(models, key=lambda k: models[k]["accuracy"]) if models else None


def district_section(incidents: pd.DataFrame, evaluation: dict) -> Section:
    """The report's "Districts" section.

    `incidents`: the lake's `incidents` table (one city's rows) with `incident_datetime`, `label`,
    `source_file` if it has one, and whichever of `DISTRICT_COLUMNS` it has (check the Parquet schema
    before asking for them). `evaluation`: reports/evaluation.json (the same city's); its "districts"
    entry holds each model's metrics per district on the test split, from `district_model_metrics`.
    """
    tables = district_tables(incidents)
    metric_tables = district_metric_tables(evaluation)
    best = best_model(evaluation)
    parts = []
    for column, table in tables.items():
        title = DISTRICT_COLUMNS[column]
        metrics = metric_tables.get(column)
        sentences = [counts_sentence(table, title)]
        if metrics is not None and best:
            sentences.append(metrics_sentence(metrics, title, best))
        parts.append((title, table, metrics, [s for s in sentences if s]))
    return Section("districts", "Districts", section_html(parts, missing_sentences(incidents), MIN_METRIC_ROWS))
