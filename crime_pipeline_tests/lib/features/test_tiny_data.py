"""Too little data to split or train: one sentence with the counts, and ingestion's results kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crime_pipeline.lib import synthetic
from crime_pipeline.lib.features.splits import MIN_ROWS, TooLittleDataError, random_split, temporal_split
from crime_pipeline.lib.ingest.raw_csv import sha256_file
from crime_pipeline.lib.lake.layout import partition_key_for
from crime_pipeline.lib.lake.parquet import read_parquet
from crime_pipeline.lib.models.training import Matrices, matrices, train_gbdt, train_logistic_regression
from crime_pipeline_tests.conftest import Pipeline


def incidents(n: int, *, one_instant: bool = False, labels: list[str] | None = None) -> pd.DataFrame:
    """A minimal split input: n incidents an hour apart (or all at noon on one day)."""
    when = pd.Timestamp("2024-03-01 12:00") + pd.to_timedelta(np.zeros(n) if one_instant else np.arange(n), unit="h")
    label = (labels or ["LARCENY/THEFT", "ASSAULT"]) * n
    return pd.DataFrame(
        {
            "case_number": [f"C{i:05d}" for i in range(n)],
            "incident_datetime": when,
            "label": label[:n],
            "label_id": [0 if x == "LARCENY/THEFT" else 1 for x in label[:n]],
        }
    )


def test_eleven_valid_incidents_fail_at_the_split_with_the_counts_and_keep_ingestion(defs, instance, lake):
    pipe = Pipeline(defs, instance, lake)  # every downstream asset, as `crime-pipeline run` does
    generated = synthetic.generate_incidents(60, seed=3)
    clean = generated.frame[generated.dirt == "clean"].head(11)
    assert len(clean) == 11
    key = partition_key_for(sha256_file(synthetic.write_export_csv(clean, lake.incoming / "eleven.csv")))

    assert pipe.run() == 1
    printed = "\n".join(pipe.output)
    assert "dataset_splits" in printed
    assert (
        "Too little data to split: 11 incidents gave train 7, validation 2, test 2, but each part needs "
        "at least 100 / 20 / 20 incidents (train / validation / test), about 143 incidents in all at "
        "validation_fraction 0.15 and test_fraction 0.15."
    ) in printed, printed
    assert "0 sample(s)" not in printed
    # Ingestion and validation are kept; nothing from the split down was built.
    assert len(read_parquet(lake.validated_table(key))) == 11
    assert len(read_parquet(lake.quarantine_table(key))) == 0
    assert len(read_parquet(lake.table("incidents"))) == 11
    assert lake.table("incident_features").exists()
    assert not lake.table("dataset_splits").exists()
    assert list(lake.models.iterdir()) == []


def test_all_incidents_at_one_instant_are_named_as_the_cause():
    with pytest.raises(TooLittleDataError) as caught:
        temporal_split(incidents(300, one_instant=True), 0.15, 0.15)
    message = str(caught.value)
    assert message.startswith(
        "Too little data to split: 300 incidents gave train 0, validation 0, test 300 "
        "because all of them are at one instant (2024-03-01 12:00:00)"
    )
    assert caught.value.counts == {"incidents": 300, "train": 0, "validation": 0, "test": 300}


def test_the_minimum_is_exactly_enough_and_one_less_is_not():
    split = temporal_split(incidents(143), 0.15, 0.15)
    assert split.value_counts().to_dict() == {"train": 100, "test": 22, "validation": 21}
    with pytest.raises(TooLittleDataError, match=r"142 incidents gave train 99, validation 21, test 22, "):
        temporal_split(incidents(142), 0.15, 0.15)
    assert MIN_ROWS == {"train": 100, "validation": 20, "test": 20}


def test_random_split_of_tiny_data_gives_the_sentence_not_scikit_learns_error():
    with pytest.raises(
        TooLittleDataError,
        match=r"^Too little data to split: 11 incidents gave train 7, "
        r"validation 2, test 2, but",
    ):
        random_split(incidents(11), 0.15, 0.15, seed=0)
    with pytest.raises(TooLittleDataError, match=r"0 incidents gave train 0, validation 0, test 0"):
        random_split(incidents(0), 0.15, 0.15, seed=0)
    with pytest.raises(TooLittleDataError, match=r"0 incidents gave train 0, validation 0, test 0"):
        temporal_split(incidents(0), 0.15, 0.15)


def test_a_training_part_of_one_incident_type_is_refused():
    table = incidents(400, labels=["LARCENY/THEFT"] * 300 + ["ASSAULT"] * 100)  # the newest are the assaults
    with pytest.raises(
        TooLittleDataError,
        match=r"^Too little variety to train: 400 incidents gave train 280, "
        r"validation 60, test 60, but the training part holds 1 "
        r"incident type\(s\) \(LARCENY/THEFT\)",
    ):
        temporal_split(table, 0.15, 0.15)


def test_models_never_see_an_empty_part_or_a_single_type():
    splits = incidents(5).assign(split="train", hour=1.0)
    with pytest.raises(ValueError, match="the test part of dataset_splits is empty"):
        matrices(splits, {"hour": [0.0, 23.0]}, "test")
    one_type = Matrices(np.zeros((5, 1), dtype=np.float32), np.zeros(5, dtype=np.int64))
    for train in (lambda d: train_logistic_regression(d, False), lambda d: train_gbdt(d, False)):
        with pytest.raises(ValueError, match="hold 1 incident type"):
            train(one_type)
