"""The gate for models: audit the candidates, evaluate them per city, publish only when they pass.

`evaluate_and_publish` audits the candidates the model assets trained (their recorded features
against the allow-list, the splits they were trained on), scores every candidate and two
baselines on each city's test rows and, on data from the built-in generator, the Bayes limit
beside them. Only when no model beats that limit (a leak, never a success) are the models
published to models/, where `predict` loads, together with reports/evaluation.json; otherwise the
previous ones stay and this run's evaluation is kept as rejected.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from crime_pipeline.lib import synthetic
from crime_pipeline.lib.cities.profiles import DEFAULT_CITY, model_name, primary_city
from crime_pipeline.lib.features.splits import city_parts
from crime_pipeline.lib.features.table import FEATURE_COLUMNS
from crime_pipeline.lib.lake.atomic import publish, reject, rejected_path, staged_path, write_json
from crime_pipeline.lib.lake.parquet import write_parquet
from crime_pipeline.lib.lake.reads import DeclaredReads
from crime_pipeline.lib.models.artifacts import KINDS, load_model, predict_proba, publish_model
from crime_pipeline.lib.models.fit import per_city
from crime_pipeline.lib.models.training import matrices
from crime_pipeline.lib.reports.districts import district_model_metrics, incident_districts, test_row_districts
from crime_pipeline.lib.reports.evaluation import comparison_rows, evaluate, markdown_table
from crime_pipeline.lib.reports.metrics import baseline_probabilities
from crime_pipeline.lib.reports.responsible import training_data

PLAUSIBLE_ACCURACY = 0.8  # nine crime types from time and place do not honestly allow more
POSTERIOR_SLICE_ROWS = 100_000
# Why a check has no result on this data: it is left unexecuted (shown as skipped), never passed.
SKIPPED = {
    "no_model_beats_bayes": "no_model_beats_bayes: skipped, real data (the Bayes limit is unknown)",
    "accuracy_is_plausible": "accuracy_is_plausible: skipped, generated data (the Bayes check applies)",
}
_log = logging.getLogger(__name__)


def all_generated(generator_versions: dict[str, str | None], city: str | None = None, lake_root=None) -> bool:
    """True when every ingested file was recorded as written by one generator version of `city` (the
    default city by default), with or without near repeats: only then is the Bayes limit known. A
    file without a recorded version counts as real data."""
    return synthetic.generated_by(generator_versions.values(), city, lake_root) is not None


def city_generated(quality: dict, city: str, lake_root: str | Path | None = None) -> bool:
    """Whether every file of `city` came from one of that city's generator versions."""
    versions = quality.get("generator_versions", {})
    cities = quality.get("file_cities", {})
    mine = {k: v for k, v in versions.items() if cities.get(k, DEFAULT_CITY) == city}
    return all_generated(mine, city, lake_root)


@dataclass(frozen=True)
class CheckOutcome:
    """One check's verdict and the numbers behind it, as plain values (the asset adds Dagster's types)."""

    passed: bool
    metadata: dict


@dataclass
class EvaluationPublished:
    """What model_evaluation did: the evaluation document, whether it was published, and the checks.

    `checks` holds a result for every check that could run on this data, by check name; a check
    missing from it is skipped (see `SKIPPED`). `doc` is None when the audit stopped the evaluation.
    """

    published: bool
    checks: dict[str, CheckOutcome]
    doc: dict | None = None
    path: Path | None = None  # reports/evaluation.json
    written: Path | None = None  # where this run's evaluation is: `path` when published, else the rejected copy
    table: str = ""  # the metrics as a Markdown table
    generated: bool = False  # every city's data came from the built-in generator
    skipped: list[str] = field(default_factory=list)


def audit_candidates(
    candidates: dict[tuple[str, str], dict], data_version: str
) -> tuple[dict[str, list[str]], list[str]]:
    """Each candidate's recorded features not on the allow-list (by model name, only those with any),
    and the stale candidates: trained on other splits than `data_version`, or (mlp_weighted) built on
    another network than the city's mlp candidate, e.g. when mlp_model was retrained without it."""
    bad = {model_name(*k): sorted(set(m["features"]) - set(FEATURE_COLUMNS)) for k, m in candidates.items()}
    bad = {k: v for k, v in bad.items() if v}
    stale = [model_name(*k) for k, m in candidates.items() if m.get("data_version") != data_version]
    for (kind, city), meta in candidates.items():
        mlp = candidates.get(("mlp", city))
        network = meta.get("network", {}).get("weights_sha256")
        if kind == "mlp_weighted" and mlp is not None and network != mlp.get("weights_sha256"):
            stale.append(model_name(kind, city))
    return bad, list(dict.fromkeys(stale))


def bayes_posterior(rows: pd.DataFrame, city: str, lake_root: str | Path | None = None) -> np.ndarray:
    """The generator's exact posterior for the rows, in slices: the posterior's (types, components,
    rows) temporaries took 12 GB on 1.4 million test rows."""
    return np.concatenate(
        [
            synthetic.posterior(
                part["latitude"], part["longitude"], part["incident_datetime"], city=city, lake_root=lake_root
            )
            for part in (
                rows.iloc[i : i + POSTERIOR_SLICE_ROWS] for i in range(0, max(len(rows), 1), POSTERIOR_SLICE_ROWS)
            )
        ]
    )


def evaluate_and_publish(reads: DeclaredReads, log: logging.Logger = _log) -> EvaluationPublished:
    """Audit the candidates, evaluate them on each city's test rows, and publish when the blocking checks pass."""
    layout = reads.layout
    info = reads.json(layout.lake_file("dataset_splits.json"))
    # Only what evaluation uses (test rows, training labels): 10 million rows whole would not fit comfortably.
    split_columns = reads.parquet_schema(layout.table("dataset_splits")).names
    city_column = ["city"] if "city" in split_columns else []
    case_column = ["case_number"] if "case_number" in split_columns else []  # finds a test row's districts
    columns = list(
        dict.fromkeys(
            [
                *info["scaler"],
                "latitude",
                "longitude",
                "incident_datetime",
                "label_id",
                "split",
                *city_column,
                *case_column,
            ]
        )
    )
    splits = reads.parquet(layout.table("dataset_splits"), columns=columns, filters=[("split", "==", "test")])
    parts = reads.parquet(layout.table("dataset_splits"), columns=["label_id", "split", *city_column])
    quality = reads.json(layout.report_file("data_quality.json"))
    cities = list(city_parts(splits))
    districts = incident_districts(reads, splits)
    candidates = {
        (kind, city): reads.json(layout.model_candidates / f"{model_name(kind, city)}.json")
        for city in cities
        for kind in KINDS
    }
    bad_features, stale = audit_candidates(candidates, info["data_version"])
    allowed = CheckOutcome(
        passed=not bad_features and not stale,
        metadata={"features_not_allowed": bad_features, "trained_on_other_data": ", ".join(stale) or "none"},
    )
    if not allowed.passed:
        log.error(f"not evaluating or publishing: features not allowed {bad_features}, stale {stale}")
        return EvaluationPublished(published=False, checks={"model_features_allowed": allowed})

    docs, predictions = {}, {}
    train_labels = city_parts(parts[parts["split"] == "train"])
    for city, rows, city_info in per_city(splits, info):  # `splits` holds the test rows only
        classes = city_info["classes"]
        test = matrices(rows, city_info["scaler"], "test")
        train_y = train_labels[city]["label_id"].to_numpy()
        probas = {}
        for kind in KINDS:
            name = model_name(kind, city)
            reads.path(layout.model_candidates / candidates[(kind, city)]["weights_file"])
            model, _ = load_model(layout.model_candidates, kind, name)
            probas[kind] = predict_proba(kind, model, test.x, len(classes))
        generated = city_generated(quality, city, layout.root)
        bayes = bayes_posterior(rows, city, layout.root) if generated else None
        doc = evaluate(test.y, train_y, probas, classes, info["strategy"], bayes)
        doc["generated_data"] = generated
        doc["data_version"] = info["data_version"]
        doc["city"] = city
        prior = baseline_probabilities(train_y, len(test.y), len(classes))["prior"]
        doc["districts"] = district_model_metrics(
            test_row_districts(rows, districts), test.y, {**probas, "prior": prior}
        )
        docs[city] = doc
        predictions[city] = pd.DataFrame({"label_id": test.y, **{f"pred_{k}": p.argmax(1) for k, p in probas.items()}})
    primary = primary_city(docs)
    doc = {**docs[primary], "cities": docs, "comparison": comparison_rows(docs)}
    winners = [
        f"{k}" + ("" if c == primary and len(docs) == 1 else f" ({c})")
        for c, d in docs.items()
        if d["bayes"]
        for k, g in d["bayes"]["gap"].items()
        if g["test"]["beats_bayes"]
    ]
    passed = not winners
    outputs = (layout.report_file("evaluation.json"), layout.lake_file("test_predictions.parquet"))
    write_json(staged_path(outputs[0]), doc)
    write_parquet(staged_path(outputs[1]), predictions[primary])  # the primary city's: the figures show it
    if passed:
        for city, city_doc in docs.items():
            for kind in KINDS:
                publish_model(
                    layout.model_candidates,
                    layout.models,
                    kind,
                    {
                        "published_at": datetime.now(UTC).isoformat(),
                        "test_metrics": city_doc["models"][kind],
                        "training_data": training_data(quality, city),  # what `predict` tells its user
                    },
                    model_name(kind, city),
                )
    for path in outputs:
        (publish if passed else reject)(path)
    if not passed:
        log.error(f"{', '.join(winners)} beat the Bayes limit: a leak. Nothing published; the previous models stay")
    table = markdown_table(doc)
    log.info("\n" + table)
    checks = {"model_features_allowed": allowed, **_verdicts(docs, doc, winners)}
    return EvaluationPublished(
        published=passed,
        checks=checks,
        doc=doc,
        path=outputs[0],
        written=outputs[0] if passed else rejected_path(outputs[0]),
        table=table,
        generated=all(d["generated_data"] for d in docs.values()),
        skipped=[name for name in SKIPPED if name not in checks],
    )


def _verdicts(docs: dict[str, dict], doc: dict, winners: list[str]) -> dict[str, CheckOutcome]:
    """The evaluation's checks: the Bayes limit where it is known, plausibility where it is not,
    and the MLP against the baselines everywhere."""
    checks = {}
    judged = [d for d in docs.values() if d["bayes"]]
    if judged:
        checks["no_model_beats_bayes"] = CheckOutcome(
            passed=not winners,
            metadata={
                "models_beating_bayes": ", ".join(winners) or "none",
                "bayes_accuracy": doc["bayes"]["accuracy"] if doc["bayes"] else None,
                "cities_judged": ", ".join(d["city"] for d in judged),
            },
        )
    real = [d for d in docs.values() if not d["bayes"]]
    if real:
        too_good = [
            k + ("" if len(docs) == 1 else f" ({d['city']})")
            for d in real
            for k, m in d["models"].items()
            if m["accuracy"] > PLAUSIBLE_ACCURACY
        ]
        checks["accuracy_is_plausible"] = CheckOutcome(
            passed=not too_good, metadata={"models_above_0.8": ", ".join(too_good) or "none"}
        )
    behind = {
        c: d
        for c, d in docs.items()
        if not (
            d["models"]["mlp"]["accuracy"] > d["baselines"]["majority"]["accuracy"]
            and d["models"]["mlp"]["log_loss"] <= d["models"]["baseline"]["log_loss"]
        )
    }
    mlp, baseline = doc["models"]["mlp"], doc["models"]["baseline"]
    checks["mlp_beats_baselines"] = CheckOutcome(
        passed=not behind,
        metadata={
            "mlp_accuracy": mlp["accuracy"],
            "majority_accuracy": doc["baselines"]["majority"]["accuracy"],
            "mlp_log_loss": mlp["log_loss"],
            "baseline_log_loss": baseline["log_loss"],
            "cities_behind": ", ".join(behind) or "none",
        },
    )
    return checks
