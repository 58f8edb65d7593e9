"""The feature stages called directly on a small lake (no Dagster), and the split's one declaration."""

from __future__ import annotations

import dataclasses
import json
import shutil
import typing

import pytest

from crime_pipeline.lib import synthetic
from crime_pipeline.lib.features import stages as feature_stages
from crime_pipeline.lib.features.splits import fit_minmax
from crime_pipeline.lib.features.stages import SplitSettings, build_features, file_version, split_dataset
from crime_pipeline.lib.features.table import MODEL_FEATURES, build_feature_table
from crime_pipeline.lib.lake.atomic import rejected_path
from crime_pipeline.lib.lake.errors import StageError
from crime_pipeline.lib.lake.layout import LakeLayout
from crime_pipeline.lib.lake.parquet import read_parquet
from crime_pipeline.lib.validate.stages import merge_incidents, validate_file
from crime_pipeline_tests.lib.validate.tiny_lake import FILE_A, FILE_B, ingest_in_process, reads_for


def merged_lake(root, files: dict[str, bytes]) -> LakeLayout:
    """A lake with `files` ingested, validated and merged by the stage functions."""
    lake = LakeLayout(root).ensure()
    for name, data in files.items():
        assert validate_file(reads_for(lake, "validate_file"), ingest_in_process(lake, name, data)).published
    assert merge_incidents(reads_for(lake, "incidents")).published
    return lake


@pytest.fixture(scope="module")
def generated_lake(tmp_path_factory) -> LakeLayout:
    folder = tmp_path_factory.mktemp("generated")
    export = synthetic.write_export_csv(synthetic.generate_incidents(1500, seed=4), folder / "gen.csv")
    return merged_lake(folder / "lake", {"gen.csv": export.read_bytes()})


@pytest.fixture
def lake_copy(generated_lake, tmp_path) -> LakeLayout:
    return LakeLayout(shutil.copytree(generated_lake.root, tmp_path / "lake"))


def test_split_config_is_derived_from_split_settings_field_for_field():
    from crime_pipeline.defs.features import SplitConfig

    hints = typing.get_type_hints(SplitSettings)
    settings = {f.name: (hints[f.name], f.default) for f in dataclasses.fields(SplitSettings)}
    config = {name: (f.annotation, f.default) for name, f in SplitConfig.model_fields.items()}
    assert config == settings
    assert typing.get_args(settings["strategy"][0]) == ("temporal", "random")
    assert SplitSettings(**SplitConfig().model_dump()) == SplitSettings()


@pytest.mark.slow  # the leakage audit scores every column: seconds on 2 cores
def test_features_are_published_after_the_audit_and_split_with_a_scaler_fitted_on_train(lake_copy):
    built = build_features(reads_for(lake_copy, "incident_features"))
    assert built.published and built.served == lake_copy.table("incident_features")
    assert not built.not_allowed and not built.leaky and not built.combination["leaky"]
    assert built.rows == len(read_parquet(lake_copy.table("incidents"))) == len(read_parquet(built.table))
    check = json.loads(lake_copy.lake_file("leakage_check.json").read_text())
    assert check["passed"] and check["rows_scored"] == built.rows
    assert json.loads(lake_copy.lake_file("label_map.json").read_text())["Theft"] == 0

    split = split_dataset(reads_for(lake_copy, "dataset_splits"), SplitSettings(seed=3))
    summary = json.loads(lake_copy.lake_file("dataset_splits.json").read_text())
    assert summary == json.loads(json.dumps(split.summary))
    assert {k: summary[k] for k in ("strategy", "validation_fraction", "test_fraction", "seed")} == dataclasses.asdict(
        SplitSettings(seed=3)
    )
    assert summary["data_version"] == file_version(split.table)
    table = read_parquet(split.table)
    assert split.rows == len(table) == built.rows
    assert summary["scaler"] == fit_minmax(table[table["split"] == "train"], MODEL_FEATURES)
    assert int(split.class_counts.to_numpy().sum()) == split.rows
    assert {p: i["rows"] for p, i in summary["parts"].items()} == table["split"].value_counts().to_dict()


@pytest.mark.slow  # the leakage audit scores every column: seconds on 2 cores
def test_a_leaky_feature_table_is_rejected_and_the_published_one_stays(lake_copy, monkeypatch):
    assert build_features(reads_for(lake_copy, "incident_features")).published
    published = lake_copy.table("incident_features").read_bytes()

    def leaky_table(frame, **options):
        return build_feature_table(frame, **options).assign(hour_band=lambda t: t["label_id"])

    monkeypatch.setattr(feature_stages, "build_feature_table", leaky_table)
    built = build_features(reads_for(lake_copy, "incident_features"))
    assert not built.published and built.not_allowed == ["hour_band"] and built.leaky == ["hour_band"]
    assert built.served.exists() and built.served.name == "incident_features.rejected.parquet"
    assert lake_copy.table("incident_features").read_bytes() == published
    assert not json.loads(rejected_path(lake_copy.lake_file("leakage_check.json")).read_text())["passed"]


@pytest.mark.slow  # the leakage audit scores every column: seconds on 2 cores
def test_too_little_data_or_bad_fractions_fail_the_split_with_one_sentence(tmp_path):
    lake = merged_lake(tmp_path / "lake", {"a.csv": FILE_A, "b.csv": FILE_B})
    assert build_features(reads_for(lake, "incident_features")).published
    with pytest.raises(StageError) as caught:
        split_dataset(reads_for(lake, "dataset_splits"))
    assert str(caught.value).startswith("Too little data to split: 4 incidents gave train ")
    assert caught.value.metadata["rows/incidents"] == 4
    with pytest.raises(
        StageError,
        match=r"^validation_fraction and test_fraction must be in \(0, 1\) and leave "
        r"a training part$",
    ):
        split_dataset(reads_for(lake, "dataset_splits"), SplitSettings(validation_fraction=0.5, test_fraction=0.4))
    assert not lake.table("dataset_splits").exists()
