"""One self-contained HTML report: data quality, leakage check, metrics against the Bayes limit, figures.

Images are inlined as base64, there is no script and no external link, and every value that comes
from the data (file names, case numbers, descriptions) is HTML-escaped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from crime_pipeline.lib.cities.profiles import get_profile
from crime_pipeline.lib.reports.model_section import fmt as _fmt
from crime_pipeline.lib.reports.model_section import headline_sentence, models_section
from crime_pipeline.lib.reports.model_section import table as _table
from crime_pipeline.lib.reports.responsible import responsible_use_section
from crime_pipeline.lib.reports.sections import Section, esc, figure_html
from crime_pipeline.lib.reports.seed_method import comparison_rows

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th:first-child,td:first-child{text-align:left} .note{background:#f6f8fa;padding:.8em 1em;border-left:4px solid #888}
.ok{color:#1a7f37;font-weight:600} .bad{color:#cf222e;font-weight:600} figure{margin:1.2em 0}
figcaption{color:#555;font-size:.9em;margin-top:.3em} img{max-width:100%;border:1px solid #eee}
.wide{overflow-x:auto} .wide td{text-align:left;font-size:.85em}
nav.toc{background:#f6f8fa;padding:.6em 1.2em;margin:1em 0} nav.toc ol{margin:.3em 0;padding-left:1.4em}
"""


def _quality_section(quality: dict, examples: pd.DataFrame) -> str:
    t = quality["totals"]
    status = (
        '<span class="ok">reconciles</span>' if quality["reconciles"] else '<span class="bad">DOES NOT reconcile</span>'
    )
    files = _table(
        ["file", "rows read", "valid", "quarantined", "superseded"],
        [[f["file"], f["rows_read"], f["valid"], f["quarantined"], f["superseded"]] for f in quality["files"]],
    )
    rules = _table(["rule", "rows"], [[k, v] for k, v in quality["quarantined_by_rule"].items()] or [["none", 0]])
    flags = _table(["flag on valid rows", "rows"], [[k, v] for k, v in quality["flags"].items()])
    pending = quality.get("pending_files") or []
    not_validated = (
        "<p class='bad'>Read into the lake but not validated yet, so left out of every number here "
        "(the next run retries them): "
        + ", ".join(esc(f"{p['file']} ({p['partition_key']})") for p in pending)
        + "</p>"
        if pending
        else ""
    )
    shown = examples.head(15)
    sample = (
        '<div class="wide">'
        + _table(list(shown.columns), shown.astype(object).where(shown.notna(), "").values.tolist())
        + "</div>"
        if len(shown)
        else "<p>No quarantined rows.</p>"
    )
    return (
        f"<p>{t['rows_read']:,} rows read = {t['valid']:,} valid + {t['quarantined']:,} "
        f"quarantined + {t['superseded']:,} superseded by a newer record of the same case: {status}.</p>"
        f"{not_validated}{files}<h3>Quarantined, by rule</h3><p>A row can fail several rules.</p>{rules}"
        f"<h3>Soft problems (rows kept)</h3>{flags}<h3>Quarantine examples</h3>{sample}"
    )


def _leakage_section(leakage: dict) -> str:
    status = '<span class="ok">passed</span>' if leakage.get("passed") else '<span class="bad">FAILED</span>'
    rows = [
        [c, _fmt(s["mi_ratio"]), _fmt(s["purity"]), "yes" if s["leaky"] else "no"]
        for c, s in leakage.get("scores", {}).items()
    ]
    return (
        f"<p>Features come from latitude, longitude and the incident datetime only. "
        f"The check that no feature predicts the type on its own {status} "
        f"(limits: information share {leakage.get('mi_ratio_limit')}, purity {leakage.get('purity_limit')}).</p>"
        + _table(["feature", "share of label entropy", "purity (out of sample)", "leaky"], rows)
    )


def seed_section(seed: dict, evaluation: dict | None) -> str:
    """The seed project's method run honest and with the label's disguises, beside our best model."""
    rows = [
        [r["name"], _fmt(r["accuracy"]), _fmt(r["macro_f1"]), r["split"], r["n_test"]]
        for r in comparison_rows(seed, evaluation)
    ]
    leaky = seed["variants"]["leaky"]
    used = seed["rows"]
    sample = (
        f"a stratified sample of {used['used']:,} of {used['incidents']:,} incidents"
        if seed["sampled"]
        else f"all {used['incidents']:,} incidents"
    )
    return (
        f"<p>The seed's own method ({esc(seed['method'])}), {seed['settings']['epochs']} epochs in batches of "
        f"{seed['settings']['batch_size']}, on {esc(sample)}; the same again with "
        f"{esc(' and '.join(leaky['categories']))} added as inputs (the {seed['settings']['max_categories']} commonest "
        "values of each one-hot encoded, rarer ones in one bucket): the label in other words. "
        "Neither network is saved or usable for prediction.</p>"
        + _table(["", "accuracy", "macro-F1", "split", "test rows"], rows)
        + f"<p class='note'>{esc(seed['sentence'])}</p>"
    )


def cities_section(evaluation: dict) -> str:
    """The cities side by side: each against its own majority class and, on generated data, its own Bayes limit."""
    rows = evaluation.get("comparison") or []
    if len(rows) < 2:
        return ""
    kinds = [k for k in evaluation["models"]]
    header = [
        "city",
        "classes",
        "test incidents",
        "majority accuracy",
        *[f"{k} accuracy" for k in kinds],
        "best gain over majority",
        "mlp log loss",
        "Bayes accuracy",
        "Bayes log loss",
    ]
    body = [
        [
            r["city"],
            r["classes"],
            r["n_test"],
            _fmt(r["majority_accuracy"]),
            *[_fmt(r.get(f"{k}_accuracy")) for k in kinds],
            _fmt(r["best_gain_over_majority"]),
            _fmt(r.get("mlp_log_loss")),
            _fmt(r["bayes_accuracy"]),
            _fmt(r["bayes_log_loss"]),
        ]
        for r in rows
    ]
    widest = max(rows, key=lambda r: r["best_gain_over_majority"])
    return (
        f"<p>Each city has its own classes, models and test period; every number "
        f"is measured on that city's own test rows. The best model gains most over always guessing the "
        f"commonest type in {esc(widest['city'])} ({widest['best_gain_over_majority']:+.3f} accuracy). "
        f"The sections below show {esc(evaluation.get('city', rows[0]['city']))}.</p>" + _table(header, body)
    )


ANCHOR = re.compile(r"[a-z0-9-]+")


def table_of_contents(sections: Sequence[Section]) -> str:
    """Links to every section, in order; built from the same list the body is, so it cannot drift."""
    items = "".join(f'<li><a href="#{esc(s.anchor)}">{esc(s.title)}</a></li>' for s in sections)
    return f'<nav class="toc"><b>Contents</b><ol>{items}</ol></nav>'


def assemble(title: str, intro_html: str, sections: Sequence[Section]) -> str:
    """The whole document: title, intro, contents, then every section under its own <h2 id=anchor>."""
    anchors = [s.anchor for s in sections]
    bad = [a for a in anchors if not ANCHOR.fullmatch(a)]
    if bad or len(set(anchors)) != len(anchors):
        raise ValueError(f"report sections need unique [a-z0-9-] anchors, got {anchors}")
    body = "".join(f'<section><h2 id="{s.anchor}">{esc(s.title)}</h2>{s.body_html}</section>' for s in sections)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>crime_pipeline report</title>"
        f"<style>{CSS}</style></head><body><h1>{esc(title)}</h1>{intro_html}{table_of_contents(sections)}"
        f"{body}</body></html>"
    )


def report_sections(
    quality: dict,
    leakage: dict,
    evaluation: dict,
    figures: list[tuple[Path, str]],
    quarantine_examples: pd.DataFrame,
    seed: dict | None = None,
    analysis: Sequence[Section] = (),
    date_range: tuple[str, str] | None = None,
) -> list[Section]:
    """The report's sections in reading order; `analysis` (districts, time, forecast) follows the models."""
    cities = cities_section(evaluation)
    sections = [
        *([Section("cities", "Cities compared", cities)] if cities else []),
        models_section(evaluation),
        *analysis,
        Section("figures", "Figures", "".join(figure_html(p, c) for p, c in figures)),
        responsible_use_section(quality, date_range),
        Section("data-quality", "Data quality", _quality_section(quality, quarantine_examples)),
        Section("leakage", "Leakage check", _leakage_section(leakage)),
    ]
    if seed:
        sections.append(
            Section("seed-reproduction", "The seed project's 97-99%, reproduced", seed_section(seed, evaluation))
        )
    return sections


def render_report(
    quality: dict,
    leakage: dict,
    evaluation: dict,
    figures: list[tuple[Path, str]],
    quarantine_examples: pd.DataFrame,
    generated_at: str,
    seed: dict | None = None,
    lake_root: str | Path | None = None,
    analysis: Sequence[Section] = (),
    date_range: tuple[str, str] | None = None,
) -> str:
    """The whole report as one HTML string; `seed` is the seed reproduction's result, when there is one;
    city names come from the profiles of the lake at `lake_root`."""
    cities = [r["city"] for r in evaluation.get("comparison") or []]
    title = "Buffalo" if cities in ([], ["buffalo"]) else ", ".join(get_profile(c, lake_root).name for c in cities)
    generated = (
        "<p class='bad'>Trained and tested on generated data: these numbers describe the built-in generator's "
        "city, not real incidents (see Responsible use).</p>"
        if evaluation.get("generated_data")
        else ""
    )
    intro = (
        f"<p>Generated {esc(generated_at)} by crime_pipeline.</p>"
        f"<p><b>{esc(headline_sentence(evaluation))}</b></p>{generated}"
    )
    sections = report_sections(quality, leakage, evaluation, figures, quarantine_examples, seed, analysis, date_range)
    return assemble(f"{title} crime incidents: what time and place can tell", intro, sections)
