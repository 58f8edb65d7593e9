"""The report's hotspot-forecast section: the backtest's table and sentences computed from it.

`forecast_section(backtest, map_png, curves_png)` takes `forecast/backtest.json` (written by
lib/forecast/weekly_scores.py) and the two figures beside it; every number in the text comes from
the backtest, so a sentence cannot claim a lead the data does not show.
"""

from __future__ import annotations

from pathlib import Path

from crime_pipeline.lib.reports.sections import Section, esc, figure_html

ANCHOR = "hotspot-forecasts"
SHARES = (0.01, 0.02, 0.05)
ORACLE = "oracle"


def lead_sentences(backtest: dict) -> list[str]:
    """Which method leads at 1% of the area, by how much, whether the lead is outside its interval,
    and how far the leader is from the oracle (generated data only)."""
    lead, weeks = backtest.get("lead") or {}, len(backtest.get("weeks_scored", []))
    if not lead:
        return ["No week of the test window has a published forecast yet, so no method can be scored."]
    out = [
        f"Over {weeks} test weeks, {lead['method']} leads at 1% of the area with a mean PAI of {lead['pai']:.2f} "
        f"(PEI {lead['pei']:.2f}: it caught {lead['pei']:.0%} of what the best 1% of cells could have caught)."
    ]
    if "runner_up" in lead:
        interval = f"paired bootstrap 95% interval {lead['difference_low']:+.2f} to {lead['difference_high']:+.2f}"
        verdict = (
            "the interval excludes zero, so the lead is not luck of the weeks drawn"
            if lead["outside_interval"]
            else "that interval includes zero, so the lead may be luck of the weeks drawn"
        )
        out.append(
            f"Its lead over {lead['runner_up']} (PAI {lead['runner_up_pai']:.2f}) is {lead['difference']:+.2f} "
            f"({interval}); {verdict}."
        )
    if lead.get("oracle_pai"):
        share = lead["share_of_oracle"]
        verdict = (
            f"the leader achieves {share:.0%} of the best possible"
            if share <= 1
            else f"the leader's {share:.0%} of it is luck of the weeks drawn: no method can beat the true intensity "
            "on average"
        )
        out.append(
            f"On this generated data the oracle, which knows the generator's true intensity, reaches a PAI of "
            f"{lead['oracle_pai']:.2f}: {verdict}."
        )
    elif not backtest.get("generated"):
        out.append("This is real data: no oracle exists, so the best possible PAI is unknown.")
    if backtest.get("weeks_missing"):
        out.append(f"{len(backtest['weeks_missing'])} test weeks have no published forecast yet and are not scored.")
    return out


def summary_table(backtest: dict) -> str:
    """Methods x PAI and PEI at 1/2/5% of the area, with their 95% bootstrap intervals."""
    rows: dict[str, dict[float, dict]] = {}
    for r in backtest.get("summary", []):
        rows.setdefault(r["method"], {})[r["area_share"]] = r
    head = "".join(f"<th>PAI {s:.0%}</th><th>PEI {s:.0%}</th>" for s in SHARES)
    body = []
    for method in sorted(rows, key=lambda m: (m == ORACLE, m)):
        cells = ""
        for share in SHARES:
            r = rows[method].get(share)
            for metric in ("pai", "pei"):
                cells += (
                    f"<td>{r[metric]:.2f} [{r[metric + '_low']:.2f}, {r[metric + '_high']:.2f}]</td>"
                    if r
                    else "<td></td>"
                )
        body.append(f"<tr><td>{esc(method)}</td>{cells}</tr>")
    return f"<table><thead><tr><th>method</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def forecast_section(backtest: dict, map_png: Path | None = None, curves_png: Path | None = None) -> Section:
    """The section: sentences, the methods table, the latest forecast's map and the PAI curves."""
    parts = [f"<p>{esc(sentence)}</p>" for sentence in lead_sentences(backtest)]
    parts.append(summary_table(backtest))
    latest = backtest.get("latest_week")
    if map_png is not None:
        parts.append(
            figure_html(
                map_png,
                f"The forecast for the week of {latest}: the leading method's top 1%, 2% and 5% of cells over "
                f"every incident location (left); Getis-Ord Gi* hot and cold spots of the months before (right).",
            )
        )
    if curves_png is not None:
        parts.append(figure_html(curves_png, "Mean PAI against the share of the area flagged, per method."))
    return Section(ANCHOR, "Where and when next: hotspot forecasts", "\n".join(parts))
