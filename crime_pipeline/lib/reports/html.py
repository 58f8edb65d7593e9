"""One self-contained HTML report: data quality, leakage check, metrics against the Bayes limit, figures.

Images are inlined as base64, there is no script and no external link, and every value that comes
from the data (file names, case numbers, descriptions) is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from crime_pipeline.lib.cities.profiles import get_profile
from crime_pipeline.lib.lake.storage import read_bytes
from crime_pipeline.lib.reports.captions import real_data_note
from crime_pipeline.lib.reports.evaluation import HEADLINE
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
"""


def esc(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


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
        f"<h2>Data quality</h2><p>{t['rows_read']:,} rows read = {t['valid']:,} valid + {t['quarantined']:,} "
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
        f"<h2>Leakage check</h2><p>Features come from latitude, longitude and the incident datetime only. "
        f"The check that no feature predicts the type on its own {status} "
        f"(limits: information share {leakage.get('mi_ratio_limit')}, purity {leakage.get('purity_limit')}).</p>"
        + _table(["feature", "share of label entropy", "purity (out of sample)", "leaky"], rows)
    )


def _metrics_section(evaluation: dict) -> str:
    rows = [[f"model: {k}", *[_fmt(m[h]) for h in HEADLINE]] for k, m in evaluation["models"].items()]
    rows += [[f"baseline: {k}", *[_fmt(m[h]) for h in HEADLINE]] for k, m in evaluation["baselines"].items()]
    bayes = evaluation.get("bayes")
    if bayes:
        rows.append(["Bayes limit (true posterior)", *[_fmt(bayes[h]) for h in HEADLINE]])
        note = (
            "<p class='note'>The data came from the built-in generator, whose true class probabilities are "
            "known: no model can beat the Bayes limit except by chance or by a leak. The gap column says how much "
            "each model leaves on the table.</p>"
            + _table(
                ["model", "accuracy gap to Bayes", "log-loss gap to Bayes"],
                [[k, _fmt(g["accuracy"]), _fmt(g["log_loss"])] for k, g in bayes["gap"].items()],
            )
        )
    else:
        note = f"<p class='note'>{esc(real_data_note(evaluation))}</p>"
    recall = _table(
        ["type", *evaluation["models"]],
        [[c, *[_fmt(m["per_class_recall"][c]) for m in evaluation["models"].values()]] for c in evaluation["classes"]],
    )
    tradeoff = evaluation.get("mlp_tradeoff")
    tradeoff_html = f"<p class='note'><b>Plain or class-weighted MLP?</b> {esc(tradeoff)}</p>" if tradeoff else ""
    return (
        "<h2>Models on the test split</h2>"
        f"<p>Split: {esc(evaluation['split'])}, {evaluation['n_test']:,} test incidents.</p>"
        + _table(["", *HEADLINE], rows)
        + note
        + "<h3>Per-class recall</h3>"
        + recall
        + tradeoff_html
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
        "<h2>The seed project's 97-99%, reproduced</h2>"
        f"<p>The seed's own method ({esc(seed['method'])}), {seed['settings']['epochs']} epochs in batches of "
        f"{seed['settings']['batch_size']}, on {esc(sample)}; the same again with "
        f"{esc(' and '.join(leaky['categories']))} added as inputs (the {seed['settings']['max_categories']} commonest "
        "values of each one-hot encoded, rarer ones in one bucket): the label in other words. "
        "Neither network is saved or usable for prediction.</p>"
        + _table(["", "accuracy", "macro-F1", "split", "test rows"], rows)
        + f"<p class='note'>{esc(seed['sentence'])}</p>"
    )


def _figure(path: Path, caption: str) -> str:
    data = base64.b64encode(read_bytes(path)).decode("ascii")
    return (
        f'<figure><img alt="{esc(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
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
        f"<h2>Cities compared</h2><p>Each city has its own classes, models and test period; every number "
        f"is measured on that city's own test rows. The best model gains most over always guessing the "
        f"commonest type in {esc(widest['city'])} ({widest['best_gain_over_majority']:+.3f} accuracy). "
        f"The sections below show {esc(evaluation.get('city', rows[0]['city']))}.</p>" + _table(header, body)
    )


def render_report(
    quality: dict,
    leakage: dict,
    evaluation: dict,
    figures: list[tuple[Path, str]],
    quarantine_examples: pd.DataFrame,
    generated_at: str,
    seed: dict | None = None,
    lake_root: str | Path | None = None,
) -> str:
    """The whole report as one HTML string; `seed` is the seed reproduction's result, when there is one;
    city names come from the profiles of the lake at `lake_root`."""
    best = max(evaluation["models"].items(), key=lambda kv: kv[1]["accuracy"]) if evaluation["models"] else None
    headline = ""
    if best:
        majority = evaluation["baselines"]["majority"]["accuracy"]
        headline = (
            f"<p><b>Best model: {esc(best[0])}</b>, accuracy {best[1]['accuracy']:.1%} against "
            f"{majority:.1%} for always guessing the commonest type"
            + (
                f" and {evaluation['bayes']['accuracy']:.1%} for the true posterior (the Bayes limit)"
                if evaluation.get("bayes")
                else ""
            )
            + ".</p>"
        )
    cities = [r["city"] for r in evaluation.get("comparison") or []]
    title = "Buffalo" if cities in ([], ["buffalo"]) else ", ".join(get_profile(c, lake_root).name for c in cities)
    body = "".join(
        [
            f"<h1>{esc(title)} crime incidents: what time and place can tell</h1>",
            f"<p>Generated {esc(generated_at)} by crime_pipeline.</p>",
            headline,
            cities_section(evaluation),
            _quality_section(quality, quarantine_examples),
            _leakage_section(leakage),
            _metrics_section(evaluation),
            seed_section(seed, evaluation) if seed else "",
            "<h2>Figures</h2>",
            *[_figure(p, c) for p, c in figures],
        ]
    )
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>crime_pipeline report</title>"
        f"<style>{CSS}</style></head><body>{body}</body></html>"
    )
