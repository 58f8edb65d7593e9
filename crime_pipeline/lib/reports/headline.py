"""The lines `crime-pipeline run` prints at the end: where the report is and the main numbers."""

from __future__ import annotations

from crime_pipeline.lib.lake.documents import read_json
from crime_pipeline.lib.lake.layout import LakeLayout
from crime_pipeline.lib.reports.model_section import headline_sentence


def scores(m: dict) -> str:
    return f"accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  log loss {m['log_loss']:.4f}"


def headline(layout: LakeLayout) -> str | None:
    """The report's path and each model's test metrics beside the baselines (and, on generated data,
    the Bayes limit), read from the published summary.json and evaluation.json; None before a report."""
    summary = read_json(layout.report_file("summary.json"), {})
    evaluation = read_json(layout.report_file("evaluation.json"), {})
    if not summary or not evaluation:
        return None
    lines = [
        f"report: {summary['report']}",
        f"incidents: {summary['rows_read']:,} rows read, {summary['valid']:,} valid",
        *([f"data: {summary['data']}"] if summary.get("data") else []),
        headline_sentence(evaluation),
    ]
    for kind, m in evaluation["models"].items():
        lines.append(f"  {kind:12s} {scores(m)}")
    if evaluation.get("mlp_tradeoff"):
        lines.append(f"  {evaluation['mlp_tradeoff']}")
    b = evaluation["baselines"]["majority"]
    lines.append(f"  {'majority':12s} accuracy {b['accuracy']:.4f}")
    if evaluation.get("bayes"):
        m = evaluation["bayes"]
        lines.append(f"  {'Bayes':12s} {scores(m)}  (the best any model can do on this data)")
    comparison = evaluation.get("comparison") or []
    if len(comparison) > 1:  # several cities: one line each, each against its own baselines
        lines.append(f"  (above: {evaluation.get('city')}) cities side by side:")
        for r in comparison:
            bayes = f", Bayes {r['bayes_accuracy']:.4f}" if r["bayes_accuracy"] is not None else ""
            lines.append(
                f"  {r['city']:12s} best {r['best_model']} {r['best_accuracy']:.4f}, majority "
                f"{r['majority_accuracy']:.4f}{bayes} ({r['n_test']:,} test incidents)"
            )
    return "\n".join(lines)
