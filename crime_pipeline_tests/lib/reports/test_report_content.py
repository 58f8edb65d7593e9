"""What the report says: captions that follow the data's direction, every type drawn, provenance,
a table of contents from its sections, and GeoJSON a GIS tool opens."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from crime_pipeline.lib.cities.profiles import default_profile
from crime_pipeline.lib.reports import captions, plots
from crime_pipeline.lib.reports.evaluation import mlp_tradeoff
from crime_pipeline.lib.reports.geojson import hotspot_cells
from crime_pipeline.lib.reports.html import assemble
from crime_pipeline.lib.reports.responsible import provenance_sentence, responsible_use_section, training_data
from crime_pipeline.lib.reports.sections import Section

CLASSES = ["Theft", "Assault", "Breaking & Entering", "Homicide"]


def _labels(shares: list[float], n: int = 1000) -> np.ndarray:
    return np.repeat(np.arange(len(shares)), np.round(np.array(shares) * n).astype(int))


def test_the_confusion_caption_follows_the_direction_of_the_predictions():
    y = _labels([0.443, 0.3, 0.2, 0.057])
    # The case: Theft is 44.3% of the truth but 19.8% of the predictions, so it is under-predicted.
    under = _labels([0.198, 0.5, 0.25, 0.052])
    caption = captions.confusion("mlp_weighted", y, under, CLASSES)
    assert "19.8% of all predictions are Assault" not in caption  # the top predicted type is Assault here
    assert "50.0% of all predictions are Assault, which is 30.0% of the true types, so it over-predicts Assault" in (
        caption
    )
    assert "drifts toward Assault" in caption
    theft_first = _labels([0.40, 0.15, 0.15, 0.30])  # Theft most predicted yet below its true share
    caption = captions.confusion("mlp_weighted", y, theft_first, CLASSES)
    assert "40.0% of all predictions are Theft, which is 44.3% of the true types, so it under-predicts Theft" in caption
    assert "drifts toward Homicide" in caption and "drifts toward Theft" not in caption
    over = _labels([0.9, 0.05, 0.05, 0.0])
    caption = captions.confusion("mlp", y, over, CLASSES)
    assert "so it over-predicts Theft" in caption and "drifts toward Theft" in caption
    assert "about as often as it occurs" in captions.confusion("exact", y, y, CLASSES)
    assert "no type draws mass off the diagonal" in captions.confusion("exact", y, y, CLASSES)


def test_the_training_curve_caption_says_rose_or_still_falling_from_the_losses():
    def history(losses):
        return [{"epoch": i + 1, "val_loss": v} for i, v in enumerate(losses)]

    assert "then rose to 1.3000 (overfitting" in captions.training_curves(history([1.2, 1.1, 1.3]))
    assert "still falling when training stopped" in captions.training_curves(history([1.3, 1.2, 1.1]))


def _mlp(balanced, accuracy, log_loss, ece, recall):
    return {
        "balanced_accuracy": balanced,
        "macro_f1": balanced,
        "accuracy": accuracy,
        "log_loss": log_loss,
        "ece": ece,
        "per_class_recall": {"a": recall, "b": 0.5},
    }


def test_the_mlp_tradeoff_sentence_goes_the_way_the_numbers_go():
    helps = mlp_tradeoff(
        {"mlp": _mlp(0.3, 0.55, 1.1, 0.01, 0.1), "mlp_weighted": _mlp(0.4, 0.50, 1.3, 0.08, 0.4)}, "ab"
    )
    assert "balanced accuracy improves from 0.300 to 0.400" in helps and "accuracy worsens from 0.550 to 0.500" in helps
    assert "5.0 more wrong calls" in helps and "the mlp has the better-calibrated" in helps
    hurts = mlp_tradeoff(
        {"mlp": _mlp(0.4, 0.50, 1.3, 0.08, 0.4), "mlp_weighted": _mlp(0.3, 0.55, 1.1, 0.01, 0.1)}, "ab"
    )
    assert "balanced accuracy worsens from 0.400 to 0.300" in hurts and "log loss improves from 1.300 to 1.100" in hurts
    assert "5.0 fewer wrong calls" in hurts and "the mlp_weighted has the better-calibrated" in hurts


@pytest.fixture
def incidents() -> pd.DataFrame:
    """Nine types, three of them rare (a handful of incidents), one with none at all."""
    box = default_profile().box
    rng = np.random.default_rng(5)
    counts = {"Theft": 900, "Assault": 400, "Breaking & Entering": 300, "Theft of Vehicle": 150, "Robbery": 120}
    counts |= {"Sexual Assault": 8, "Other Sexual Offense": 6, "Homicide": 3, "Sexual Offense": 0}
    labels = np.repeat(list(counts), list(counts.values()))
    return pd.DataFrame(
        {
            "label": labels,
            "latitude": rng.uniform(box.lat_min, box.lat_min + 0.4 * (box.lat_max - box.lat_min), len(labels)),
            "longitude": rng.uniform(box.lon_min, box.lon_max, len(labels)),
            "incident_datetime": pd.Timestamp("2024-05-01 08:30"),
        }
    )


def test_every_type_gets_a_panel_and_empty_cells_are_grey(incidents, tmp_path):
    classes = list(dict.fromkeys(incidents["label"])) + ["Sexual Offense"]
    panels = plots.type_panels(incidents, classes)
    assert list(panels) == classes  # commonest first, the rarest and the empty one included
    path = plots.hotspots_by_type(incidents, classes, tmp_path / "types.png", profile=default_profile())
    rgb = imread(path)[..., :3]
    grey = np.array([int(plots.NO_INCIDENTS[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    assert (np.abs(rgb - grey).max(axis=-1) < 0.02).mean() > 0.1  # the north of the city had no incident
    caption = captions.hotspots_by_type(incidents, classes)
    assert "All 9 types are drawn" in caption and "Sexual Offense had none" in caption


QUALITY = {
    "files": [
        {"partition_key": "k1", "file": "gen.csv", "rows_read": 100, "quarantined": 3},
        {"partition_key": "k2", "file": "export_2024.csv", "rows_read": 50, "quarantined": 1},
    ],
    "totals": {"rows_read": 150, "quarantined": 4},
    "generator_versions": {"k1": "abc123", "k2": None},
    "file_cities": {"k1": "buffalo", "k2": "buffalo"},
}


def test_the_provenance_sentence_tells_generated_from_real_files():
    dates = ("2019-01-01", "2024-12-31")
    generated = {**QUALITY, "files": QUALITY["files"][:1], "totals": {"rows_read": 100, "quarantined": 3}}
    real = {**QUALITY, "files": QUALITY["files"][1:], "totals": {"rows_read": 50, "quarantined": 1}}
    assert "all generated by crime_pipeline's built-in synthetic generator" in provenance_sentence(generated, dates)
    assert "all real exports" in provenance_sentence(real, dates)
    mixed = provenance_sentence(QUALITY, dates)
    assert "1 generated by the built-in synthetic generator (gen.csv) and 1 real" in mixed
    assert "incident dates 2019-01-01 to 2024-12-31" in mixed and "4 quarantined" in mixed
    assert [training_data(q, "buffalo") for q in (generated, real, QUALITY)] == ["generated", "real", "mixed"]
    body = responsible_use_section(generated, dates).body_html
    assert "trained on generated data" in body and "trained on generated data" not in (
        responsible_use_section(real, dates).body_html
    )
    for needed in ("Lum", "To predict and serve?", "Significance 13(5)", "Ensign", "PMLR 81", "individuals"):
        assert needed in body, needed


def test_the_table_of_contents_links_every_section_in_order():
    sections = [Section("models", "Models", "<p>m</p>"), Section("time", "Time & trends", "<p>t</p>")]
    html = assemble("Title", "<p>intro</p>", sections)
    assert html.index('href="#models"') < html.index('href="#time"') < html.index('<h2 id="models">')
    assert html.index('<h2 id="models">') < html.index('<h2 id="time">Time &amp; trends</h2>')
    with pytest.raises(ValueError, match="unique"):
        assemble("T", "", [sections[0], sections[0]])


def test_hotspot_cells_are_geojson_polygons_holding_every_incident(incidents):
    fc = json.loads(json.dumps(hotspot_cells(incidents, sorted(set(incidents["label"])), default_profile())))
    assert fc["type"] == "FeatureCollection"
    assert sum(f["properties"]["incidents"] for f in fc["features"]) == len(incidents)
    box = default_profile().box
    for feature in fc["features"]:
        assert feature["geometry"]["type"] == "Polygon"
        [ring] = feature["geometry"]["coordinates"]
        assert len(ring) == 7 and ring[0] == ring[-1]  # a closed hexagon
        lon, lat = np.array(ring).T  # RFC 7946: [longitude, latitude]
        assert box.lon_min - 0.01 <= lon.min() and lon.max() <= box.lon_max + 0.01
        assert box.lat_min - 0.01 <= lat.min() and lat.max() <= box.lat_max + 0.01
        signed_area = np.sum(lon[:-1] * lat[1:] - lon[1:] * lat[:-1])
        assert signed_area > 0  # exterior ring counter-clockwise
        props = feature["properties"]
        assert props["incidents"] == sum(v for k, v in props.items() if k.startswith("n_"))
    ranks = [f["properties"]["rank"] for f in fc["features"]]
    assert ranks == sorted(ranks)


def test_the_forecast_section_appears_only_once_the_backtest_exists(tmp_path):
    import logging

    from crime_pipeline.lib.lake.atomic import write_json
    from crime_pipeline.lib.lake.layout import LakeLayout
    from crime_pipeline.lib.lake.reads import DeclaredReads
    from crime_pipeline.lib.reports.analysis import _forecast

    layout = LakeLayout(tmp_path / "lake").ensure()
    reads = DeclaredReads(layout, "crime_report", {"crime_report", "forecast_backtest"})
    log = logging.getLogger("test")
    assert _forecast(reads, log) == []  # `crime-pipeline forecast` never ran
    write_json(layout.path("forecast_backtest"), {"lead": {}, "summary": [], "weeks_scored": []})
    [section] = _forecast(reads, log)
    assert section.anchor == "hotspot-forecasts" and "No week of the test window" in section.body_html
    assert "forecast/backtest.json" in reads.reads
    # A report asset that does not declare the forecast as an input never reads it.
    assert _forecast(DeclaredReads(layout, "crime_report", {"crime_report"}), log) == []
