"""The report's headline sentence and its "Models on the test split" section, with 95% intervals."""

from __future__ import annotations

from crime_pipeline.lib.reports.captions import real_data_note
from crime_pipeline.lib.reports.evaluation import HEADLINE
from crime_pipeline.lib.reports.sections import Section, esc

VERDICT_WORDS = {
    "above zero": "distinguishable from zero",
    "below zero": "below zero: worse than always guessing the commonest type",
    "includes zero": "not distinguishable from zero (its interval includes 0)",
    "unknown": "of unknown uncertainty (no interval was recorded)",
}


def fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def with_interval(metrics: dict, name: str) -> str:
    low_high = (metrics.get("ci95") or {}).get(name)
    value = fmt(metrics.get(name))
    return f"{value} [{low_high[0]:.4f}, {low_high[1]:.4f}]" if low_high else value


def table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def headline_sentence(evaluation: dict) -> str:
    """The best model against the commonest type, with both intervals, and whether the gain is real."""
    if not evaluation["models"]:
        return "No model was evaluated."
    kind, m = max(evaluation["models"].items(), key=lambda kv: kv[1]["accuracy"])
    majority = evaluation["baselines"]["majority"]["accuracy"]
    ci = (m.get("ci95") or {}).get("accuracy")
    accuracy = f"{m['accuracy']:.1%}" + (f" (95% interval {ci[0]:.1%} to {ci[1]:.1%})" if ci else "")
    gain = (m.get("gain") or {}).get("accuracy_over_majority")
    gain_words = (
        f"a gain of {100 * gain['value']:+.1f} points"
        + (f" (95% interval {100 * gain['ci95'][0]:+.1f} to {100 * gain['ci95'][1]:+.1f})" if gain["ci95"] else "")
        + f", {VERDICT_WORDS[gain['verdict']]}"
        if gain
        else f"a gain of {100 * (m['accuracy'] - majority):+.1f} points"
    )
    bayes = evaluation.get("bayes")
    limit = f"; the true posterior (the Bayes limit) reaches {bayes['accuracy']:.1%}" if bayes else ""
    return (
        f"Best model: {kind}, accuracy {accuracy} on {evaluation['n_test']:,} test incidents, against "
        f"{majority:.1%} for always guessing the commonest type: {gain_words}{limit}."
    )


def _gains_table(evaluation: dict) -> str:
    rows = []
    for kind, m in evaluation["models"].items():
        g = m.get("gain")
        if not g:
            continue
        acc, loss = g["accuracy_over_majority"], g["log_loss_over_prior"]

        def span(x):
            return f"[{x['ci95'][0]:+.4f}, {x['ci95'][1]:+.4f}]" if x["ci95"] else "n/a"

        rows.append(
            [
                kind,
                f"{acc['value']:+.4f}",
                span(acc),
                acc["verdict"],
                f"{loss['value']:+.4f}",
                span(loss),
                loss["verdict"],
            ]
        )
    if not rows:
        return ""
    return "<h3>Gain over the baselines</h3>" + table(
        [
            "model",
            "accuracy gain over majority",
            "95% interval",
            "vs zero",
            "log-loss gain over prior",
            "95% interval",
            "vs zero",
        ],
        rows,
    )


def models_section(evaluation: dict) -> Section:
    rows = [[f"model: {k}", *[with_interval(m, h) for h in HEADLINE]] for k, m in evaluation["models"].items()]
    rows += [[f"baseline: {k}", *[with_interval(m, h) for h in HEADLINE]] for k, m in evaluation["baselines"].items()]
    bayes = evaluation.get("bayes")
    if bayes:
        rows.append(["Bayes limit (true posterior)", *[with_interval(bayes, h) for h in HEADLINE]])
        note = (
            "<p class='note'>The data came from the built-in generator, whose true class probabilities are "
            "known: no model can beat the Bayes limit except by chance or by a leak. The gap columns say how much "
            "each model leaves on the table.</p>"
            + table(
                ["model", "accuracy gap to Bayes", "log-loss gap to Bayes"],
                [[k, fmt(g["accuracy"]), fmt(g["log_loss"])] for k, g in bayes["gap"].items()],
            )
        )
    else:
        note = f"<p class='note'>{esc(real_data_note(evaluation))}</p>"
    boot = evaluation.get("bootstrap")
    intervals = (
        f"<p>In brackets: 95% bootstrap intervals ({boot['resamples']} resamples of the test incidents, seed "
        f"{boot['seed']}; every model scored on the same resamples, so gains are paired).</p>"
        if boot
        else ""
    )
    recall = table(
        ["type", *evaluation["models"]],
        [[c, *[fmt(m["per_class_recall"][c]) for m in evaluation["models"].values()]] for c in evaluation["classes"]],
    )
    tradeoff = evaluation.get("mlp_tradeoff")
    tradeoff_html = f"<p class='note'><b>Plain or class-weighted MLP?</b> {esc(tradeoff)}</p>" if tradeoff else ""
    body = (
        f"<p>Split: {esc(evaluation['split'])}, {evaluation['n_test']:,} test incidents.</p>"
        + intervals
        + '<div class="wide">'
        + table(["", *HEADLINE], rows)
        + "</div>"
        + _gains_table(evaluation)
        + note
        + "<h3>Per-class recall</h3>"
        + recall
        + tradeoff_html
    )
    return Section("models", "Models on the test split", body)
