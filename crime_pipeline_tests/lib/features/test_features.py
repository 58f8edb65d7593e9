"""Features, the leakage gate, splits and the scaler."""

from __future__ import annotations

import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from crime_pipeline.lib.features import stages as feature_stages  # where build_features looks names up
from crime_pipeline.lib.features.leakage import leakage_scores
from crime_pipeline.lib.features.splits import fit_minmax, random_split, temporal_split
from crime_pipeline.lib.features.table import FEATURE_COLUMNS, MODEL_FEATURES, build_feature_table
from crime_pipeline.lib.lake.parquet import read_parquet

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def incidents(tmp_path_factory):
    """A small generated lake, ingested and merged once for this module."""
    from crime_pipeline.definitions import build_definitions
    from crime_pipeline.lib.lake.layout import LakeLayout
    from crime_pipeline_tests.conftest import Pipeline

    lake = LakeLayout(tmp_path_factory.mktemp("features") / "lake").ensure()
    with dg.instance_for_test() as instance:
        pipe = Pipeline(build_definitions(str(lake.root)), instance, lake, downstream=["incidents"])
        pipe.generate("gen.csv", rows=8000, seed=21)
        assert pipe.run() == 0, pipe.output
    return lake, read_parquet(lake.table("incidents"))


def test_a_batch_of_default_city_rows_keeps_the_city_column_when_asked(incidents):
    # Several cities' features are built in batches; a batch holding only Buffalo rows must still
    # have the `city` column, or the batches of one table would disagree on their columns.
    _, frame = incidents
    plain = build_feature_table(frame)
    with_city = build_feature_table(frame, with_city=True)
    assert "city" not in plain and list(with_city.columns) == [*plain.columns, "city"]
    assert (with_city["city"] == "buffalo").all()
    pd.testing.assert_frame_equal(with_city.drop(columns="city"), plain)


def test_features_come_only_from_time_and_place(incidents):
    _, frame = incidents
    table = build_feature_table(frame)
    assert [c for c in table.columns if c not in ("case_number", "incident_datetime", "label", "label_id")] == list(
        FEATURE_COLUMNS
    )
    # Scrambling every other column of the input changes no feature.
    scrambled = frame.copy()
    for col in frame.columns:
        if col not in ("latitude", "longitude", "incident_datetime", "label", "case_number"):
            scrambled[col] = np.random.default_rng(0).permutation(scrambled[col].to_numpy())
    pd.testing.assert_frame_equal(build_feature_table(scrambled), table)


def test_leakage_scores_flag_a_disguised_label_and_pass_honest_features(incidents):
    _, frame = incidents
    table = build_feature_table(frame)
    honest = leakage_scores(table[list(FEATURE_COLUMNS)], table["label"])
    assert not honest["leaky"].any(), honest
    disguised = table[list(FEATURE_COLUMNS)].assign(
        hour_band=table["label_id"],  # an innocent name for the label's ids
        primary=frame["incident_type_primary"].to_numpy(),
    )
    scores = leakage_scores(disguised, table["label"])
    assert scores.loc["hour_band", "leaky"] and scores.loc["primary", "leaky"]
    assert scores.loc["primary", "mi_ratio"] > 0.9


def test_leaky_feature_fails_the_blocking_check_and_is_not_promoted(incidents, monkeypatch):
    lake, _ = incidents
    from crime_pipeline.definitions import build_definitions

    defs = build_definitions(str(lake.root))
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            defs.assets, selection=["incident_features", "dataset_splits"], instance=instance, resources=defs.resources
        )
        assert result.success
        promoted = lake.table("incident_features").read_bytes()

        def leaky_table(frame, **options):
            return build_feature_table(frame, **options).assign(
                incident_type_primary=frame["incident_type_primary"].to_numpy()
            )

        monkeypatch.setattr(feature_stages, "build_feature_table", leaky_table)
        result = dg.materialize(
            defs.assets,
            selection=["incident_features", "dataset_splits"],
            instance=instance,
            resources=defs.resources,
            raise_on_error=False,
        )
        assert not result.success
        evaluation = next(e for e in result.get_asset_check_evaluations() if e.check_name == "no_label_leakage")
        assert not evaluation.passed
        assert "incident_type_primary" in evaluation.metadata["not_on_allow_list"].value
        assert "incident_type_primary" in evaluation.metadata["leaky_columns"].value
        built = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
        assert "dataset_splits" not in built  # the gate held
        assert lake.table("incident_features").read_bytes() == promoted  # the good table stays in place


def test_temporal_split_keeps_time_order_and_cases_whole(incidents):
    _, frame = incidents
    table = build_feature_table(frame)
    split = temporal_split(table, 0.15, 0.15)
    when = table["incident_datetime"]
    assert when[split == "train"].max() <= when[split == "validation"].min()
    assert when[split == "validation"].max() <= when[split == "test"].min()
    assert abs((split == "test").mean() - 0.15) < 0.01
    parts_per_case = table.assign(split=split).groupby("case_number")["split"].nunique()
    assert (parts_per_case == 1).all()
    with pytest.raises(ValueError, match="one row per case"):
        temporal_split(pd.concat([table, table.iloc[:1]]), 0.15, 0.15)


def test_random_split_is_stratified_and_reproducible(incidents):
    _, frame = incidents
    table = build_feature_table(frame)
    a, b = random_split(table, 0.15, 0.15, seed=3), random_split(table, 0.15, 0.15, seed=3)
    assert a.equals(b)
    shares = table.groupby(a)["label_id"].apply(lambda s: (s == 0).mean())
    assert shares.max() - shares.min() < 0.01


def test_scaler_sees_only_training_rows(incidents):
    lake, _ = incidents
    from crime_pipeline.definitions import build_definitions

    defs = build_definitions(str(lake.root))
    with dg.instance_for_test() as instance:
        assert dg.materialize(
            defs.assets, selection=["incident_features", "dataset_splits"], instance=instance, resources=defs.resources
        ).success
    splits = read_parquet(lake.table("dataset_splits"))
    info = json.loads(lake.lake_file("dataset_splits.json").read_text())
    train = splits[splits["split"] == "train"]
    assert info["scaler"] == fit_minmax(train, MODEL_FEATURES)
    # Sanity: the whole table would have given a different scaler for some column.
    assert info["scaler"] != fit_minmax(splits, MODEL_FEATURES)
    assert info["parts"]["train"]["to"] <= info["parts"]["test"]["from"]


def test_column_lineage_traces_features_to_time_and_place_only(incidents):
    lake, _ = incidents
    from crime_pipeline.definitions import build_definitions

    defs = build_definitions(str(lake.root))
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            defs.assets, selection=["incident_features"], instance=instance, resources=defs.resources
        )
    [event] = result.get_asset_materialization_events()
    lineage = event.materialization.metadata["dagster/column_lineage"].value.deps_by_column
    sources = {col: {d.column_name for d in deps} for col, deps in lineage.items()}
    for feature in FEATURE_COLUMNS:
        assert sources[feature] and sources[feature] <= {"latitude", "longitude", "incident_datetime"}, feature
    fed = set().union(*(sources[f] for f in FEATURE_COLUMNS))
    assert not fed & {"incident_type_primary", "incident_description", "case_number", "created_at", "updated_at"}
