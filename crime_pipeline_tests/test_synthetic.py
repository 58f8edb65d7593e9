"""The built-in generator: deterministic, real shares, real dirt, and an exact posterior."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from crime_pipeline import synthetic
from crime_pipeline.lib.columns import CLASSES


@pytest.fixture(scope="module")
def generated() -> synthetic.GeneratedIncidents:
    return synthetic.generate_incidents(40_000, seed=11)


def test_same_seed_same_rows_other_seed_other_rows(generated):
    again = synthetic.generate_incidents(40_000, seed=11)
    pd.testing.assert_frame_equal(generated.frame, again.frame)
    other = synthetic.generate_incidents(40_000, seed=12)
    assert not generated.frame["Case Number"].equals(other.frame["Case Number"])


def test_export_layout(generated):
    frame = generated.frame
    assert tuple(frame.columns) == synthetic.EXPORT_COLUMNS
    assert len(frame) == 40_000
    clean = frame[generated.dirt == "clean"]
    assert clean["Incident Datetime"].str.fullmatch(r"\d\d/\d\d/20\d\d \d\d:\d\d:\d\d [AP]M").all()
    assert clean["Incident ID"].isna().all() and clean["updated_at"].isna().all()
    when = pd.to_datetime(clean["Incident Datetime"], format=synthetic.DATETIME_FORMAT)
    assert when.dt.year.min() == 2009 and when.dt.year.max() == 2025
    lat = clean["Latitude"].astype(float)
    assert lat.between(synthetic.LAT_MIN, synthetic.LAT_MAX).all()


def test_label_shares_match_the_real_data(generated):
    labels = pd.Series(generated.true_label)
    shares = labels.value_counts(normalize=True).reindex(CLASSES).to_numpy()
    n = len(labels)
    tolerance = 4 * np.sqrt(synthetic.PRIORS * (1 - synthetic.PRIORS) / n)  # four standard errors
    assert np.all(np.abs(shares - synthetic.PRIORS) < tolerance), dict(zip(CLASSES, shares))


def test_dirt_is_present_at_the_stated_rates(generated):
    counts = pd.Series(generated.dirt).value_counts()
    base = 40_000 - counts["reissued_newer"]
    for rule, rate in synthetic.DIRT_RATES.items():
        assert counts[rule] == round(base * rate), rule
    assert counts["reissued_newer"] == round(40_000 * synthetic.REISSUED_RATE)
    frame = generated.frame
    assert (frame["neighborhood"] == "UNKNOWN").mean() > 0.02
    legacy_upper = frame["Incident Type Primary"].str.isupper()
    assert legacy_upper.any() and (~legacy_upper).any()  # UPPERCASE and Title Case both occur
    clean = frame[generated.dirt == "clean"]
    hour = pd.to_datetime(clean["Incident Datetime"], format=synthetic.DATETIME_FORMAT).dt.hour
    assert (clean["Hour of Day"].astype(int) != hour).sum() > 0
    assert (clean["Incident Datetime"].str.endswith("12:00:00 PM")).mean() > 0.05


def test_label_leaks_through_primary_type(generated):
    """The export carries the label in disguise, as the real one does."""
    frame = generated.frame[generated.dirt == "clean"]
    purity = frame.groupby(frame["Incident Type Primary"].str.upper())["Parent Incident Type"].agg(
        lambda s: s.str.casefold().value_counts(normalize=True).iloc[0]
    )
    assert purity.min() > 0.95


def test_posterior_is_a_calibrated_distribution(generated):
    clean = generated.frame[generated.dirt == "clean"]
    when = pd.to_datetime(clean["Incident Datetime"], format=synthetic.DATETIME_FORMAT)
    post = synthetic.posterior(clean["Latitude"].astype(float), clean["Longitude"].astype(float), when)
    assert post.shape == (len(clean), len(CLASSES))
    np.testing.assert_allclose(post.sum(axis=1), 1.0)
    truth = pd.Series(generated.true_label[generated.dirt == "clean"]).map(CLASSES.index).to_numpy()
    # Calibration: the mean posterior of each class matches how often it occurs.
    onehot = np.eye(len(CLASSES))[truth]
    np.testing.assert_allclose(post.mean(axis=0), onehot.mean(axis=0), atol=0.01)
    bayes_loss = -np.log(post[np.arange(len(truth)), truth]).mean()
    prior_loss = -np.log(synthetic.PRIORS[truth]).mean()
    assert bayes_loss < prior_loss - 0.1
    assert (post.argmax(axis=1) == truth).mean() > (truth == 0).mean() + 0.03


def test_generation_rejects_nonsense():
    with pytest.raises(ValueError, match="rows"):
        synthetic.generate_incidents(0)


def test_written_csv_reads_back(tmp_path):
    data = synthetic.generate_incidents(500, seed=3)
    path = synthetic.write_export_csv(data, tmp_path / "x.csv")
    back = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(back.columns) == list(synthetic.EXPORT_COLUMNS)
    assert back["Case Number"].tolist() == data.frame["Case Number"].fillna("").tolist()
    assert re.match(r"\d\d-\d{7}", back["Case Number"].iloc[0])
