"""Features give models an explicit "time unknown" / "day unknown" signal, never a fake noon or 1st."""

from __future__ import annotations

import pandas as pd

from crime_pipeline.lib.features.splits import apply_minmax, fit_minmax
from crime_pipeline.lib.features.table import FEATURE_COLUMNS, MODEL_FEATURES, UNKNOWN, time_place_features
from crime_pipeline.lib.models.mlp.encoder import InputEncoder


def _features(*stamps: str) -> pd.DataFrame:
    n = len(stamps)
    return time_place_features(pd.Series([42.89] * n), pd.Series([-78.86] * n), pd.Series(pd.to_datetime(list(stamps))))


def test_default_noon_gives_unknown_hour_not_noon():
    f = _features("2020-03-17 12:00:00", "2020-03-17 12:00:01", "2020-03-17 14:30:00")
    assert f["time_unknown"].tolist() == [1, 0, 0]
    assert f.loc[0, "hour"] == UNKNOWN and f.loc[0, "hour_sin"] == 0 and f.loc[0, "hour_cos"] == 0
    assert f.loc[1, "hour"] == 12 and f.loc[1, "hour_cos"] == -1  # a real time just after noon stays noon
    assert f.loc[2, "hour"] == 14
    # The day is known: weekday and day of month stay (2020-03-17 was a Tuesday).
    assert f.loc[0, "weekday"] == 1 and f.loc[0, "day_of_month"] == 17 and f.loc[0, "day_unknown"] == 0


def test_first_of_month_gives_unknown_day_but_keeps_month_and_season():
    f = _features("2021-01-01 08:15:00", "2021-01-02 08:15:00")
    unknown, known = f.iloc[0], f.iloc[1]
    assert unknown["day_unknown"] == 1 and known["day_unknown"] == 0
    for column in ("weekday", "day_of_month"):
        assert unknown[column] == UNKNOWN
    for column in ("weekday_sin", "weekday_cos", "is_weekend", "is_holiday"):
        assert unknown[column] == 0  # New Year's Day is no holiday when the day is only the export's default
    assert known["weekday"] == 5 and known["is_weekend"] == 1 and known["day_of_month"] == 2
    # The month and the year are known either way; the time of day is known.
    assert unknown["month"] == 1 and unknown["month_cos"] == known["month_cos"] and unknown["hour"] == 8
    assert unknown["time_unknown"] == 0


def test_the_indicators_are_features_models_see():
    for column in ("time_unknown", "day_unknown"):
        assert column in FEATURE_COLUMNS and column in MODEL_FEATURES
    assert "time_defaulted_noon" not in FEATURE_COLUMNS and "is_first_of_month" not in FEATURE_COLUMNS


def test_the_mlp_one_hot_of_an_unknown_hour_or_weekday_is_empty_not_midnight_or_monday():
    f = _features("2020-03-01 12:00:00", "2020-03-17 00:30:00", "2020-03-16 12:00:00")[list(MODEL_FEATURES)]
    scaler = fit_minmax(f, MODEL_FEATURES)
    x = apply_minmax(f, scaler)
    encoder = InputEncoder(
        features=list(MODEL_FEATURES), scaler=scaler, one_hot_time=True, fourier=0, scales=[], vocab=[]
    )
    encoded = encoder.encode(x)
    hour = encoded[:, len(MODEL_FEATURES) : len(MODEL_FEATURES) + 24]
    weekday = encoded[:, len(MODEL_FEATURES) + 24 : len(MODEL_FEATURES) + 31]
    assert hour[0].sum() == 0 and hour[2].sum() == 0  # unknown time: no hour at all
    assert hour[1, 0] == 1  # a real half past midnight is hour 0
    assert weekday[0].sum() == 0 and weekday[1, 1] == 1 and weekday[2, 0] == 1  # 1 Mar unknown; 17th Tue; 16th Mon
