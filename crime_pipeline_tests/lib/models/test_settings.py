"""Every model setting is declared once, in lib/models: the Dagster run configs are derived from the
settings dataclasses and keep the field names, types and defaults users set in the launchpad."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from crime_pipeline.defs.models import (
    GBDTConfig,
    LogisticRegressionConfig,
    MLPConfig,
    WeightedMLPConfig,
    config_from_settings,
    settings_of,
)
from crime_pipeline.lib.models.mlp.settings import MLPSettings
from crime_pipeline.lib.models.settings import GBDTSettings, LogisticRegressionSettings, TrainingSample
from crime_pipeline.lib.models.stages import WEIGHTED_MLP_SETTINGS
from crime_pipeline.lib.models.training import DEFAULT_MAX_TRAIN_ROWS

# The run configs as they were declared field by field before they were derived (launchpad names,
# types and defaults, which README and users' run configs rely on).
MLP_RUN_CONFIG = {
    "epochs": (int, 20),
    "batch_size": (int, 1024),
    "learning_rate": (float, 1e-3),
    "dropout": (float, 0.3),
    "patience": (int, 6),
    "class_weighted": (bool, False),
    "bf16_autocast": (bool, False),
    "seed": (int, 0),
    "one_hot_time": (bool, True),
    "fourier": (int, 0),
    "cell_scales": (list[float], []),
    "cell_min_count": (int, 5),
    "embed_dim": (int, 8),
    "spread_scales": (list[float], [0.04, 0.02, 0.01, 0.005, 0.0025]),
    "target_scales": (list[float], [0.001]),
    "target_folds": (int, 5),
    "target_offset": (bool, True),
    "spread_shifts": (int, 4),
    "point_cells": (bool, True),
    "recount_with_validation": (bool, True),
    "members": (int, 1),
    "schedule": (str, "onecycle"),
    "temperature_scaling": (bool, True),
    "prior_correction": (bool, False),
    "cpu_threads": (int, 1),
    "max_train_rows": (int, 1_000_000),
}
RUN_CONFIGS = {
    LogisticRegressionConfig: {
        "class_weighted": (bool, False),
        "c": (float, 1.0),
        "max_iter": (int, 500),
        "max_train_rows": (int, 1_000_000),
    },
    GBDTConfig: {
        "class_weighted": (bool, False),
        "max_iter": (int, 150),
        "learning_rate": (float, 0.1),
        "max_leaf_nodes": (int, 31),
        "max_train_rows": (int, 1_000_000),
    },
    MLPConfig: MLP_RUN_CONFIG,
    WeightedMLPConfig: {**MLP_RUN_CONFIG, "prior_correction": (bool, True)},
}
# Each config and what it is derived from: settings classes, or instances whose values are the defaults.
SOURCES = {
    LogisticRegressionConfig: (LogisticRegressionSettings(),),
    GBDTConfig: (GBDTSettings(),),
    MLPConfig: (MLPSettings(), TrainingSample()),
    WeightedMLPConfig: (WEIGHTED_MLP_SETTINGS, TrainingSample()),
}


@pytest.mark.parametrize("config", list(RUN_CONFIGS), ids=lambda c: c.__name__)
def test_run_configs_keep_their_field_names_types_and_defaults(config):
    fields = config.model_fields
    assert {name: (f.annotation, f.default) for name, f in fields.items()} == RUN_CONFIGS[config]
    assert config().model_dump() == {name: default for name, (_, default) in RUN_CONFIGS[config].items()}


@pytest.mark.parametrize("config", list(SOURCES), ids=lambda c: c.__name__)
def test_run_configs_are_the_settings_fields_and_cannot_drift(config):
    sources = SOURCES[config]
    expected = {}
    for source in sources:
        hints = typing.get_type_hints(type(source))
        for f in dataclasses.fields(source):
            value = getattr(source, f.name)
            expected[f.name] = list(value) if isinstance(value, tuple) else value
            assert config.model_fields[f.name].description == f.metadata["description"], f.name
            assert (typing.get_origin(hints[f.name]) is tuple) == (
                typing.get_origin(config.model_fields[f.name].annotation) is list
            )
    assert config().model_dump() == expected
    # And back: the settings a default run config holds are the settings' defaults.
    for source in sources:
        assert settings_of(config(), type(source)) == source


def test_a_run_config_value_reaches_the_settings_as_their_type():
    config = MLPConfig(epochs=3, spread_scales=[0.02, 0.01], max_train_rows=500)
    settings = settings_of(config, MLPSettings)
    assert settings == MLPSettings(epochs=3, spread_scales=(0.02, 0.01))
    assert settings_of(config, TrainingSample) == TrainingSample(500)
    assert settings_of(LogisticRegressionConfig(c=0.5), LogisticRegressionSettings).c == 0.5
    assert TrainingSample().max_train_rows == DEFAULT_MAX_TRAIN_ROWS


def test_a_settings_field_added_in_lib_appears_in_the_derived_config():
    @dataclasses.dataclass(frozen=True)
    class Extended(LogisticRegressionSettings):
        tolerance: float = 1e-4
        scales: tuple[int, ...] = (1, 2)

    config = config_from_settings("ExtendedConfig", "doc", Extended)
    assert config().model_dump() == {
        **dataclasses.asdict(LogisticRegressionSettings()),
        "tolerance": 1e-4,
        "scales": [1, 2],
    }
    assert config.__doc__ == "doc"
