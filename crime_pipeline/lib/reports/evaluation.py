"""The evaluation document: every model and baseline on the test split, and the Bayes limit."""

from __future__ import annotations

import numpy as np

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
    doc["mlp_tradeoff"] = mlp_tradeoff(doc["models"], classes)
    return doc


def mlp_tradeoff(models: dict, classes: list[str]) -> str | None:
    """One sentence, from the numbers, on what the class-weighted MLP buys and what it costs."""
    plain, weighted = models.get("mlp"), models.get("mlp_weighted")
    if not plain or not weighted:
        return None
    gain = {c: weighted["per_class_recall"][c] - plain["per_class_recall"][c] for c in classes}
    most = max(gain, key=gain.get)
    extra_wrong = (plain["accuracy"] - weighted["accuracy"]) * 100
    return (
        "Class-balanced decisions move balanced accuracy (mean recall over types) from "
        f"{plain['balanced_accuracy']:.3f} to {weighted['balanced_accuracy']:.3f} "
        f"and macro-F1 from {plain['macro_f1']:.3f} to "
        f"{weighted['macro_f1']:.3f} (largest recall change: {most}, {plain['per_class_recall'][most]:.3f} to "
        f"{weighted['per_class_recall'][most]:.3f}), while accuracy goes from {plain['accuracy']:.3f} to "
        f"{weighted['accuracy']:.3f} and log loss from {plain['log_loss']:.3f} to {weighted['log_loss']:.3f}: "
        f"mlp_weighted buys its recall on rare types with {abs(extra_wrong):.1f} "
        f"{'more' if extra_wrong >= 0 else 'fewer'} "
        f"wrong calls per 100 incidents and probabilities skewed towards rare types; the plain mlp makes the most "
        f"right calls with calibrated probabilities."
    )


def markdown_table(doc: dict) -> str:
    """Models, baselines and the Bayes limit side by side, for the UI and the report."""
    rows = [(f"model: {k}", m) for k, m in doc["models"].items()]
    rows += [(f"baseline: {k}", m) for k, m in doc["baselines"].items()]
    if doc["bayes"]:
        rows.append(("Bayes limit (true posterior)", doc["bayes"]))
    head = "| | " + " | ".join(HEADLINE) + " |\n|---|" + "---|" * len(HEADLINE) + "\n"
    body = "".join(
        f"| {name} | " + " | ".join("n/a" if m[k] is None else f"{m[k]:.4f}" for k in HEADLINE) + " |\n"
        for name, m in rows
    )
    return head + body


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
