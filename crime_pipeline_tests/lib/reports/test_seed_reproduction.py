"""The seed project's 97-99% reappears only with the label's disguises, and leaves nothing behind."""

from __future__ import annotations

import json
import tempfile
from html.parser import HTMLParser

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import torch

from crime_pipeline import cli
from crime_pipeline.lib.lake.parquet import read_parquet
from crime_pipeline.lib.reports.html import seed_section
from crime_pipeline.lib.reports.seed_method import (
    SeedSettings,
    encode_category,
    kept_categories,
    reproduce,
    stratified_sample,
)
from crime_pipeline_tests.conftest import lake_snapshot

EVALUATION = {
    "split": "temporal",
    "n_test": 777,
    "models": {"baseline": {"accuracy": 0.48, "macro_f1": 0.15}, "gbdt": {"accuracy": 0.52, "macro_f1": 0.2}},
}


class _Cells(HTMLParser):
    """Rows of table cells, as text."""

    def __init__(self):
        super().__init__()
        self.rows, self._cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.rows[-1].append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def table_rows(html: str) -> list[list[str]]:
    parser = _Cells()
    parser.feed(html)
    return parser.rows


def test_the_claim_reappears_only_with_the_leak_and_nothing_is_left_behind(
    pipeline, defs, instance, lake, tmp_path, monkeypatch
):
    pipeline.generate("gen.csv", rows=3_500, seed=11)
    assert pipeline.run() == 0, pipeline.output
    n_incidents = len(read_parquet(lake.table("incidents")))
    before = lake_snapshot(lake)
    # torch's first optimizer creates its (empty) compiler cache folder in the temp dir, once per
    # process and for any training: do that here, so the check below sees only what the asset leaves.
    torch.optim.Adam(torch.nn.Linear(1, 1).parameters())
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # any temp file the asset made would land here

    result = dg.materialize(defs.assets, selection=["seed_reproduction"], instance=instance, resources=defs.resources)

    assert result.success
    after = lake_snapshot(lake)
    assert set(after) - set(before) == {"reports/seed_reproduction.json"}
    assert all(after[name] == data for name, data in before.items())  # nothing rewritten either
    assert not any(lake.models.iterdir()) and not any(scratch.iterdir())

    doc = json.loads(lake.report_file("seed_reproduction.json").read_text())
    honest, leaky = doc["variants"]["honest"], doc["variants"]["leaky"]
    assert leaky["accuracy"] > 0.9 and honest["accuracy"] < 0.7
    assert leaky["macro_f1"] > honest["macro_f1"] + 0.2
    assert abs(honest["accuracy"] - doc["majority"]["accuracy"]) < 0.1  # time and place: near the majority rate
    assert (
        doc["rows"]
        == {"incidents": n_incidents, "used": n_incidents, "train": doc["rows"]["train"], "test": doc["rows"]["test"]}
        and not doc["sampled"]
    )
    assert doc["rows"]["train"] + doc["rows"]["test"] == n_incidents
    assert doc["rows"]["test"] == pytest.approx(0.2 * n_incidents, abs=1)
    assert doc["settings"]["epochs"] == 15 and doc["settings"]["batch_size"] == 256
    assert len(honest["train_loss_by_epoch"]) == len(leaky["train_loss_by_epoch"]) == 15
    assert honest["n_features"] == 2 + 24 + 7  # lat, lon, one-hot hour and weekday
    assert set(leaky["categories"]) == {"incident_type_primary", "incident_description"}
    assert f"{leaky['accuracy']:.1%} accuracy with them" in doc["sentence"]
    assert f"{honest['accuracy']:.1%} on time and place alone" in doc["sentence"]

    meta = result.asset_materializations_for_node("seed_reproduction")[0].metadata
    assert meta["leaky/accuracy"].value == leaky["accuracy"] and meta["rows_used"].value == n_incidents
    table = meta["comparison"].value
    assert f"| seed method with the label's disguises | {leaky['accuracy']:.4f} |" in table
    assert "our best honest model" not in table  # no evaluation.json in this lake yet
    assert table.endswith(doc["sentence"])

    # The report's section, beside our best honest model when the evaluation exists.
    rows = table_rows(seed_section(doc, EVALUATION))
    assert [r[0] for r in rows] == [
        "",
        "seed method, honest",
        "seed method with the label's disguises",
        "our best honest model (gbdt)",
        f"majority class ({doc['majority_class']})",
    ]
    assert rows[2][1:] == [f"{leaky['accuracy']:.4f}", f"{leaky['macro_f1']:.4f}", "random", str(doc["rows"]["test"])]
    assert rows[3][1:] == ["0.5200", "0.2000", "temporal", "777"]


def test_a_sample_reads_only_its_rows_and_matches_the_whole_table_method(pipeline, defs, instance, lake):
    # The asset picks the sample from the labels and reads the wide columns of those rows only; the
    # result must be what the method gives sampling the whole table itself.
    pipeline.generate("gen.csv", rows=3_500, seed=11)
    assert pipeline.run() == 0, pipeline.output
    small = {"max_rows": 600, "epochs": 2}
    result = dg.materialize(
        defs.assets,
        selection=["seed_reproduction"],
        instance=instance,
        resources=defs.resources,
        run_config={"ops": {"seed_reproduction": {"config": small}}},
    )
    assert result.success
    doc = json.loads(lake.report_file("seed_reproduction.json").read_text())
    whole = read_parquet(lake.table("incidents"))
    expected = reproduce(whole, SeedSettings(**small), log=lambda line: None)
    assert doc["sampled"] and doc["rows"] == expected["rows"] and doc["rows"]["incidents"] == len(whole)
    for variant in ("honest", "leaky"):
        assert doc["variants"][variant]["accuracy"] == expected["variants"][variant]["accuracy"]
        assert doc["variants"][variant]["train_loss_by_epoch"] == expected["variants"][variant]["train_loss_by_epoch"]


def test_the_report_section_escapes_every_value():
    doc = {
        "method": "<b>m</b>",
        "settings": SeedSettings().to_dict(),
        "sampled": True,
        "rows": {"incidents": 322_000, "used": 50_000, "train": 40_000, "test": 10_000},
        "majority_class": "<i>Theft</i>",
        "majority": {"accuracy": 0.44, "macro_f1": 0.07},
        "sentence": "<script>alert(1)</script>",
        "variants": {
            "honest": {"accuracy": 0.46, "macro_f1": 0.1},
            "leaky": {"accuracy": 0.99, "macro_f1": 0.9, "categories": {"<img src=x>": {}}},
        },
    }
    html = seed_section(doc, None)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>" not in html and "<i>" not in html and "<img" not in html
    assert "a stratified sample of 50,000 of 322,000 incidents" in html
    assert [r[0] for r in table_rows(html)][1:] == [
        "seed method, honest",
        "seed method with the label's disguises",
        "majority class (<i>Theft</i>)",
    ]


def test_the_sample_keeps_every_types_share():
    labels = np.repeat(["Theft", "Assault", "Robbery", "Homicide"], [6_000, 3_000, 900, 100])
    frame = pd.DataFrame({"label": labels, "x": np.arange(len(labels))})
    sample = stratified_sample(frame, 2_000, seed=1)
    assert len(sample) == 2_000 and sample["x"].is_unique
    assert sample["label"].value_counts().to_dict() == {"Theft": 1_200, "Assault": 600, "Robbery": 180, "Homicide": 20}
    assert len(stratified_sample(frame, 0, seed=1)) == len(frame) == len(stratified_sample(frame, 20_000, seed=1))


def test_rare_disguise_values_share_one_column():
    train = pd.Series(["ASSAULT"] * 5 + ["BURGLARY"] * 3 + ["UUV"] * 2 + ["MURDER"])
    kept = kept_categories(train, 2)
    assert kept == ["ASSAULT", "BURGLARY"]
    encoded = encode_category(pd.Series(["BURGLARY", "MURDER", "never seen", "ASSAULT"]), kept)
    assert encoded.tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 1], [1, 0, 0]]


def test_bad_settings_are_refused_by_name():
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        SeedSettings(batch_size=0)
    with pytest.raises(ValueError, match="test_fraction"):
        SeedSettings(test_fraction=1.0)


@pytest.mark.parametrize("name", ["seed", "seed_leaky", "seed_reproduction"])
def test_predict_refuses_the_seed_networks(name, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["predict", "--model", name, "--input", str(tmp_path / "in.csv"), "--out", str(tmp_path / "out.csv")])
    assert exit_info.value.code == 2
    assert f"invalid choice: '{name}'" in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()


def test_the_run_config_is_derived_from_the_settings():
    """SeedSettings is the one declaration: the Dagster config has exactly its fields, types and defaults."""
    import dataclasses
    import typing

    from crime_pipeline.defs.seed_reproduction import SeedReproductionConfig

    hints = typing.get_type_hints(SeedSettings)
    settings = {f.name: (hints[f.name], f.default) for f in dataclasses.fields(SeedSettings)}
    config = {name: (f.annotation, f.default) for name, f in SeedReproductionConfig.model_fields.items()}
    assert config == settings
    assert SeedSettings(**SeedReproductionConfig(epochs=3).model_dump()) == SeedSettings(epochs=3)
    assert SeedReproductionConfig.__doc__ == SeedSettings.__doc__.split("\n\n")[0]


def test_the_stage_samples_the_primary_city_and_keeps_only_the_metrics(tmp_path):
    """reproduce_seed on a tiny lake (no Dagster): the default city's rows of a two-city table, the
    same sample and metrics as the method on those rows, and one file written."""
    from crime_pipeline.lib.cities.columns import CLASSES
    from crime_pipeline.lib.lake.layout import LakeLayout
    from crime_pipeline.lib.lake.parquet import write_parquet
    from crime_pipeline.lib.lake.reads import DeclaredReads
    from crime_pipeline.lib.reports.seed_reproduction import reproduce_seed

    rng = np.random.default_rng(3)
    n = 900
    label = rng.choice(CLASSES[:4], n)
    incidents = pd.DataFrame(
        {
            "label": label,
            "latitude": rng.uniform(42.83, 42.96, n),
            "longitude": rng.uniform(-78.91, -78.80, n),
            "incident_datetime": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 10**7, n), unit="s"),
            "incident_type_primary": pd.Series(label).str.upper(),
            "incident_description": "a report",
            "city": np.where(np.arange(n) % 3 == 0, "chicago", "buffalo"),
        }
    )
    layout = LakeLayout(tmp_path).ensure()
    write_parquet(layout.table("incidents"), incidents)
    settings = SeedSettings(max_rows=300, epochs=1)
    done = reproduce_seed(
        DeclaredReads(layout, "seed_reproduction", {"seed_reproduction", "incidents"}), settings, "cpu"
    )
    buffalo = incidents[incidents["city"] == "buffalo"].drop(columns="city")
    expected = reproduce(buffalo, settings, log=lambda line: None)
    assert done.doc["city"] == "buffalo" and done.doc["rows"] == expected["rows"]
    assert done.doc["rows"]["incidents"] == len(buffalo) and done.doc["sampled"]
    for variant in ("honest", "leaky"):
        assert done.doc["variants"][variant]["accuracy"] == expected["variants"][variant]["accuracy"]
    assert done.path == layout.report_file("seed_reproduction.json")
    assert json.loads(done.path.read_text())["sentence"] == done.doc["sentence"]
