"""The lake catalog is the one declaration of every dataset: the layout, the read allow-list and the
notebook derive from it, so they cannot disagree."""

from __future__ import annotations

from pathlib import Path

import pytest

from crime_pipeline.lib.lake import catalog
from crime_pipeline.lib.lake.catalog import BY_NAME, DATASETS, MODEL_KINDS, datasets_at, producers_of
from crime_pipeline.lib.lake.layout import LakeLayout
from crime_pipeline.lib.reports.figures import figure_names

KEY = "0123456789abcdef"
STAMP = "20240105T060000Z"
# One value per placeholder: a model of another city than the default, so `{model}` is `{kind}.{city}`.
SAMPLE = {
    "partition": KEY,
    "stamp": STAMP,
    "export": "export.csv",
    "model": "mlp_weighted.chicago",
    "hash": "0123456789ab",
    "ext": "pt",
    "figure": "training_curves",
    "xyt": "chicago_shootings_2022_xyt.csv",
    "week": "2025-12-22",
}


def relative(layout: LakeLayout, path: Path) -> str:
    return path.relative_to(layout.root).as_posix()


def layout_paths(layout: LakeLayout) -> list[tuple[Path, str]]:
    """Every path the layout's named accessors build, with the dataset it must belong to; the
    folders' files as their callers name them (`model_candidates / f"{name}.json"`...)."""
    paths = [
        (layout.generated_manifest, "generated_manifest"),
        (layout.ledger, "ledger"),
        (layout.open_data_pull_state, "open_data_pull_state"),
        (layout.open_data_pull_file(STAMP), "open_data_pull_file"),
        (layout.incoming / "buffalo_synthetic_1000_seed42.csv", "incoming"),
        (layout.raw_table(KEY), "raw_incidents"),
        (layout.validated_table(KEY), "validated_incidents"),
        (layout.quarantine_table(KEY), "incident_quarantine"),
        (layout.validation_summary(KEY), "validation_summary"),
        *(
            (layout.table(name), name)
            for name in ("incidents", "incident_features", "dataset_splits", "test_predictions")
        ),
        (layout.lake_file("label_map.json"), "label_map"),
        (layout.lake_file("leakage_check.json"), "leakage_check"),
        (layout.lake_file("dataset_splits.json"), "split_summary"),
        (layout.lake_file("test_predictions.parquet"), "test_predictions"),
        *(
            (layout.report_file(name), dataset)
            for name, dataset in (
                ("data_quality.json", "data_quality"),
                ("evaluation.json", "evaluation"),
                ("captions.json", "figure_captions"),
                ("hotspot_cells.geojson", "hotspot_cells"),
                ("seed_reproduction.json", "seed_reproduction"),
                ("report.html", "crime_report"),
                ("summary.json", "report_summary"),
            )
        ),
        *((layout.report_file(name), "figure") for name in figure_names(MODEL_KINDS)),
        *(
            (layout.path(name, **fields), name)
            for name, fields in (
                ("forecast_events_xyt", {"xyt": "chicago_shootings_2022_xyt.csv"}),
                ("forecast_setup", {}),
                ("forecast_events", {}),
                ("forecast_counts", {}),
                ("hotspot_forecast", {"week": "2025-12-22"}),
                ("forecast_scores", {}),
                ("forecast_backtest", {}),
                ("forecast_figure", {"figure": "forecast_map"}),
                ("forecast_flagged_cells", {}),
            )
        ),
    ]
    for kind in MODEL_KINDS:
        for name in (kind, f"{kind}.chicago"):  # the default city's model, another city's
            paths += [
                (layout.model_candidates / f"{name}.json", "model_candidate"),
                (layout.model_candidates / f"{name}-0123456789ab.npz", "model_candidate_weights"),
                (layout.model_candidates / f"{name}-validation-0123456789ab.npy", "model_candidate_logits"),
                (layout.models / f"{name}.json", "model"),
                (layout.models / f"{name}-0123456789ab.skops", "model_weights"),
            ]
    return paths


def test_every_layout_path_is_one_dataset_and_every_dataset_is_reachable_from_the_layout(tmp_path):
    layout = LakeLayout(tmp_path / "lake")
    reached = set()
    for path, expected in layout_paths(layout):
        assert [d.name for d in datasets_at(relative(layout, path))] == [expected], path
        reached.add(expected)
    assert reached == set(BY_NAME)


def test_no_lake_file_belongs_to_two_datasets():
    for dataset in DATASETS:
        path = dataset.fill(**{k: v for k, v in SAMPLE.items() if k in dataset.placeholders})
        assert datasets_at(path) == [dataset], path
    assert len(BY_NAME) == len(DATASETS)  # names are unique


def test_layout_paths_are_where_they_always_were(tmp_path):
    """The paths the layout hard-coded before the catalog, written out once."""
    layout, root = LakeLayout(tmp_path / "lake"), tmp_path / "lake"
    assert layout.incoming == root / "raw" / "incoming"
    assert layout.generated_manifest == root / "raw" / "generated.json"
    assert layout.ledger == root / "ledger" / "ingested.json"
    assert layout.open_data_pull_state == layout.ledger.parent / "open_data_pull.json"
    assert layout.open_data_pull_file(STAMP) == layout.incoming / f"open_data_pull_{STAMP}.csv"
    assert layout.raw_table(KEY) == root / "lake" / "raw_incidents" / f"{KEY}.parquet"
    assert layout.validated_table(KEY) == root / "lake" / "validated_incidents" / f"{KEY}.parquet"
    assert layout.quarantine_table(KEY) == root / "quarantine" / f"{KEY}.parquet"
    assert layout.validation_summary(KEY) == root / "lake" / "validated_incidents" / f"{KEY}.summary.json"
    assert layout.table("incidents") == root / "lake" / "incidents.parquet"
    assert layout.lake_file("label_map.json") == root / "lake" / "label_map.json"
    assert layout.models == root / "models" and layout.model_candidates == root / "models" / "candidates"
    assert layout.report_file("report.html") == root / "reports" / "report.html"
    assert layout.report_file("") == root / "reports"


def test_ensure_makes_the_same_folders_as_before(tmp_path):
    layout = LakeLayout(tmp_path / "lake").ensure()
    made = {p.relative_to(layout.root).as_posix() for p in layout.root.rglob("*")}
    assert made == {"raw", "raw/incoming", "lake", "quarantine", "models", "reports", "ledger", "forecast"}


def test_the_layout_refuses_a_path_the_catalog_does_not_declare(tmp_path):
    layout = LakeLayout(tmp_path / "lake")
    with pytest.raises(ValueError, match="reports/notes.txt is not a file of any dataset in the lake catalog"):
        layout.report_file("notes.txt")
    with pytest.raises(ValueError, match="is not a file of raw_incidents"):
        layout.raw_table("../../elsewhere")  # a key never leads out of its folder
    with pytest.raises(ValueError, match="dataset label_map is not a table"):
        layout.table("label_map")
    with pytest.raises(KeyError, match="no dataset 'scratch' in the lake catalog"):
        layout.table("scratch")
    with pytest.raises(KeyError, match=r"raw_incidents \(lake/raw_incidents/\{partition\}.parquet\) needs partition"):
        layout.path("raw_incidents")


@pytest.mark.parametrize(
    "path, producers",
    [
        ("raw/incoming/export.csv", {"external"}),
        ("raw/incoming/open_data_pull_20240105T060000Z.csv", {"open_data_pull"}),
        ("raw/incoming/open_data_pull_notes.txt", {"external"}),
        ("raw/generated.json", {"external"}),
        ("ledger/ingested.json", {"raw_incidents", "validated_incidents"}),  # one document, two writers
        ("ledger/open_data_pull.json", {"open_data_pull"}),
        ("lake/raw_incidents/0123456789abcdef.parquet", {"raw_incidents"}),
        ("lake/validated_incidents/0123456789abcdef.summary.json", {"validated_incidents"}),
        ("quarantine/0123456789abcdef.parquet", {"incident_quarantine"}),
        ("reports/data_quality.json", {"incidents"}),
        ("lake/dataset_splits.json", {"dataset_splits"}),
        # each model asset writes its own kind's candidates only; mlp's are not mlp_weighted's
        ("models/candidates/mlp.json", {"mlp_model"}),
        ("models/candidates/mlp_weighted.json", {"mlp_weighted_model"}),
        ("models/candidates/mlp-0123456789ab.pt", {"mlp_model"}),
        ("models/candidates/mlp_weighted.chicago-0123456789ab.pt", {"mlp_weighted_model"}),
        ("models/candidates/gbdt.chicago.json", {"gbdt_model"}),
        ("models/candidates/mlp-validation-2c75ab29552c.npy", {"mlp_model"}),  # not mlp_weighted's, not weights
        ("models/candidates/mlp.chicago-validation-2c75ab29552c.npy", {"mlp_model"}),
        ("models/baseline.json", {"model_evaluation"}),
        ("models/gbdt.chicago-0123456789ab.skops", {"model_evaluation"}),
        ("reports/confusion_gbdt.png", {"figures"}),
        ("reports/report.html", {"crime_report"}),
        # not declared: staged and rejected versions, unknown kinds, folders one level off
        ("lake/incidents.staged.parquet", set()),
        ("lake/incident_features.rejected.parquet", set()),
        ("models/candidates/forest.json", set()),
        ("models/candidates/extra/mlp.json", set()),
        ("lake/raw_incidents.parquet", set()),
        ("reports/notes.txt", set()),
    ],
)
def test_producers_of_a_lake_file(path, producers):
    assert producers_of(path) == producers


def test_the_module_docstring_lists_every_dataset():
    for line in catalog.summary_lines():
        assert line in catalog.__doc__, line
    table = catalog.markdown_table()
    assert all(f"| {d.name} | `{d.pattern}` |" in table for d in DATASETS)
