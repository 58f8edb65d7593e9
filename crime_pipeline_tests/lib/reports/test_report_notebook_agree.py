"""The report and the notebook say the same thing about one lake: one rule for unknown times.

The lake is a small generated export, read and validated as the pipeline does. The report's figures
read only `incident_datetime, label, latitude, longitude` of `incidents` (no validation flags); the
notebook loads the whole table: the rule must give both the same rows and the same sentences.
"""

from __future__ import annotations

import pandas as pd
import pytest

from crime_pipeline.lib import synthetic
from crime_pipeline.lib.ingest.raw_csv import read_raw_csv
from crime_pipeline.lib.reports import captions, explore, plots, trends
from crime_pipeline.lib.validate.validate import validate_incidents

REPORT_COLUMNS = ["incident_datetime", "label", "latitude", "longitude"]  # what draw_report_figures reads


@pytest.fixture(scope="module")
def incidents() -> pd.DataFrame:
    generated = synthetic.generate_incidents(3_000, seed=5)
    read = read_raw_csv("gen.csv", generated.frame.to_csv(index=False).encode())
    valid = validate_incidents(read.rows, as_of=pd.Timestamp("2026-06-01")).valid
    assert valid["time_defaulted_noon"].sum() > 100 and valid["date_is_first_of_month"].sum() > 100
    return valid.reset_index(drop=True)


def test_time_band_statistic_agrees_and_leaves_default_noon_out(incidents):
    report_view = incidents[REPORT_COLUMNS]
    report = captions.hotspots_by_time_band(report_view)
    assert report == explore.hotspots_sentence(incidents)
    noon = int(incidents["time_defaulted_noon"].sum())
    assert f"{noon:,} of {len(incidents):,} incidents" in report and "12:00:00" in report
    panels = plots.time_band_panels(report_view)
    assert sum(len(p) for p in panels.values()) == len(incidents) - noon
    at_noon = pd.to_datetime(panels["Afternoon (12-17h)"]["incident_datetime"])
    assert not ((at_noon.dt.hour == 12) & (at_noon.dt.minute == 0) & (at_noon.dt.second == 0)).any()


def test_time_sentences_agree(incidents, tmp_path):
    report_view = incidents[REPORT_COLUMNS]
    section = trends.time_section(report_view, lambda name: tmp_path / name)
    assert (section.anchor, section.title) == ("time", "Time")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(trends.FIGURES)
    assert section.body_html.count("<figure><img") == 3 and "data:image/png;base64," in section.body_html
    for sentence in (
        explore.hour_weekday_sentence(incidents),
        explore.monthly_trend_sentence(incidents),
        explore.year_over_year_sentence(incidents),
    ):
        assert sentence and trends.esc(sentence) in section.body_html
    # The hour x weekday statistic leaves out unknown times and unknown days alike, and says so.
    unknown = int((incidents["time_defaulted_noon"] | incidents["date_is_first_of_month"]).sum())
    assert f"of {len(incidents) - unknown:,} incidents" in explore.hour_weekday_sentence(incidents)
    assert f"{unknown:,} of {len(incidents):,} incidents" in explore.hour_weekday_sentence(incidents)
