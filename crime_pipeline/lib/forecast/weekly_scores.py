"""The backtest over the published weekly forecasts: every method scored against the actual counts.

`score_backtest` reads the week files `hotspot_forecast` published for the test window recorded in
setup.json, scores each method at 1/2/5% of the area (hit rate, PAI, PEI) and by Poisson deviance
per cell (lib/forecast/backtest.py's scoring), summarises them over weeks with seeded bootstrap
intervals, says which method leads at 1% and whether a paired bootstrap interval of its lead over
the runner-up excludes zero, and draws what an
analyst looks at (figures.py) with the flagged cells as GeoJSON (geojson.py).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from crime_pipeline.lib.forecast import figures
from crime_pipeline.lib.forecast.backtest import lead_interval, score_rows, summarise
from crime_pipeline.lib.forecast.geojson import flagged_cells_geojson
from crime_pipeline.lib.forecast.metrics import pai_curve
from crime_pipeline.lib.forecast.stages import ORACLE, read_setup
from crime_pipeline.lib.lake import storage
from crime_pipeline.lib.lake.atomic import write_bytes, write_json
from crime_pipeline.lib.lake.errors import StageError
from crime_pipeline.lib.lake.parquet import write_parquet
from crime_pipeline.lib.lake.reads import DeclaredReads

CURVE_SHARES = (0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2)
SCORED_COLUMNS = ["cell", "method", "expected", "latest_event_used", "latest_event_given"]
DRAWN_COLUMNS = ["cell", "method", "expected", "rank", "flagged_1", "flagged_2", "flagged_5", "issue_time"]
_log = logging.getLogger(__name__)


def actual_counts(nonzero: pd.DataFrame, week: str, n_cells: int) -> np.ndarray:
    rows = nonzero[nonzero["period_start"] == pd.Timestamp(week)]
    actual = np.zeros(n_cells)
    actual[rows["cell"].to_numpy()] = rows["count"].to_numpy()
    return actual


def score_week(frame: pd.DataFrame, actual: np.ndarray, week: str) -> tuple[list[dict], list[dict]]:
    """Each method's scores for one week (backtest.score_rows), and its PAI at every share of CURVE_SHARES."""
    scores, curve = [], []
    frame = frame.sort_values(["method", "cell"], kind="stable")
    methods, starts = np.unique(frame["method"].to_numpy(dtype=str), return_index=True)
    expected_all = frame["expected"].to_numpy(dtype=float)
    used, given = frame["latest_event_used"].to_numpy(), frame["latest_event_given"].to_numpy()
    sizes = np.diff(np.append(starts, len(frame)))
    for method, start, size in zip(methods, starts, sizes):
        if size != len(actual):
            raise StageError(f"the forecast of week {week} has {size} cells for {method}, the grid {len(actual)}")
        expected = expected_all[start : start + len(actual)]
        scores += score_rows(str(method), pd.Timestamp(week), expected, actual, used[start], given[start])
        curve += [
            {"method": str(method), "area_share": s, "pai": p}
            for s, p in zip(CURVE_SHARES, pai_curve(expected, actual, CURVE_SHARES))
        ]
    return scores, curve


def leader(scores: pd.DataFrame, summary: pd.DataFrame, share: float = 0.01, seed: int = 0) -> dict:
    """Which method (the oracle aside) leads on mean PAI at `share`, by how much over the runner-up,
    whether a paired bootstrap interval of the difference excludes 0, and the gap to the oracle."""
    at = summary[(summary["area_share"] == share) & (summary["method"] != ORACLE)].sort_values("pai", ascending=False)
    if at.empty:
        return {}
    best = at.iloc[0]
    lead = {"share": share, "method": best["method"], "pai": best["pai"], "pei": best["pei"]}
    if len(at) > 1:
        second = at.iloc[1]
        difference, low, high = lead_interval(scores, best["method"], second["method"], share, seed=seed)
        lead |= {"runner_up": second["method"], "runner_up_pai": second["pai"], "difference": difference}
        lead |= {"difference_low": low, "difference_high": high, "outside_interval": bool(low > 0)}
    oracle = summary[(summary["area_share"] == share) & (summary["method"] == ORACLE)]
    if len(oracle):
        lead["oracle_pai"] = float(oracle["pai"].iloc[0])
        lead["share_of_oracle"] = float(best["pai"] / oracle["pai"].iloc[0]) if oracle["pai"].iloc[0] else None
    return lead


@dataclass
class BacktestScored:
    scores: pd.DataFrame  # issue_time, method, area_share, hit_rate, pai, pei, deviance, n_incidents, latest_event_used
    summary: pd.DataFrame  # method x area_share: means with *_low / *_high bootstrap bounds
    lead: dict
    weeks_scored: list[str]
    weeks_missing: list[str]
    latest_week: str | None  # the forecast the map and the GeoJSON show
    figures: dict[str, Path]
    geojson: Path | None


def published_weeks(reads: DeclaredReads) -> list[str]:
    """Every week whose forecast is published (not staged, not rejected), oldest first."""
    folder = reads.layout.folder("hotspot_forecast")
    names = [Path(str(p)).name for p in storage.glob(folder, "*.parquet")] if storage.exists(folder) else []
    return sorted(n.removesuffix(".parquet") for n in names if n.count(".") == 1)


def week_setup_id(reads: DeclaredReads, week: str) -> str | None:
    """The setup a week's forecast was issued under (stages.setup_id); None for a file that records none."""
    path = reads.layout.path("hotspot_forecast", week=week)
    if "setup_id" not in reads.parquet_schema(path).names:
        return None
    return str(reads.parquet(path, columns=["setup_id"])["setup_id"].iloc[0])


def score_backtest(reads: DeclaredReads, log: logging.Logger = _log) -> BacktestScored:
    """Scores of every published week of the test window, their summary, the lead, figures, GeoJSON."""
    layout = reads.layout
    setup, grid, settings = read_setup(reads)
    nonzero = reads.parquet(layout.path("forecast_counts"))
    published = set(published_weeks(reads))
    other_setup = [
        w for w in setup["test_weeks"] if w in published and week_setup_id(reads, week=w) != setup["setup_id"]
    ]
    if other_setup:
        log.warning(
            f"{len(other_setup)} test weeks were forecast on another grid, city, period or set of types than "
            f"forecast/setup.json's and are not scored until issued again: {other_setup[:5]}"
        )
    scored = [w for w in setup["test_weeks"] if w in published and w not in other_setup]
    missing = [w for w in setup["test_weeks"] if w not in scored]
    if not scored:
        raise StageError(
            f"no forecast is published for any of the {len(setup['test_weeks'])} test weeks "
            f"({setup['test_weeks'][:1]}..{setup['test_weeks'][-1:]}); backfill hotspot_forecast first "
            f"(`crime-pipeline forecast --backfill`)"
        )
    all_scores, all_curves = [], []
    for week in scored:
        frame = reads.parquet(layout.path("hotspot_forecast", week=week), columns=SCORED_COLUMNS)
        scores, curve = score_week(frame, actual_counts(nonzero, week, grid.n_cells), week)
        all_scores += scores
        all_curves += curve
    scores = pd.DataFrame(all_scores)
    summary = summarise(scores, settings.seed)
    lead = leader(scores, summary, seed=settings.seed)
    curves = pd.DataFrame(all_curves).groupby(["method", "area_share"], as_index=False)["pai"].mean()
    write_parquet(layout.path("forecast_scores"), scores)
    latest = max(published)
    drawn, geojson = draw_latest(reads, latest, lead.get("method"), curves, setup, grid, settings.gi_star_months)
    write_json(
        layout.path("forecast_backtest"),
        {
            "weeks_scored": scored,
            "weeks_missing": missing,
            "generated": setup["generated"],
            "summary": summary.to_dict(orient="records"),
            "lead": lead,
            "curves": curves.to_dict(orient="records"),
            "latest_week": latest,
            "figures": {k: storage.relative(v, layout.root) for k, v in drawn.items()},
        },
    )
    if missing:
        log.warning(f"{len(missing)} test weeks have no published forecast yet: {missing[:5]}...")
    return BacktestScored(scores, summary, lead, scored, missing, latest, drawn, geojson)


def draw_latest(reads, week, method, curves, setup, grid, gi_months) -> tuple[dict[str, Path], Path | None]:
    """The latest forecast's map (the leading method's flags) beside the Gi* map of the months
    before it, the PAI-vs-area curves, and the flagged cells as GeoJSON."""
    from crime_pipeline.lib.forecast.hotspots import gi_star  # scipy's stats: only when drawing

    layout = reads.layout
    frame = reads.parquet(layout.path("hotspot_forecast", week=week), columns=DRAWN_COLUMNS)
    method = method if method in set(frame["method"]) else sorted(set(frame["method"]) - {ORACLE})[0]
    events = reads.parquet(layout.path("forecast_events"), columns=["time", "lat", "lon"])
    issue = pd.Timestamp(week)
    before = events[events["time"] < issue]
    end = before["time"].max() if len(before) else issue  # a week after the data ends: its last months
    recent = before[before["time"] > end - pd.DateOffset(months=gi_months)]
    cells = grid.cell_of(recent["lat"].to_numpy(), recent["lon"].to_numpy())
    gi = gi_star(np.bincount(cells[cells >= 0], minlength=grid.n_cells).astype(float), grid)
    paths = {
        "map": layout.path("forecast_figure", figure="forecast_map"),
        "curves": layout.path("forecast_figure", figure="pai_curves"),
    }
    figures.draw_forecast_and_gi_star(
        paths["map"], grid, frame[frame["method"] == method], events[["lat", "lon"]], gi, week, method, gi_months
    )
    figures.draw_pai_curves(paths["curves"], curves, generated=setup["generated"])
    geojson = layout.path("forecast_flagged_cells")
    # compact: json's C encoder (an indented dump of a big city's 16,000 cells takes seconds)
    write_bytes(geojson, json.dumps(flagged_cells_geojson(frame, grid), separators=(",", ":")).encode())
    return paths, geojson
