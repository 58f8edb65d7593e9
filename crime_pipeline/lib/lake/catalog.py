"""The lake's catalog: every dataset declared once, with the asset that publishes it.

Each `Dataset` is one kind of lake file: its path pattern relative to the lake root, its format, the
asset that publishes it ("external" for what arrives from outside the graph) and what it holds.
Everything else derives from `DATASETS`: the layout's paths (layout.py looks each one up by name),
the declared-read allow-list (`producers_of`: an asset may read only files published by itself or
by an asset it depends on; reads.py checks every read, so the lineage graph in the UI is the data
flow) and the table `notebook.load_table` reads for an asset.

A `{placeholder}` stands for part of one path part (PLACEHOLDERS): a partition key, a model's name
(`{kind}` for the default city's model, `{kind}.{city}` for another city's), a content hash. A
publisher written "{kind}_model" is the model asset of the kind the path names. No lake file
belongs to two datasets (crime_pipeline_tests/lib/lake/test_catalog.py checks it).

The datasets (name, pattern, publisher; `summary_lines()` prints this and the test keeps it current):
    incoming                 raw/incoming/{export}                             external
    open_data_pull_file      raw/incoming/open_data_pull_{stamp}.csv           open_data_pull
    open_data_pull_state     ledger/open_data_pull.json                        open_data_pull
    generated_manifest       raw/generated.json                                external
    ledger                   ledger/ingested.json                              raw_incidents, validated_incidents
    raw_incidents            lake/raw_incidents/{partition}.parquet            raw_incidents
    validated_incidents      lake/validated_incidents/{partition}.parquet      validated_incidents
    validation_summary       lake/validated_incidents/{partition}.summary.json validated_incidents
    incident_quarantine      quarantine/{partition}.parquet                    incident_quarantine
    incidents                lake/incidents.parquet                            incidents
    data_quality             reports/data_quality.json                         incidents
    incident_features        lake/incident_features.parquet                    incident_features
    label_map                lake/label_map.json                               incident_features
    leakage_check            lake/leakage_check.json                           incident_features
    dataset_splits           lake/dataset_splits.parquet                       dataset_splits
    split_summary            lake/dataset_splits.json                          dataset_splits
    model_candidate          models/candidates/{model}.json                    {kind}_model
    model_candidate_weights  models/candidates/{model}-{hash}.{ext}            {kind}_model
    model_candidate_logits   models/candidates/{model}-validation-{hash}.npy   {kind}_model
    model                    models/{model}.json                               model_evaluation
    model_weights            models/{model}-{hash}.{ext}                       model_evaluation
    evaluation               reports/evaluation.json                           model_evaluation
    test_predictions         lake/test_predictions.parquet                     model_evaluation
    figure                   reports/{figure}.png                              figures
    figure_captions          reports/captions.json                             figures
    hotspot_cells            reports/hotspot_cells.geojson                     figures
    seed_reproduction        reports/seed_reproduction.json                    seed_reproduction
    crime_report             reports/report.html                               crime_report
    report_summary           reports/summary.json                              crime_report
    forecast_events_xyt      raw/events/{xyt}                                  external
    forecast_setup           forecast/setup.json                               forecast_counts
    forecast_events          forecast/events.parquet                           forecast_counts
    forecast_counts          forecast/counts.parquet                           forecast_counts
    hotspot_forecast         forecast/weeks/{week}.parquet                     hotspot_forecast
    forecast_scores          forecast/backtest_scores.parquet                  forecast_backtest
    forecast_backtest        forecast/backtest.json                            forecast_backtest
    forecast_figure          forecast/{figure}.png                             forecast_backtest
    forecast_flagged_cells   forecast/flagged_cells.geojson                    forecast_backtest
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Literal

EXTERNAL = "external"  # the publisher of what arrives from outside the graph (only ingestion reads it)
MODEL_KINDS = ("baseline", "mlp", "mlp_weighted", "gbdt")
OPEN_DATA_PULL_PREFIX = "open_data_pull_"
# What each placeholder matches: at most one path part. A model's name is its kind, then `.<city>`
# for a city other than the default; an export is any incoming file but the open-data pull's CSVs.
PLACEHOLDERS = {
    "model": rf"(?P<kind>{'|'.join(MODEL_KINDS)})(?:\.(?P<city>[a-z][a-z0-9_]*))?",  # a city key (profiles.py)
    "export": rf"(?!{OPEN_DATA_PULL_PREFIX}[^/]*\.csv$)[^/]+",
    "hash": r"[0-9a-f]+",  # the first hex digits of the file's SHA-256
    "ext": r"[A-Za-z0-9]+",
}
ANY_NAME = r"[^/]+"  # every other placeholder: a partition key, a stamp, a figure

Format = Literal["parquet", "json", "csv", "png", "html", "model", "npy"]


@dataclass(frozen=True)
class Dataset:
    """One kind of lake file, under `pattern` (relative to the lake root), published by one asset."""

    name: str
    pattern: str
    format: Format
    published_by: str  # an asset, "{kind}_model" (the kind in the path), or EXTERNAL
    description: str
    updated_by: tuple[str, ...] = ()  # assets that update a shared document (the ledger) too

    @property
    def folder(self) -> str:
        return self.pattern.rpartition("/")[0]

    @property
    def placeholders(self) -> list[str]:
        return re.findall(r"\{(\w+)\}", self.pattern)

    @property
    def publishers(self) -> tuple[str, ...]:
        """Every asset that may write it (each model asset, for a pattern naming a model's kind)."""
        if "{kind}" in self.published_by:
            return tuple(self.published_by.format(kind=kind) for kind in MODEL_KINDS) + self.updated_by
        return (self.published_by, *self.updated_by)

    def fill(self, **fields: str) -> str:
        """The relative path of one file, e.g. `fill(partition="0123abcd")`."""
        missing = [p for p in self.placeholders if p not in fields]
        if missing:
            raise KeyError(f"{self.name} ({self.pattern}) needs {', '.join(missing)}")
        return self.pattern.format(**fields)

    def match(self, relative_path: str) -> re.Match | None:
        return _regex(self.pattern).fullmatch(relative_path)

    def producers(self, match: re.Match) -> set[str]:
        """The assets that write the file `match` matched."""
        return {self.published_by.format(**match.groupdict()), *self.updated_by}


@cache
def _regex(pattern: str) -> re.Pattern:
    parts = re.split(r"\{(\w+)\}", pattern)  # literal, placeholder, literal, ...
    return re.compile(
        "".join(re.escape(part) if i % 2 == 0 else PLACEHOLDERS.get(part, ANY_NAME) for i, part in enumerate(parts))
    )


DATASETS: tuple[Dataset, ...] = (
    # ingestion
    Dataset(
        "incoming",
        "raw/incoming/{export}",
        "csv",
        EXTERNAL,
        "CSV exports to ingest, dropped in by hand or by `crime-pipeline generate`",
    ),
    Dataset(
        "open_data_pull_file",
        f"raw/incoming/{OPEN_DATA_PULL_PREFIX}{{stamp}}.csv",
        "csv",
        "open_data_pull",
        "incidents the open-data portal updated since the last pull, one CSV per pull",
    ),
    Dataset(
        "open_data_pull_state",
        "ledger/open_data_pull.json",
        "json",
        "open_data_pull",
        "the pull's watermark (the newest `:updated_at` seen) and its last file",
    ),
    Dataset(
        "generated_manifest",
        "raw/generated.json",
        "json",
        EXTERNAL,
        "the files the built-in generator wrote, with seed, rows and generator version",
    ),
    Dataset(
        "ledger",
        "ledger/ingested.json",
        "json",
        "raw_incidents",
        "every ingested file: hash, city, rows read, the independent record count, its validation",
        updated_by=("validated_incidents",),
    ),
    Dataset(
        "raw_incidents",
        "lake/raw_incidents/{partition}.parquet",
        "parquet",
        "raw_incidents",
        "one incoming file read losslessly: canonical column names, every value as text",
    ),
    # validation
    Dataset(
        "validated_incidents",
        "lake/validated_incidents/{partition}.parquet",
        "parquet",
        "validated_incidents",
        "one file's rows that passed the schema, typed, with soft-problem flags",
    ),
    Dataset(
        "validation_summary",
        "lake/validated_incidents/{partition}.summary.json",
        "json",
        "validated_incidents",
        "one file's row accounting and soft problems",
    ),
    Dataset(
        "incident_quarantine",
        "quarantine/{partition}.parquet",
        "parquet",
        "incident_quarantine",
        "one file's failed rows, with source line and every rule failed",
    ),
    Dataset(
        "incidents",
        "lake/incidents.parquet",
        "parquet",
        "incidents",
        "every validated file merged; the newest record per case number wins",
    ),
    Dataset(
        "data_quality",
        "reports/data_quality.json",
        "json",
        "incidents",
        "the accounting of every file: rows read, valid, quarantined, superseded",
    ),
    # features
    Dataset(
        "incident_features",
        "lake/incident_features.parquet",
        "parquet",
        "incident_features",
        "time-and-place features and the label",
    ),
    Dataset("label_map", "lake/label_map.json", "json", "incident_features", "class name -> label id, per city"),
    Dataset(
        "leakage_check",
        "lake/leakage_check.json",
        "json",
        "incident_features",
        "the leakage check's evidence: single columns and combinations against the label",
    ),
    Dataset(
        "dataset_splits",
        "lake/dataset_splits.parquet",
        "parquet",
        "dataset_splits",
        "the feature table with its train / validation / test split",
    ),
    Dataset(
        "split_summary",
        "lake/dataset_splits.json",
        "json",
        "dataset_splits",
        "the split's method, parts and the scaler fit on train, per city",
    ),
    # models: each model asset writes candidates; model_evaluation publishes those that pass its checks
    Dataset(
        "model_candidate",
        "models/candidates/{model}.json",
        "json",
        "{kind}_model",
        "a trained model's metadata: features, classes, scaler, config, validation metrics, weights' SHA-256",
    ),
    Dataset(
        "model_candidate_weights",
        "models/candidates/{model}-{hash}.{ext}",
        "model",
        "{kind}_model",
        "a trained model's weights (npz, pt or skops: never a pickle), named by their hash",
    ),
    Dataset(
        "model_candidate_logits",
        "models/candidates/{model}-validation-{hash}.npy",
        "npy",
        "{kind}_model",
        "an MLP candidate's validation logits (mlp_weighted_model applies its decision rule to them)",
    ),
    Dataset(
        "model",
        "models/{model}.json",
        "json",
        "model_evaluation",
        "a published model's metadata, with its test metrics: what `predict` and the reports load",
    ),
    Dataset("model_weights", "models/{model}-{hash}.{ext}", "model", "model_evaluation", "a published model's weights"),
    # reports
    Dataset(
        "evaluation",
        "reports/evaluation.json",
        "json",
        "model_evaluation",
        "test metrics of every model, the baselines and the Bayes limit, per city",
    ),
    Dataset(
        "test_predictions",
        "lake/test_predictions.parquet",
        "parquet",
        "model_evaluation",
        "every model's prediction for each test row",
    ),
    Dataset("figure", "reports/{figure}.png", "png", "figures", "one figure of the report"),
    Dataset(
        "figure_captions", "reports/captions.json", "json", "figures", "each figure's caption, computed from its data"
    ),
    Dataset(
        "hotspot_cells",
        "reports/hotspot_cells.geojson",
        "json",
        "figures",
        "the hotspot maps' hexagonal cells as GeoJSON polygons, with incidents per cell and per type",
    ),
    Dataset(
        "seed_reproduction",
        "reports/seed_reproduction.json",
        "json",
        "seed_reproduction",
        "the seed project's method, reproduced: metrics only",
    ),
    Dataset("crime_report", "reports/report.html", "html", "crime_report", "the self-contained HTML report"),
    Dataset(
        "report_summary",
        "reports/summary.json",
        "json",
        "crime_report",
        "the report's headline figures (what `crime-pipeline run` prints)",
    ),
    # forecast: where and when next (lib/forecast/, defs/forecasts.py)
    Dataset(
        "forecast_events_xyt",
        "raw/events/{xyt}",
        "csv",
        EXTERNAL,
        "one-class event files (X longitude, Y latitude, T days into the year) the forecast group may count",
    ),
    Dataset(
        "forecast_setup",
        "forecast/setup.json",
        "json",
        "forecast_counts",
        "the forecast group's settings, grid, event range and test window",
    ),
    Dataset(
        "forecast_events",
        "forecast/events.parquet",
        "parquet",
        "forecast_counts",
        "the events counted: time, lat, lon, time_known, label",
    ),
    Dataset(
        "forecast_counts",
        "forecast/counts.parquet",
        "parquet",
        "forecast_counts",
        "events per grid cell per period (non-zero cells only)",
    ),
    Dataset(
        "hotspot_forecast",
        "forecast/weeks/{week}.parquet",
        "parquet",
        "hotspot_forecast",
        "the forecast issued at a week's start: every method's expected count, rank and flags per cell",
    ),
    Dataset(
        "forecast_scores",
        "forecast/backtest_scores.parquet",
        "parquet",
        "forecast_backtest",
        "each test week's hit rate, PAI, PEI and deviance per method and area share",
    ),
    Dataset(
        "forecast_backtest",
        "forecast/backtest.json",
        "json",
        "forecast_backtest",
        "the backtest's summary per method and area share, with bootstrap intervals",
    ),
    Dataset("forecast_figure", "forecast/{figure}.png", "png", "forecast_backtest", "one figure of the forecasts"),
    Dataset(
        "forecast_flagged_cells",
        "forecast/flagged_cells.geojson",
        "json",
        "forecast_backtest",
        "the latest forecast's flagged cells as GeoJSON polygons",
    ),
)
BY_NAME: dict[str, Dataset] = {d.name: d for d in DATASETS}


def dataset(name: str) -> Dataset:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"no dataset {name!r} in the lake catalog") from None


def datasets_at(relative_path: str) -> list[Dataset]:
    """The datasets a lake file belongs to (at most one; a list so that a test can say so)."""
    return [d for d in DATASETS if d.match(relative_path)]


def producers_of(relative_path: str) -> set[str]:
    """The assets that publish a lake file (a set: the ledger has two writers); 'external' for raw/."""
    return {p for d in DATASETS if (m := d.match(relative_path)) for p in d.producers(m)}


def tables_published_by(asset: str) -> list[Dataset]:
    """The whole tables `asset` publishes in lake/ (not partitioned, not in quarantine)."""
    return [
        d
        for d in DATASETS
        if asset in d.publishers and d.format == "parquet" and d.folder == "lake" and not d.placeholders
    ]


def summary_lines() -> list[str]:
    """One line per dataset: name, pattern, publishers (the table in this module's docstring)."""
    return [f"{d.name:<24} {d.pattern:<49} {', '.join((d.published_by, *d.updated_by))}".rstrip() for d in DATASETS]


def markdown_table() -> str:
    """The catalog as a Markdown table (for the README)."""
    rows = ["| dataset | path under the lake | format | published by | holds |", "|---|---|---|---|---|"]
    rows += [
        f"| {d.name} | `{d.pattern}` | {d.format} | {', '.join((d.published_by, *d.updated_by))} | {d.description} |"
        for d in DATASETS
    ]
    return "\n".join(rows)
