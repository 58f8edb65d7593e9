"""Time in the report: sentences computed from the data, in both directions, through the unknown-time rule."""

from __future__ import annotations

import pandas as pd

from crime_pipeline.lib.reports import trends


def _rows(spec: dict[str, tuple[int, int]]) -> pd.DataFrame:
    """Per type, (incidents in 2023, incidents in 2024), at 09:30 on the 10th; one in Jan 2023 and Dec 2024
    so the data span exactly 24 months."""
    stamps, labels = [], []
    for label, (before, last) in spec.items():
        stamps += ["2023-06-10 09:30"] * before + ["2024-06-10 09:30"] * last
        labels += [label] * (before + last)
    stamps += ["2023-01-10 09:30", "2024-12-10 09:30"]
    labels += ["Other", "Other"]
    return pd.DataFrame({"label": labels, "incident_datetime": pd.to_datetime(stamps)})


def test_year_over_year_names_the_rise_and_the_fall_in_their_direction():
    text = trends.year_over_year_sentence(_rows({"Theft": (100, 150), "Robbery": (40, 30)}))
    assert text.startswith("Year over year (2024-01 to 2024-12 against 2023-01 to 2023-12): ")
    assert "28.4% more incidents (181 against 141)" in text
    assert "the largest rise is Theft (+50.0%)" in text and "the largest fall is Robbery (-25.0%)" in text
    falling = trends.year_over_year_sentence(_rows({"Theft": (100, 50), "Robbery": (40, 30)}))
    assert "42.6% fewer incidents (81 against 141)" in falling
    assert "rise" not in falling and "the largest fall is Theft (-50.0%)" in falling
    rising = trends.year_over_year_sentence(_rows({"Theft": (100, 120), "Robbery": (40, 60)}))
    assert "fall" not in rising and "the largest rise is Robbery (+50.0%)" in rising
    # A type with fewer than MIN_YOY_ROWS the year before is not named: its change is noise.
    assert "Homicide" not in trends.year_over_year_sentence(_rows({"Theft": (100, 101), "Homicide": (2, 9)}))
    short = _rows({"Theft": (10, 10)})
    short = short[short["incident_datetime"] >= "2023-06-01"]
    assert trends.year_over_year_sentence(short) == (
        "Year over year: 19 months of data, fewer than the 24 a year-over-year change needs."
    )


def test_monthly_sentence_says_more_or_fewer():
    assert "49.5% more incidents than the first 12 (151 against 101)" in trends.monthly_sentence(
        _rows({"Theft": (100, 150)})
    )
    assert "24.8% fewer incidents than the first 12 (76 against 101)" in trends.monthly_sentence(
        _rows({"Theft": (100, 75)})
    )


def test_hour_weekday_leaves_out_unknown_times_and_days_and_says_how_many():
    rows = pd.DataFrame(
        {
            "label": ["Theft"] * 6,
            "incident_datetime": pd.to_datetime(
                [
                    "2024-03-12 12:00:00",  # unknown time: not in the afternoon
                    "2024-03-12 12:00:00",
                    "2024-03-01 08:15:00",  # unknown day: its weekday is the export's
                    "2024-03-12 08:15:00",  # Tuesday
                    "2024-03-13 08:15:00",  # Wednesday
                    "2024-03-13 08:40:00",
                ]
            ),
        }
    )
    counts = trends.hour_weekday_counts(rows)
    assert counts.to_numpy().sum() == 3 and counts.loc[2, 8] == 2 and counts[12].sum() == 0
    text = trends.hour_weekday_sentence(rows)
    assert "the busiest hour of the week is Wednesday 08:00, 66.67% of 3 incidents" in text
    assert text.endswith(
        "3 of 6 incidents (50.0%) are left out: their time of day or day is unknown "
        "(the export's default time, 12:00:00, or day, the 1st)."
    )
