"""Districts: counts, type mix, trend and model error per district, on a small generated lake; a district
column the data lacks is said so, never invented."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from crime_pipeline.lib import synthetic
from crime_pipeline.lib.ingest.raw_csv import read_raw_csv
from crime_pipeline.lib.lake.parquet import write_parquet
from crime_pipeline.lib.reports import districts
from crime_pipeline.lib.reports.model_gate import evaluate_and_publish
from crime_pipeline.lib.validate.validate import validate_incidents
from crime_pipeline_tests.lib.reports.test_model_gate import reads, scoring, tiny_lake


@pytest.fixture(scope="module")
def lake_incidents() -> pd.DataFrame:
    """Validated incidents of a small generated export (what `incidents` holds)."""
    generated = synthetic.generate_incidents(3_000, seed=12)
    read = read_raw_csv("gen.csv", generated.frame.to_csv(index=False).encode())
    return validate_incidents(read.rows, as_of=pd.Timestamp("2026-06-01")).valid.reset_index(drop=True)


def test_district_tables_on_a_generated_lake(lake_incidents):
    tables = districts.district_tables(lake_incidents)
    assert list(tables) == ["police_district", "council_district", "neighborhood"]
    police = tables["police_district"]
    assert set(police.index) <= {f"District {c}" for c in "ABCDE"} | {"(not recorded)"}
    assert police["incidents"].sum() == len(lake_incidents) and police["incidents"].is_monotonic_decreasing
    shares = police[[c for c in police.columns if c.startswith("share ")]]
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    # The trend: the last 12 months of the data against the 12 before, counted by hand for one district.
    month = pd.to_datetime(lake_incidents["incident_datetime"]).dt.to_period("M")
    last = month.max()
    name = police.index[0]
    mine = lake_incidents["police_district"] == name
    assert police.loc[name, "last 12 months"] == (mine & (month > last - 12)).sum()
    assert police.loc[name, "12 months before"] == (mine & (month <= last - 12) & (month > last - 24)).sum()
    # Unknown values are counted as not recorded, not as a district.
    assert "UNKNOWN" not in tables["neighborhood"].index
    assert districts.missing_sentences(lake_incidents) == []


def test_a_missing_district_column_is_said_so_not_invented(lake_incidents):
    without = lake_incidents.drop(columns=["police_district"])
    assert "police_district" not in districts.district_tables(without)
    assert districts.missing_sentences(without) == [
        "This export has no Police District column: nothing is shown by police district."
    ]
    section = districts.district_section(without, {"models": {}})
    assert (
        "This export has no Police District column" in section.body_html
        and "By Police District" not in section.body_html
    )
    # Two files, one without the column: its incidents are counted as not recorded, and it is named.
    two = lake_incidents.assign(source_file=np.where(np.arange(len(lake_incidents)) < 1000, "a.csv", "b.csv"))
    two.loc[two["source_file"] == "b.csv", "council_district"] = None
    assert districts.missing_sentences(two) == [
        f"b.csv has no Council District column: its {len(two) - 1000:,} incidents are counted as (not recorded)."
    ]
    assert districts.district_table(two, "council_district").loc["(not recorded)", "incidents"] >= len(two) - 1000


def test_counts_sentence_names_rise_and_fall_in_their_direction():
    table = pd.DataFrame(
        {
            "incidents": [300, 200, 100],
            "share": [0.5, 0.33, 0.17],
            "12 months before": [100, 50, 40],
            "change": [-0.25, 0.4, 0.0],
        },
        index=["North", "South", "East"],
    )
    text = districts.counts_sentence(table, "Police District")
    assert "North has the most incidents (300, 50.0% of all)" in text
    assert "the largest rise is South (+40.0%)" in text and "the largest fall is North (-25.0%)" in text
    rising = table.assign(change=[0.1, 0.4, 0.2])
    text = districts.counts_sentence(rising, "Police District")
    assert "largest rise is South (+40.0%)" in text and "fall" not in text
    falling = table.assign(change=[-0.1, -0.4, -0.2])
    text = districts.counts_sentence(falling, "Police District")
    assert "largest fall is South (-40.0%)" in text and "rise" not in text


def test_model_metrics_per_district_and_test_rows_found_by_case_number():
    y = np.array([0] * 40 + [1] * 40 + [0] * 5)
    sure = np.eye(2)[y]
    wrong = np.eye(2)[1 - y] * 0.8 + 0.1
    place = pd.DataFrame({"police_district": ["A"] * 40 + ["B"] * 40 + ["C"] * 5})
    proba = np.where((place["police_district"] == "A").to_numpy()[:, None], sure, wrong)
    out = districts.district_model_metrics(place, y, {"m": proba})
    rows = {r["district"]: r for r in out["columns"]["police_district"]}
    assert rows["A"]["models"]["m"]["accuracy"] == 1.0 and rows["B"]["models"]["m"]["accuracy"] == 0.0
    assert rows["B"]["models"]["m"]["log_loss"] == pytest.approx(-np.log(0.1))
    assert rows["B"]["models"]["m"]["ece"] == pytest.approx(0.9)
    assert rows["C"] == {"district": "C", "n": 5, "models": {}}  # too few test incidents to tell
    assert out["missing"] == ["council_district", "neighborhood"]
    table = districts.district_metric_tables({"districts": out})["police_district"]
    assert table.loc["A", "m accuracy"] == 1.0 and np.isnan(table.loc["C", "m accuracy"])
    text = districts.metrics_sentence(table, "Police District", "m")
    assert "most accurate in A (100.0%), least in B (0.0%)" in text
    # Test rows find their districts by case number and city; an unknown case is not recorded.
    incidents = pd.DataFrame(
        {"case_number": ["1", "2", "1"], "city": ["x", "x", "y"], "police_district": ["A", "UNKNOWN", "B"]}
    )
    test_rows = pd.DataFrame({"case_number": ["1", "1", "2", "3"], "city": ["y", "x", "x", "x"]})
    found = districts.test_row_districts(test_rows, incidents)
    assert found["police_district"].tolist() == ["B", "A", "(not recorded)", "(not recorded)"]


def test_the_evaluation_stores_each_models_metrics_per_district(tmp_path, monkeypatch):
    """The gate looks each test row up in `incidents` and writes evaluation["districts"]."""
    generated = synthetic.generate_incidents(4000, seed=5)
    clean = generated.frame[generated.dirt == "clean"]
    when = pd.to_datetime(clean["Incident Datetime"], format=synthetic.DATETIME_FORMAT)
    rows = pd.DataFrame(
        {
            "case_number": clean["Case Number"].to_numpy(),
            "latitude": clean["Latitude"].astype(float).to_numpy(),
            "longitude": clean["Longitude"].astype(float).to_numpy(),
            "incident_datetime": when.to_numpy(),
            "label_id": pd.Series(generated.true_label[generated.dirt == "clean"])
            .map({c: i for i, c in enumerate(synthetic.CLASSES)})
            .to_numpy(dtype=np.int64),
            "police_district": clean["Police District"].to_numpy(),
        }
    )
    rows = rows[(rows["incident_datetime"].dt.year >= 2009) & (rows["incident_datetime"].dt.year < 2026)]
    rows = rows.drop_duplicates("case_number").reset_index(drop=True)
    rows["split"] = np.where(np.arange(len(rows)) < len(rows) // 2, "train", "test")
    layout = tiny_lake(tmp_path, rows.drop(columns="police_district"), synthetic.GENERATOR_VERSION)
    write_parquet(layout.table("incidents"), rows[["case_number", "police_district"]])
    scoring(monkeypatch, rows)
    result = evaluate_and_publish(reads(layout))
    stored = json.loads(result.path.read_text())["districts"]
    assert stored["missing"] == ["council_district", "neighborhood"]
    test = rows[rows["split"] == "test"]
    by_name = {r["district"]: r for r in stored["columns"]["police_district"]}
    assert {k: v["n"] for k, v in by_name.items()} == test["police_district"].value_counts().to_dict()
    assert set(next(iter(by_name.values()))["models"]) == {"baseline", "gbdt", "mlp", "mlp_weighted", "prior"}
    # The prior baseline's accuracy in a district is the share of the training-majority type there.
    majority = rows.loc[rows["split"] == "train", "label_id"].value_counts().idxmax()
    name, row = next(iter(by_name.items()))
    mine = test[test["police_district"] == name]
    assert row["models"]["prior"]["accuracy"] == pytest.approx((mine["label_id"] == majority).mean())
