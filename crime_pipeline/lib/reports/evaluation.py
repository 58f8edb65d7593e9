"""The evaluation document: every model and baseline on the test split, and the Bayes limit."""

from __future__ import annotations

import numpy as np

from crime_pipeline.lib.reports import uncertainty
from crime_pipeline.lib.reports.metrics import (
    baseline_probabilities,
    beats_bayes_by_more_than_noise,
    classification_metrics,
)

HEADLINE = ("accuracy", "balanced_accuracy", "macro_f1", "weighted_f1", "log_loss", "top3_accuracy", "ece")


def evaluate(
    y_test: np.ndarray,
    y_train: np.ndarray,
    model_proba: dict[str, np.ndarray],
    classes: list[str],
    split: str,
    bayes_proba: np.ndarray | None = None,
) -> dict:
    """Build evaluation.json: models, the majority and prior baselines, and (on generated data) Bayes."""
    n_classes = len(classes)
    doc = {
        "split": split,
        "n_test": int(len(y_test)),
        "classes": list(classes),
        "models": {k: classification_metrics(y_test, p, classes) for k, p in model_proba.items()},
        "baselines": {
            name: classification_metrics(y_test, p, classes, probabilistic=name != "majority")
            for name, p in baseline_probabilities(y_train, len(y_test), n_classes).items()
        },
        "bayes": None,
    }
    if bayes_proba is not None:
        bayes = classification_metrics(y_test, bayes_proba, classes)
        bayes["gap"] = {
            kind: {
                "accuracy": bayes["accuracy"] - m["accuracy"],
                "log_loss": m["log_loss"] - bayes["log_loss"],
                **{"test": beats_bayes_by_more_than_noise(y_test, model_proba[kind], bayes_proba)},
            }
            for kind, m in doc["models"].items()
        }
        doc["bayes"] = bayes
    baselines = baseline_probabilities(y_train, len(y_test), n_classes)
    add_intervals(doc, y_test, model_proba, baselines, bayes_proba, n_classes)
    doc["reliability"] = {k: uncertainty.reliability_bins(y_test, p) for k, p in model_proba.items()}
    doc["mlp_tradeoff"] = mlp_tradeoff(doc["models"], classes)
    return doc


def add_intervals(
    doc: dict,
    y: np.ndarray,
    model_proba: dict[str, np.ndarray],
    baselines: dict[str, np.ndarray],
    bayes_proba: np.ndarray | None,
    n_classes: int,
    resamples: int = uncertainty.RESAMPLES,
) -> None:
    """A bootstrap 95% interval (`ci95`: metric -> [low, high]) beside every headline metric of every
    model, baseline and the Bayes limit, and each model's paired gain over the majority class (accuracy)
    and the class prior (log loss), with whether its interval excludes zero."""
    named = {("models", k): p for k, p in model_proba.items()}
    named |= {("baselines", k): p for k, p in baselines.items()}
    if bayes_proba is not None:
        named[("bayes", "")] = bayes_proba
    points = {f"{a}/{b}": doc[a] if a == "bayes" else doc[a][b] for a, b in named}
    draws = uncertainty.bootstrap_metrics(
        y, {f"{a}/{b}": p for (a, b), p in named.items()}, n_classes, resamples=resamples, points=points
    )
    for (group, name), _ in named.items():
        metrics = doc[group] if group == "bayes" else doc[group][name]
        sample = draws[f"{group}/{name}"]
        metrics["ci95"] = {
            h: uncertainty.interval(sample[h]) if sample and metrics.get(h) is not None else None for h in HEADLINE
        }
    majority, prior = draws["baselines/majority"], draws["baselines/prior"]
    for kind, m in doc["models"].items():
        mine = draws[f"models/{kind}"]
        if not mine:
            continue
        m["gain"] = {
            "accuracy_over_majority": uncertainty.gain(
                mine["accuracy"] - majority["accuracy"], m["accuracy"] - doc["baselines"]["majority"]["accuracy"]
            ),
            "log_loss_over_prior": uncertainty.gain(
                prior["log_loss"] - mine["log_loss"], doc["baselines"]["prior"]["log_loss"] - m["log_loss"]
            ),
        }
    doc["bootstrap"] = {"resamples": resamples, "seed": uncertainty.SEED, "level": uncertainty.LEVEL}


def _change(before: float, after: float, what: str, higher_is_better: bool = True) -> str:
    better = after > before if higher_is_better else after < before
    word = "improves" if better else "worsens" if after != before else "stays"
    return f"{what} {word} from {before:.3f} to {after:.3f}"


def mlp_tradeoff(models: dict, classes: list[str]) -> str | None:
    """One sentence, from the numbers and in the direction they go, on what the class-weighted MLP
    buys and what it costs against the plain one."""
    plain, weighted = models.get("mlp"), models.get("mlp_weighted")
    if not plain or not weighted:
        return None
    gain = {c: weighted["per_class_recall"][c] - plain["per_class_recall"][c] for c in classes}
    most = max(gain, key=lambda c: abs(gain[c]))
    extra_wrong = (plain["accuracy"] - weighted["accuracy"]) * 100
    calls = (
        f"{abs(extra_wrong):.1f} {'more' if extra_wrong > 0 else 'fewer'} wrong calls per 100 incidents"
        if abs(extra_wrong) >= 0.05
        else "about as many wrong calls"
    )
    ece = {k: m.get("ece") for k, m in (("mlp", plain), ("mlp_weighted", weighted))}
    calibrated = (
        f"; the {min(ece, key=ece.get)} has the better-calibrated probabilities (ECE {ece['mlp']:.3f} plain, "
        f"{ece['mlp_weighted']:.3f} weighted)"
        if None not in ece.values()
        else ""
    )
    return (
        "Class-balanced decisions against the plain MLP: "
        + "; ".join(
            [
                _change(plain["balanced_accuracy"], weighted["balanced_accuracy"], "balanced accuracy"),
                _change(plain["macro_f1"], weighted["macro_f1"], "macro-F1"),
                f"largest recall change {most}, {plain['per_class_recall'][most]:.3f} to "
                f"{weighted['per_class_recall'][most]:.3f}",
                _change(plain["accuracy"], weighted["accuracy"], "accuracy"),
                _change(plain["log_loss"], weighted["log_loss"], "log loss", higher_is_better=False),
            ]
        )
        + f": mlp_weighted makes {calls}{calibrated}."
    )


def markdown_table(doc: dict) -> str:
    """Models, baselines and the Bayes limit side by side, for the UI and the report."""
    rows = [(f"model: {k}", m) for k, m in doc["models"].items()]
    rows += [(f"baseline: {k}", m) for k, m in doc["baselines"].items()]
    if doc["bayes"]:
        rows.append(("Bayes limit (true posterior)", doc["bayes"]))

    def cell(m: dict, k: str) -> str:
        if m[k] is None:
            return "n/a"
        ci = (m.get("ci95") or {}).get(k)
        return f"{m[k]:.4f}" + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "")

    head = "| | " + " | ".join(HEADLINE) + " |\n|---|" + "---|" * len(HEADLINE) + "\n"
    body = "".join(f"| {name} | " + " | ".join(cell(m, k) for k in HEADLINE) + " |\n" for name, m in rows)
    note = "\nIn brackets: 95% bootstrap intervals over the test incidents.\n" if doc.get("bootstrap") else ""
    return head + body + note


def comparison_rows(docs: dict[str, dict]) -> list[dict]:
    """One row per city: its test size, majority class, best model and each model against its own
    majority class and (on generated data) its own Bayes limit."""
    rows = []
    for city, doc in docs.items():
        best = max(doc["models"], key=lambda k: doc["models"][k]["accuracy"])
        majority = doc["baselines"]["majority"]
        train_share = doc["baselines"].get("prior")
        row = {
            "city": city,
            "classes": len(doc["classes"]),
            "n_test": doc["n_test"],
            "majority_accuracy": majority["accuracy"],
            "majority_macro_f1": majority["macro_f1"],
            "best_model": best,
            "best_accuracy": doc["models"][best]["accuracy"],
            "best_gain_over_majority": doc["models"][best]["accuracy"] - majority["accuracy"],
            "prior_log_loss": train_share["log_loss"] if train_share else None,
            "bayes_accuracy": doc["bayes"]["accuracy"] if doc.get("bayes") else None,
            "bayes_log_loss": doc["bayes"]["log_loss"] if doc.get("bayes") else None,
        }
        for kind, m in doc["models"].items():
            row[f"{kind}_accuracy"], row[f"{kind}_macro_f1"], row[f"{kind}_log_loss"] = (
                m["accuracy"],
                m["macro_f1"],
                m["log_loss"],
            )
        rows.append(row)
    return rows


COMPARISON_COLUMNS = (
    "city",
    "classes",
    "n_test",
    "majority_accuracy",
    "best_model",
    "best_accuracy",
    "best_gain_over_majority",
    "mlp_log_loss",
    "prior_log_loss",
    "bayes_accuracy",
    "bayes_log_loss",
)


def comparison_markdown(rows: list[dict]) -> str:
    """The per-city comparison as a Markdown table (the UI's metadata)."""
    head = "| " + " | ".join(COMPARISON_COLUMNS) + " |\n|" + "---|" * len(COMPARISON_COLUMNS) + "\n"

    def cell(v):
        return "n/a" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)

    return head + "".join("| " + " | ".join(cell(r.get(c)) for c in COMPARISON_COLUMNS) + " |\n" for r in rows)
