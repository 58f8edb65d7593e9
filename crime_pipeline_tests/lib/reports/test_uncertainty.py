"""Bootstrap intervals and calibration: they agree with the point metrics and cover the truth."""

from __future__ import annotations

import numpy as np
import pytest

from crime_pipeline.lib.reports import uncertainty
from crime_pipeline.lib.reports.evaluation import HEADLINE, evaluate
from crime_pipeline.lib.reports.metrics import classification_metrics, expected_calibration_error
from crime_pipeline.lib.synthetic.posterior import posterior
from crime_pipeline.lib.synthetic.sample import sample_clean
from crime_pipeline.lib.synthetic.spec import spec


def _generated(n: int, seed: int):
    rows = sample_clean(n, np.random.default_rng(seed), spec())
    return rows["label"], posterior(rows["lat"], rows["lon"], rows["when"])


def test_the_bootstrap_scores_every_metric_as_the_evaluation_does():
    y, proba = _generated(3000, 1)
    classes = list(spec().classes)
    expected = classification_metrics(y, proba, classes)
    sums = np.asarray(uncertainty._design(y, proba, len(classes)).sum(axis=0))  # every row drawn once
    got = uncertainty._metrics_from_sums(sums, len(y), len(classes))
    for metric in HEADLINE:
        assert got[metric][0] == pytest.approx(expected[metric]), metric


@pytest.mark.slow  # ten seeded bootstraps of a generated sample: seconds
def test_intervals_cover_the_true_bayes_metrics_in_most_seeds():
    """The generator's posterior is known: its expected accuracy is E[max p(type | x)] and its expected
    log loss E[entropy of p(type | x)], measured here on 40,000 fresh rows. The 95% interval from 1,500
    test rows must hold them in at least 8 of 10 seeds."""
    _, truth_proba = _generated(40_000, 1000)
    true_accuracy = truth_proba.max(axis=1).mean()
    true_log_loss = -(truth_proba * np.log(np.clip(truth_proba, 1e-15, 1))).sum(axis=1).mean()
    covered = {"accuracy": 0, "log_loss": 0}
    for seed in range(10):
        y, proba = _generated(1500, seed)
        draws = uncertainty.bootstrap_metrics(y, {"bayes": proba}, proba.shape[1], resamples=200, seed=seed)
        for metric, truth in (("accuracy", true_accuracy), ("log_loss", true_log_loss)):
            low, high = uncertainty.interval(draws["bayes"][metric])
            covered[metric] += low <= truth <= high
    assert covered["accuracy"] >= 8 and covered["log_loss"] >= 8, covered


def test_a_gain_is_called_distinguishable_only_when_its_interval_excludes_zero():
    rng = np.random.default_rng(3)
    n, k = 4000, 3
    y = rng.choice(k, n, p=[0.5, 0.3, 0.2])
    informed = np.full((n, k), 0.1)
    informed[np.arange(n), y] = 0.8  # right most of the time: a real gain
    informed[rng.random(n) < 0.3] = [0.2, 0.7, 0.1]
    noise = rng.dirichlet(np.ones(k) * 50, n) * 0.02 + np.array([0.5, 0.3, 0.2]) * 0.98  # the prior, barely moved
    worse = np.tile([0.05, 0.05, 0.9], (n, 1))  # confidently the rarest type: worse than the majority
    doc = evaluate(y, y, {"informed": informed, "noise": noise, "worse": worse}, ["a", "b", "c"], "temporal")
    verdicts = {kind: m["gain"]["accuracy_over_majority"]["verdict"] for kind, m in doc["models"].items()}
    assert verdicts == {"informed": "above zero", "noise": "includes zero", "worse": "below zero"}
    low, high = doc["models"]["informed"]["ci95"]["accuracy"]
    assert low < doc["models"]["informed"]["accuracy"] < high
    assert doc["baselines"]["majority"]["ci95"]["log_loss"] is None  # no interval for a metric it has not
    assert doc["bootstrap"]["resamples"] == uncertainty.RESAMPLES


def test_reliability_bins_give_the_ece_and_the_direction_of_miscalibration():
    from crime_pipeline.lib.reports.captions import reliability

    rng = np.random.default_rng(4)
    n = 5000
    y = (rng.random(n) < 0.6).astype(int)  # class 0 is right 40% of the time
    over = np.tile([0.9, 0.1], (n, 1))  # says 90% for a type right 40% of the time
    under = np.tile([0.45, 0.55], (n, 1))  # says 55% for the type right 60% of the time
    bins = {"over": uncertainty.reliability_bins(y, over), "under": uncertainty.reliability_bins(y, under)}
    assert bins["over"]["ece"] == pytest.approx(expected_calibration_error(y, over))
    assert sum(bins["over"]["count"]) == n
    caption = reliability(bins)
    assert "over is overconfident" in caption and "under is underconfident" in caption


def test_a_large_test_set_is_resampled_from_a_subsample_with_the_spread_rescaled():
    y, proba = _generated(24_000, 7)
    exact = uncertainty.bootstrap_metrics(y, {"bayes": proba}, proba.shape[1], resamples=200)["bayes"]
    rescaled = uncertainty.bootstrap_metrics(y, {"bayes": proba}, proba.shape[1], resamples=200, max_rows=4_000)
    point = classification_metrics(y, proba, list(spec().classes))
    for metric in ("accuracy", "log_loss", "macro_f1"):
        (lo, hi), (rlo, rhi) = uncertainty.interval(exact[metric]), uncertainty.interval(rescaled["bayes"][metric])
        assert rlo < point[metric] < rhi, metric
        assert 0.7 < (rhi - rlo) / (hi - lo) < 1.3, (metric, (lo, hi), (rlo, rhi))
