"""The report stages after the gate: the figures and the HTML report.

`draw_report_figures` draws every PNG with a caption computed from its data (reports/captions.json
keeps them for the report); `write_report` renders reports/report.html and its summary.json from
the published files. Model evaluation and publication, the gate before these, is model_gate.py;
the seed project's method reproduced is seed_reproduction.py.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from crime_pipeline.lib.cities.profiles import DEFAULT_CITY, get_profile, model_name
from crime_pipeline.lib.lake.atomic import write_json, write_text
from crime_pipeline.lib.lake.faults import fault_point
from crime_pipeline.lib.lake.layout import LakeLayout
from crime_pipeline.lib.lake.reads import DeclaredReads
from crime_pipeline.lib.lake.storage import exists
from crime_pipeline.lib.models.artifacts import KINDS
from crime_pipeline.lib.reports.analysis import analysis_sections, date_range, report_incidents
from crime_pipeline.lib.reports.evaluation import markdown_table
from crime_pipeline.lib.reports.figures import draw_figures, figure_names
from crime_pipeline.lib.reports.geojson import hotspot_cells
from crime_pipeline.lib.reports.html import render_report
from crime_pipeline.lib.reports.responsible import provenance_sentence

_log = logging.getLogger(__name__)


def figure_list(layout: LakeLayout, figure_captions: dict[str, str]) -> list:
    """Every figure with its caption, in the order the report shows them."""
    return [
        (layout.report_file(n), figure_captions[n])
        for n in figure_names(KINDS)
        if n in figure_captions and exists(layout.report_file(n))
    ]


def quarantine_examples(reads: DeclaredReads, files: list[dict], limit: int = 15) -> pd.DataFrame:
    """The first quarantined rows of each file, with the columns a reader needs to judge them."""
    columns = [
        "source_file",
        "source_line",
        "rules",
        "case_number",
        "incident_datetime",
        "parent_incident_type",
        "incident_description",
        "latitude",
        "longitude",
    ]
    frames = []
    for item in files:
        path = reads.layout.quarantine_table(item["partition_key"])
        if reads.exists(path):
            frames.append(reads.parquet(path).reindex(columns=columns).head(limit))
    if not frames:
        return pd.DataFrame(columns=columns)
    out = pd.concat(frames, ignore_index=True).head(limit)
    out["incident_description"] = out["incident_description"].astype("string").str.slice(0, 120)
    return out


@dataclass
class FiguresDrawn:
    """The figures written to reports/, each with its caption, in the report's order."""

    folder: Path
    figures: list[tuple[Path, str]]
    hotspot_cells: Path | None = None  # reports/hotspot_cells.geojson


def draw_report_figures(reads: DeclaredReads, log: logging.Logger = _log) -> FiguresDrawn:
    """Every figure of the primary city (the one evaluation.json heads with) and captions.json."""
    layout = reads.layout
    evaluation = reads.json(layout.report_file("evaluation.json"))
    city = evaluation.get("city", DEFAULT_CITY)  # the figures show the primary city
    profile = get_profile(city, lake_root=layout.root)
    city_column = ["city"] if "city" in reads.parquet_schema(layout.table("incidents")).names else []
    incidents = reads.parquet(
        layout.table("incidents"), columns=["incident_datetime", "label", "latitude", "longitude", *city_column]
    )
    if "city" in incidents:
        incidents = incidents[incidents["city"] == city]
    predictions = reads.parquet(layout.lake_file("test_predictions.parquet"))
    history = reads.json(layout.models / f"{model_name('mlp', city)}.json")["history"]
    written = draw_figures(layout.report_file, evaluation, incidents, predictions, history, profile)
    cells = write_text(  # compact: a GIS layer, not a document to read
        layout.report_file("hotspot_cells.geojson"),
        json.dumps(hotspot_cells(incidents, evaluation["classes"], profile), separators=(",", ":")),
    )
    write_json(layout.report_file("captions.json"), written)
    log.info(f"wrote {len(written)} figures and the hotspot cells ({cells.name}) to {layout.report_file('')}")
    return FiguresDrawn(folder=layout.report_file(""), figures=figure_list(layout, written), hotspot_cells=cells)


@dataclass
class ReportWritten:
    """reports/report.html, its size, and the headline numbers also written to summary.json."""

    path: Path
    size_kb: float
    summary: dict
    metrics_table: str  # the evaluation's metrics as Markdown

    @property
    def summary_markdown(self) -> str:
        def shown(v):
            if isinstance(v, dict) and "ci95" in v:  # a gain: value, interval, and whether it excludes zero
                ci = v["ci95"] or [float("nan")] * 2
                return f"{v['value']:+.4f} (95% interval {ci[0]:+.4f} to {ci[1]:+.4f}, {v['verdict']})"
            return v

        return "\n".join(f"- **{k}**: {shown(v)}" for k, v in self.summary.items()) + "\n\n" + self.metrics_table


def write_report(reads: DeclaredReads, log: logging.Logger = _log) -> ReportWritten:
    """Render the self-contained HTML report from the published files, then summary.json."""
    layout = reads.layout
    quality = reads.json(layout.report_file("data_quality.json"))
    leakage = reads.json(layout.lake_file("leakage_check.json"))
    evaluation = reads.json(layout.report_file("evaluation.json"))
    figures_shown = figure_list(layout, reads.json(layout.report_file("captions.json")))
    for figure, _ in figures_shown:
        reads.path(figure)
    incidents = report_incidents(reads, evaluation.get("city", DEFAULT_CITY))
    dates = date_range(incidents)
    html = render_report(
        quality,
        leakage,
        evaluation,
        figures_shown,
        quarantine_examples(reads, quality["files"]),
        datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        seed=reads.json(layout.report_file("seed_reproduction.json")),
        lake_root=layout.root,
        analysis=analysis_sections(reads, incidents, evaluation, log),
        date_range=dates,
    )
    fault_point("report:before_write")
    path = write_text(layout.report_file("report.html"), html)
    best = max(evaluation["models"].items(), key=lambda kv: kv[1]["accuracy"])
    summary = {
        "report": str(path),
        "rows_read": quality["totals"]["rows_read"],
        "valid": quality["totals"]["valid"],
        "best_model": best[0],
        "best_accuracy": round(best[1]["accuracy"], 4),
        "majority_accuracy": round(evaluation["baselines"]["majority"]["accuracy"], 4),
        "best_gain_over_majority": (best[1].get("gain") or {}).get("accuracy_over_majority"),
        "bayes_accuracy": round(evaluation["bayes"]["accuracy"], 4) if evaluation.get("bayes") else None,
        "data": provenance_sentence(quality, dates),
        "cities": [r["city"] for r in evaluation.get("comparison", [])],
    }
    write_json(layout.report_file("summary.json"), summary)
    log.info(f"report: {path}")
    return ReportWritten(
        path=path, size_kb=round(len(html) / 1024, 1), summary=summary, metrics_table=markdown_table(evaluation)
    )
