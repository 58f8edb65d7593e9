"""The lake's catalog: which asset publishes each file, so every read can name its producer.

Paths are relative to the lake root; `*` matches within one path part (a partition key, a hash).
An asset may read only files published by itself or by an asset it depends on; the files under
`raw/` come from outside the graph and only ingestion reads them. The Dagster layer enforces this
on every read (defs/lake_io.py), so the lineage graph in the UI is the data flow.
"""

from __future__ import annotations

import fnmatch

PUBLISHED_BY: dict[str, tuple[str, ...]] = {
    "open_data_pull": ("raw/incoming/open_data_pull_*.csv", "ledger/open_data_pull.json"),
    "raw_incidents": ("lake/raw_incidents/*.parquet", "ledger/ingested.json"),
    "validated_incidents": ("lake/validated_incidents/*.parquet", "lake/validated_incidents/*.summary.json",
                            "ledger/ingested.json"),
    "incident_quarantine": ("quarantine/*.parquet",),
    "incidents": ("lake/incidents.parquet", "reports/data_quality.json"),
    "incident_features": ("lake/incident_features.parquet", "lake/label_map.json", "lake/leakage_check.json"),
    "dataset_splits": ("lake/dataset_splits.parquet", "lake/dataset_splits.json"),
    # Model assets write candidates (another city's as `<kind>.<city>.json`); model_evaluation audits
    # them and publishes those that pass.
    **{f"{kind}_model": (f"models/candidates/{kind}.json", f"models/candidates/{kind}-*",
                         f"models/candidates/{kind}.*.json", f"models/candidates/{kind}.*-*")
       for kind in ("baseline", "mlp", "mlp_weighted", "gbdt")},
    "model_evaluation": ("reports/evaluation.json", "lake/test_predictions.parquet", "models/*.json", "models/*-*"),
    "figures": ("reports/*.png", "reports/captions.json"),
    "seed_reproduction": ("reports/seed_reproduction.json",),
    "crime_report": ("reports/report.html", "reports/summary.json"),
}
EXTERNAL_INPUTS: tuple[str, ...] = ("raw/incoming/*", "raw/generated.json")


def _matches(path: str, pattern: str) -> bool:
    parts, wanted = path.split("/"), pattern.split("/")
    return len(parts) == len(wanted) and all(fnmatch.fnmatchcase(a, b) for a, b in zip(parts, wanted))


def producers_of(relative_path: str) -> set[str]:
    """The assets that publish a lake file (a set: the ledger has two writers); 'external' for raw/."""
    found = {asset for asset, patterns in PUBLISHED_BY.items() if any(_matches(relative_path, p) for p in patterns)}
    if any(_matches(relative_path, p) for p in EXTERNAL_INPUTS):
        found.add("external")
    return found
