"""The built-in generator: deterministic, real shares, real dirt, and an exact posterior."""

from __future__ import annotations

import hashlib
import os
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from crime_pipeline.lib import synthetic
from crime_pipeline.lib.cities.columns import CLASSES
from crime_pipeline.lib.cities.profiles import BUILTIN_FOLDER, ProfileError
from crime_pipeline.lib.synthetic.spec import model_version


@pytest.fixture(scope="module")
def generated() -> synthetic.GeneratedIncidents:
    return synthetic.generate_incidents(40_000, seed=11)


@pytest.mark.slow  # generates 40,000 rows twice more: seconds
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


def _clean_posterior(generated) -> tuple[np.ndarray, np.ndarray]:
    clean = generated.frame[generated.dirt == "clean"]
    when = pd.to_datetime(clean["Incident Datetime"], format=synthetic.DATETIME_FORMAT)
    post = synthetic.posterior(clean["Latitude"].astype(float), clean["Longitude"].astype(float), when)
    truth = pd.Series(generated.true_label[generated.dirt == "clean"]).map(CLASSES.index).to_numpy()
    return post, truth


def _z(values: np.ndarray) -> float:
    """How many standard errors the mean of `values` is from 0 (sample standard deviation)."""
    return float(values.mean() / (values.std(ddof=1) / np.sqrt(len(values))))


def posterior_z_scores(post: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """z-scores that are all small when `post` is the true P(type | fields) of rows drawn with `truth`.

    - entropy: log P(true type) and minus the posterior's entropy have the same expectation;
    - class k: the mean P(k) equals the frequency of k;
    - top bin: among rows whose most probable type has probability in the bin, that probability
      equals how often that type is the true one.
    """
    n = len(truth)
    logp = np.log(post)
    scores = {"entropy": _z(logp[np.arange(n), truth] - (post * logp).sum(axis=1))}
    onehot = np.eye(post.shape[1])[truth]
    for k, name in enumerate(CLASSES):
        scores[f"class {name}"] = _z(post[:, k] - onehot[:, k])
    top = post.max(axis=1)
    hit = (post.argmax(axis=1) == truth).astype(float)
    for low, high in ((0.0, 0.4), (0.4, 0.5), (0.5, 0.6), (0.6, 0.8), (0.8, 1.01)):
        in_bin = (top >= low) & (top < high)
        # every bin is populated enough to test (near repeats' offspring off the micro-places thin the top one)
        assert in_bin.sum() > 150, (low, high, in_bin.sum())
        scores[f"top in [{low}, {high})"] = _z(top[in_bin] - hit[in_bin])
    return scores


@pytest.mark.slow  # a z-test over a large generated sample: seconds
def test_posterior_is_exact_on_clean_rows(generated):
    post, truth = _clean_posterior(generated)
    assert post.shape == (len(truth), len(CLASSES))
    np.testing.assert_allclose(post.sum(axis=1), 1.0)
    scores = posterior_z_scores(post, truth)
    assert max(abs(z) for z in scores.values()) < 4, scores
    bayes_loss = -np.log(post[np.arange(len(truth)), truth]).mean()
    prior_loss = -np.log(synthetic.PRIORS[truth]).mean()
    assert bayes_loss < prior_loss - 0.1
    assert (post.argmax(axis=1) == truth).mean() > (truth == 0).mean() + 0.03


@pytest.mark.slow  # a z-test over a large generated sample: seconds
@pytest.mark.parametrize("power", [0.8, 1.25])
def test_the_posterior_checks_catch_a_tempered_posterior(generated, power):
    """The checks above are not blind: a slightly over- or under-confident posterior fails them."""
    post, truth = _clean_posterior(generated)
    tempered = post**power
    tempered /= tempered.sum(axis=1, keepdims=True)
    scores = posterior_z_scores(tempered, truth)
    assert max(abs(z) for z in scores.values()) > 5, scores


def test_the_exact_place_carries_information(generated, monkeypatch):
    """Forgetting the micro-places' point masses leaves a calibrated but clearly worse posterior:
    a model that cannot resolve single places falls visibly short of the limit."""
    post, truth = _clean_posterior(generated)
    monkeypatch.setitem(synthetic.MODEL, "micro_pi", np.zeros_like(synthetic.MODEL["micro_pi"]))
    blind, _ = _clean_posterior(generated)
    rows = np.arange(len(truth))
    assert -np.log(blind[rows, truth]).mean() > -np.log(post[rows, truth]).mean() + 0.05


def test_micro_places_concentrate_incidents(generated):
    """Like geocoded-to-the-block exports: nearly half the incidents share exact coordinates with
    others, at a few hundred places."""
    clean = generated.frame[generated.dirt == "clean"]
    exact = clean[clean["Incident Datetime"].str.slice(6, 10).astype(int) < synthetic.ROUNDED_FROM_YEAR]
    counts = (exact["Latitude"] + "," + exact["Longitude"]).value_counts()
    shared = counts[counts >= 5]
    assert 0.35 < shared.sum() / len(exact) < 0.5, shared.sum() / len(exact)
    assert 300 < len(shared) <= len(synthetic.MODEL["micro_comp"])


def test_generator_version_is_a_hash_of_the_parameters(monkeypatch):
    assert re.fullmatch(r"[0-9a-f]{16}", synthetic.GENERATOR_VERSION)
    assert model_version(synthetic.MODEL) == synthetic.GENERATOR_VERSION
    changed = dict(synthetic.MODEL, weights=synthetic.MODEL["weights"] * 1.0001)
    assert model_version(changed) != synthetic.GENERATOR_VERSION
    monkeypatch.setitem(synthetic.DIRT_RATES, "coordinates_missing", 0.02)
    assert model_version(synthetic.MODEL) != synthetic.GENERATOR_VERSION


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


# Bytes of `write_export_csv(generate_incidents(2000, 7, city=c))` under each version: files are
# recorded with the generator version, so the same version must keep writing the same bytes.
PINNED_EXPORTS = {
    ("buffalo", "c78eed962b318bd3"): "2595e0c8d73692f851deed96337910979784606f9a1004c39a08b5af78b3c39f",
    ("chicago", "ccdb1a9c75f7ca64"): "909c5961354fdc72e928f253c1935167d5f76c3558052ee29c04eff4d3083585",
    # near repeats on by default (issue 21), districts as areas (lib/synthetic/districts.py)
    ("buffalo", "249d25477f88af02"): "f1ba38b487425792ac0d391100a7745c0fe6c9a2f5977ec0254246e575924573",
    ("chicago", "3bd9f7c51ec73c95"): "dd36415ecc6782732e1f69f80513ad53e8e0df64dd0c3eaaced1f1157ed73f55",
}


@pytest.mark.parametrize("city", ["buffalo", "chicago"])
def test_the_same_generator_version_writes_the_same_bytes(city, tmp_path):
    version = synthetic.generator_version(city)
    # A new version must be pinned on purpose (a skip would let the bytes drift unseen).
    assert (city, version) in PINNED_EXPORTS, (
        f"a new generator version {version} for {city}: pin its export's sha256 in PINNED_EXPORTS"
    )
    path = synthetic.write_export_csv(synthetic.generate_incidents(2000, 7, city=city), tmp_path / "x.csv")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == PINNED_EXPORTS[(city, version)]


def test_a_lakes_own_city_profile_is_used_when_its_root_is_given(tmp_path):
    """`lake_root` reaches the profile lookup; a profile edited in place is a new model and version."""
    data = yaml.safe_load((BUILTIN_FOLDER / "chicago.yaml").read_text())
    data["key"] = "lake_only_city"
    profile = tmp_path / "cities" / "lake_only_city.yaml"
    profile.parent.mkdir()
    profile.write_text(yaml.safe_dump(data))
    with pytest.raises(ProfileError, match="lake_only_city"):
        synthetic.generator_version("lake_only_city")
    version = synthetic.generator_version("lake_only_city", lake_root=tmp_path)
    assert version != synthetic.generator_version("chicago")
    data_ = synthetic.generate_incidents(300, 1, city="lake_only_city", lake_root=tmp_path)
    assert tuple(data_.frame.columns) == synthetic.CHICAGO_COLUMNS
    assert synthetic.posterior(
        [41.88], [-87.63], ["2019-06-01 13:00"], city="lake_only_city", lake_root=tmp_path
    ).shape == (1, len(data["classes"]))
    data["classes"][0]["share"] *= 2
    profile.write_text(yaml.safe_dump(data))
    os.utime(profile, ns=(profile.stat().st_atime_ns, profile.stat().st_mtime_ns + 10**9))  # a later edit
    assert synthetic.generator_version("lake_only_city", lake_root=tmp_path) != version
