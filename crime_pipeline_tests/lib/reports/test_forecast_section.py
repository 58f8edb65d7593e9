"""The report's forecast section: its sentences follow the backtest's numbers, not a template's."""

from __future__ import annotations

from crime_pipeline.lib.reports.forecast_section import forecast_section, lead_sentences


def backtest(low: float, generated: bool) -> dict:
    summary = [
        {"method": m, "area_share": s, "pai": p, "pei": p, **bounds(p)}
        for m, p in (("kde", 9.0), ("long_run", 7.5), ("oracle", 12.0))
        if generated or m != "oracle"
        for s in (0.01, 0.02, 0.05)
    ]
    lead = {"method": "kde", "pai": 9.0, "pei": 0.42, "runner_up": "long_run", "runner_up_pai": 7.5}
    lead |= {"difference": 1.5, "difference_low": low, "difference_high": 2.9, "outside_interval": low > 0}
    if generated:
        lead |= {"oracle_pai": 12.0, "share_of_oracle": 0.75}
    return {"weeks_scored": ["2025-12-15", "2025-12-22"], "weeks_missing": [], "generated": generated,
            "summary": summary, "lead": lead, "latest_week": "2025-12-22"}  # fmt: skip


def bounds(value: float) -> dict:
    return {f"{m}_{side}": value + d for m in ("pai", "pei") for side, d in (("low", -1), ("high", 1))}


def test_a_lead_outside_its_interval_is_called_so_and_the_oracle_gap_is_given():
    text = " ".join(lead_sentences(backtest(low=0.4, generated=True)))
    assert "Over 2 test weeks, kde leads at 1% of the area with a mean PAI of 9.00" in text
    assert "+1.50" in text and "the interval excludes zero" in text
    assert "achieves 75% of the best possible" in text


def test_a_leader_above_the_oracle_on_few_weeks_is_called_luck_not_better_than_possible():
    doc = backtest(low=0.4, generated=True)
    doc["lead"] |= {"oracle_pai": 8.0, "share_of_oracle": 9.0 / 8.0}
    text = " ".join(lead_sentences(doc))
    assert "112% of it is luck of the weeks drawn" in text and "of the best possible" not in text


def test_a_lead_whose_interval_includes_zero_may_be_luck_and_real_data_has_no_oracle():
    text = " ".join(lead_sentences(backtest(low=-0.3, generated=False)))
    assert "may be luck of the weeks drawn" in text and "excludes zero" not in text
    assert "no oracle exists" in text


def test_the_section_holds_the_methods_table_oracle_last():
    section = forecast_section(backtest(low=0.4, generated=True))
    assert section.anchor == "hotspot-forecasts"
    body = section.body_html
    assert body.index("<td>kde</td>") < body.index("<td>long_run</td>") < body.index("<td>oracle</td>")
    assert "<td>9.00 [8.00, 10.00]</td>" in body
