"""The report's analysis sections beside the models: districts, time and, when forecasts exist, forecasting.

Each comes from its own module (districts.py, trends.py, forecast_section.py); this one reads what they
need from the declared inputs of the report and puts them in reading order.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import pandas as pd

from crime_pipeline.lib.lake.reads import DeclaredReads
from crime_pipeline.lib.reports.sections import Section
from crime_pipeline.lib.validate.unknown_time import DAY_FLAG, TIME_FLAG

_log = logging.getLogger(__name__)
BASE_COLUMNS = ("incident_datetime", "label", "latitude", "longitude", "city", TIME_FLAG, DAY_FLAG)


def _district_columns() -> tuple[str, ...]:
    from crime_pipeline.lib.reports.districts import DISTRICT_COLUMNS

    return tuple(DISTRICT_COLUMNS)


def report_incidents(reads: DeclaredReads, city: str) -> pd.DataFrame:
    """The primary city's incidents, with only the columns the report's sections use (those the table has)."""
    path = reads.layout.table("incidents")
    present = set(reads.parquet_schema(path).names)
    columns = [c for c in (*BASE_COLUMNS, *_district_columns()) if c in present]
    incidents = reads.parquet(path, columns=columns)
    if "city" in incidents:
        incidents = incidents[incidents["city"] == city].reset_index(drop=True)
    return incidents


def date_range(incidents: pd.DataFrame) -> tuple[str, str] | None:
    when = pd.to_datetime(incidents["incident_datetime"]) if len(incidents) else None
    if when is None or when.isna().all():
        return None
    return when.min().strftime("%Y-%m-%d"), when.max().strftime("%Y-%m-%d")


def _optional(name: str, build, log: logging.Logger) -> list[Section]:
    """A section whose module is still a stub (NotImplementedError) is left out, and the log says so."""
    try:
        return [build()]
    except NotImplementedError:
        log.warning(f"report: the {name} section is not implemented yet; left out")
        return []


def _forecast(reads: DeclaredReads, log: logging.Logger) -> list[Section]:
    """The forecast section, shown only when `crime-pipeline forecast` has built the backtest."""
    from crime_pipeline.lib.reports.forecast_section import forecast_section

    layout = reads.layout
    backtest = layout.path("forecast_backtest")
    if "forecast_backtest" not in reads.allowed or not reads.exists(backtest):
        return []
    figures = [layout.path("forecast_figure", figure=name) for name in ("forecast_map", "pai_curves")]
    shown = [reads.path(f) if reads.exists(f) else None for f in figures]
    return _optional("forecast", lambda: forecast_section(reads.json(backtest), *shown), log)


def analysis_sections(
    reads: DeclaredReads, incidents: pd.DataFrame, evaluation: dict, log: logging.Logger = _log
) -> list[Section]:
    from crime_pipeline.lib.reports.districts import district_section
    from crime_pipeline.lib.reports.trends import time_section

    sections = _optional("districts", lambda: district_section(incidents, evaluation), log)
    # The time figures are drawn into a scratch folder and inlined: the report asset writes only
    # report.html and summary.json, and reports/*.png stay the figures asset's.
    with tempfile.TemporaryDirectory() as scratch:
        sections += _optional("time", lambda: time_section(incidents, lambda name: Path(scratch) / name), log)
    return sections + _forecast(reads, log)
