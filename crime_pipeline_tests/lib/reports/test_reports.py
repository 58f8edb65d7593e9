"""Evaluation, figures and the HTML report: honest numbers, real pictures, safe HTML."""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread
from sklearn import metrics as skm

from crime_pipeline.lib.reports import model_gate
from crime_pipeline.lib.reports.metrics import (
    beats_bayes_by_more_than_noise,
    classification_metrics,
    expected_calibration_error,
)
from crime_pipeline_tests.conftest import API_SAMPLE

CLASSES = ["a", "b", "c", "d"]


def test_metrics_agree_with_scikit_learn_on_a_hand_built_case():
    y = np.array([0, 0, 1, 1, 2, 2, 3, 0, 1, 2])
    proba = np.array(
        [
            [0.7, 0.1, 0.1, 0.1],
            [0.2, 0.5, 0.2, 0.1],
            [0.1, 0.8, 0.05, 0.05],
            [0.4, 0.3, 0.2, 0.1],
            [0.1, 0.1, 0.7, 0.1],
            [0.35, 0.3, 0.25, 0.1],
            [0.4, 0.3, 0.2, 0.1],
            [0.6, 0.2, 0.1, 0.1],
            [0.1, 0.6, 0.2, 0.1],
            [0.1, 0.2, 0.6, 0.1],
        ]
    )
    pred = proba.argmax(1)
    m = classification_metrics(y, proba, CLASSES)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro", zero_division=0))
    assert m["weighted_f1"] == pytest.approx(skm.f1_score(y, pred, average="weighted", zero_division=0))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=range(4)))
    assert m["top3_accuracy"] == pytest.approx(skm.top_k_accuracy_score(y, proba, k=3, labels=range(4)))
    precision, recall, *_ = skm.precision_recall_fscore_support(y, pred, labels=range(4), zero_division=0)
    assert list(m["per_class_precision"].values()) == pytest.approx(list(precision))
    assert list(m["per_class_recall"].values()) == pytest.approx(list(recall))
    assert m["per_class_recall"]["d"] == 0.0  # the minority class is named, and never found
    # ECE by hand: two bins hold rows; |accuracy - confidence| weighted by their size.
    y2 = np.array([0, 1, 0, 0])
    p2 = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    assert expected_calibration_error(y2, p2, bins=10) == pytest.approx(0.5 * abs(0.5 - 0.9) + 0.5 * abs(1.0 - 0.6))


def test_a_model_that_sees_the_label_beats_bayes_and_is_caught():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 2000)
    bayes = np.full((2000, 4), 0.25)
    leaky = np.full((2000, 4), 0.1)
    leaky[np.arange(2000), y] = 0.7
    assert beats_bayes_by_more_than_noise(y, leaky, bayes)["beats_bayes"]
    honest = rng.dirichlet(np.ones(4), 2000)
    assert not beats_bayes_by_more_than_noise(y, honest, bayes)["beats_bayes"]


def test_evaluation_document_and_the_bayes_limit(trained):
    lake, _, _ = trained
    doc = json.loads(lake.report_file("evaluation.json").read_text())
    assert {"split", "n_test", "classes", "models", "baselines", "bayes"} <= set(doc)
    assert set(doc["models"]) == {"baseline", "mlp", "mlp_weighted", "gbdt"} and set(doc["baselines"]) == {
        "majority",
        "prior",
    }
    assert doc["generated_data"] and doc["split"] == "temporal"
    bayes = doc["bayes"]
    n = doc["n_test"]
    noise = 3 * np.sqrt(0.25 / n) * np.sqrt(2)
    for kind, m in doc["models"].items():
        assert {"accuracy", "macro_f1", "log_loss", "per_class_recall"} <= set(m)
        assert bayes["accuracy"] >= m["accuracy"] - noise, kind
        assert bayes["log_loss"] <= m["log_loss"] + 0.02, kind
        assert not bayes["gap"][kind]["test"]["beats_bayes"], kind
    # Both MLP variants side by side, with the trade-off in words computed from their numbers.
    plain, weighted = doc["models"]["mlp"], doc["models"]["mlp_weighted"]
    for m in (plain, weighted):
        assert f"{m['balanced_accuracy']:.3f}" in doc["mlp_tradeoff"] and f"{m['accuracy']:.3f}" in doc["mlp_tradeoff"]
    assert html.escape(doc["mlp_tradeoff"]) in lake.report_file("report.html").read_text()
    assert bayes["accuracy"] > doc["baselines"]["majority"]["accuracy"]
    assert doc["baselines"]["prior"]["log_loss"] > bayes["log_loss"]


def test_the_blocking_bayes_check_fails_when_a_model_sees_the_label(trained, monkeypatch, tmp_path, capsys):
    lake, _, _ = trained
    from crime_pipeline.definitions import build_definitions

    original = model_gate.predict_proba

    def mlp_with_a_leak(kind, model, x, n_classes):  # the MLP gets the answer: what a leaky feature does
        proba = original(kind, model, x, n_classes)
        if kind == "mlp":
            from crime_pipeline.lib.lake.parquet import read_parquet

            splits = read_parquet(lake.table("dataset_splits"))
            truth = splits.loc[splits["split"] == "test", "label_id"].to_numpy()
            proba = np.full_like(proba, 0.3 / (n_classes - 1))
            proba[np.arange(len(truth)), truth] = 0.7
        return proba

    monkeypatch.setattr(model_gate, "predict_proba", mlp_with_a_leak)
    published = {p.name: p.read_bytes() for p in lake.models.glob("*") if p.is_file()}
    evaluation = lake.report_file("evaluation.json").read_bytes()
    defs = build_definitions(str(lake.root))
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            defs.assets,
            selection=["model_evaluation", "figures"],
            instance=instance,
            resources=defs.resources,
            raise_on_error=False,
        )
    assert not result.success
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "no_model_beats_bayes")
    assert not check.passed and "mlp" in check.metadata["models_beating_bayes"].value
    assert "figures" not in {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    # Nothing was published: the models predict loads and the evaluation the report shows are the old ones.
    assert {p.name: p.read_bytes() for p in lake.models.glob("*") if p.is_file()} == published
    assert lake.report_file("evaluation.json").read_bytes() == evaluation
    # predict serves the previously published MLP and says which one.
    from crime_pipeline.cli import main as cli_main

    monkeypatch.setenv("CRIME_PIPELINE_LAKE", str(lake.root))
    source = tmp_path / "in.csv"
    source.write_bytes(API_SAMPLE.read_bytes())
    assert cli_main(["predict", "--model", "mlp", "--input", str(source), "--out", str(tmp_path / "out.csv")]) == 0
    previous = json.loads(published["mlp.json"])
    assert f"weights {previous['weights_sha256'][:12]}" in capsys.readouterr().out


def test_every_figure_is_a_real_picture(trained):
    lake, _, _ = trained
    names = [
        "confusion_matrices.png",
        "reliability.png",
        "training_curves.png",
        "hotspots_time_bands.png",
        "hotspots_types.png",
        "class_distribution.png",
        "per_class_recall.png",
    ]
    for name in names:
        image = imread(lake.report_file(name))
        height, width = image.shape[:2]
        assert width >= 700 and height >= 400, (name, image.shape)
        rgb = image[..., :3]
        not_white = (rgb < 0.95).any(axis=-1).mean()
        assert not_white > 0.05, (name, not_white)  # visible content, not a blank canvas
        assert rgb.std() > 0.05, name


class _Collector(HTMLParser):
    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self):
        super().__init__()
        self.stack, self.tags, self.text, self.images = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}>"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(html: str) -> _Collector:
    parser = _Collector()
    parser.feed(html)
    parser.close()
    assert not parser.stack, parser.stack
    return parser


def test_report_is_self_contained_and_complete(trained):
    lake, _, _ = trained
    html = lake.report_file("report.html").read_text()
    doc = parse(html)
    text = " ".join(doc.text)
    for section in (
        "Contents",
        "Data quality",
        "Leakage check",
        "Models on the test split",
        "Figures",
        "Responsible use",
        "Bayes limit",
        "Quarantined, by rule",
        "Per-class recall",
        "Gain over the baselines",
    ):
        assert section in text, section
    # The table of contents links every section heading, in order.
    headings = re.findall(r'<h2 id="([a-z0-9-]+)">', html)
    assert re.findall(r'<li><a href="#([a-z0-9-]+)">', html) == headings and len(headings) >= 6
    captions = json.loads(lake.report_file("captions.json").read_text())
    assert len(doc.images) >= len(captions) == 7  # the report's figures, and those of its analysis sections
    assert all(src.startswith("data:image/png;base64,") for src in doc.images)
    # The headline says, from the intervals, whether the best model's gain over the commonest type is real.
    evaluation = json.loads(lake.report_file("evaluation.json").read_text())
    best = max(evaluation["models"].values(), key=lambda m: m["accuracy"])
    verdict = best["gain"]["accuracy_over_majority"]["verdict"]
    assert {"above zero": "distinguishable from zero", "includes zero": "not distinguishable"}[verdict] in text
    assert "Trained and tested on generated data" in text and "all generated by" in text
    assert "script" not in doc.tags and "http://" not in html and "https://" not in html
    assert "20,000 rows read" in text


def test_data_in_the_report_is_escaped(pipeline, lake):
    source = pd.read_csv(API_SAMPLE, dtype=str, keep_default_na=False)
    source.loc[0, "incident_description"] = "<script>alert('x')</script>"
    source.loc[0, "latitude"] = "40.0"  # outside the city: the row is quarantined and shown as an example
    source.loc[0, "location"] = ""
    pipeline.downstream = None
    pipeline.drop("escaping.csv", source.to_csv(index=False).encode())
    assert pipeline.run() == 0, pipeline.output
    html = lake.report_file("report.html").read_text()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    parse(html)
    doc = json.loads(lake.report_file("evaluation.json").read_text())
    assert doc["bayes"] is None and not doc["generated_data"]  # real rows: no Bayes limit is claimed
    assert "all real exports" in html and "Trained and tested on generated data" not in html
    assert any(line.startswith("report: ") for line in pipeline.output)


def test_files_read_but_not_validated_are_named_in_the_report():
    from crime_pipeline.lib.reports.html import _quality_section

    quality = {
        "totals": {"rows_read": 10, "valid": 10, "quarantined": 0, "superseded": 0},
        "reconciles": True,
        "files": [],
        "quarantined_by_rule": {},
        "flags": {},
        "pending_files": [{"file": "<b>crashed.csv", "partition_key": "abc123", "status": "read"}],
    }
    html = _quality_section(quality, pd.DataFrame())
    assert "not validated yet" in html and "&lt;b&gt;crashed.csv (abc123)" in html
    assert "not validated yet" not in _quality_section({**quality, "pending_files": []}, pd.DataFrame())
