"""The UI path end to end: `crime-pipeline ui` (`dg dev`) serves the graph, a GraphQL launch runs it,
metadata comes back."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import pytest

from crime_pipeline.lib import synthetic
from crime_pipeline.lib.ingest.raw_csv import sha256_file
from crime_pipeline.lib.lake.layout import LakeLayout, partition_key_for
from crime_pipeline.lib.lake.ledger import record_generated
from crime_pipeline_tests.conftest import REPO
from crime_pipeline_tests.ui_client import LOCATION, UI, free_port

EXPECTED_EDGES = {
    ("raw_incidents", "validated_incidents"),
    ("raw_incidents", "incident_quarantine"),
    ("validated_incidents", "incidents"),
    ("incidents", "incident_features"),
    ("incident_features", "dataset_splits"),
    ("dataset_splits", "baseline_model"),
    ("dataset_splits", "mlp_model"),
    ("dataset_splits", "mlp_weighted_model"),
    ("dataset_splits", "gbdt_model"),
    ("mlp_model", "model_evaluation"),
    ("model_evaluation", "figures"),
    ("figures", "crime_report"),
}
GROUPS = {
    "raw_incidents": "ingestion",
    "validated_incidents": "validation",
    "incidents": "validation",
    "incident_features": "features",
    "dataset_splits": "features",
    "mlp_model": "models",
    "model_evaluation": "reports",
    "crime_report": "reports",
}


@pytest.fixture
def dagster_dev(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    lake = LakeLayout(tmp_path / "lake").ensure()
    data = synthetic.generate_incidents(2500, seed=13)
    path = synthetic.write_export_csv(data, lake.incoming / "export.csv")
    record_generated(
        lake,
        sha256_file(path),
        {"file": path.name, "rows": 2500, "seed": 13, "generator_version": synthetic.GENERATOR_VERSION},
    )
    port = free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "CRIME_PIPELINE_LAKE": str(lake.root),
        "CRIME_PIPELINE_SENSORS": "stopped",
    }
    log = tmp_path / "dagster_dev.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "crime_pipeline.cli", "ui", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # its own process group, ended as a whole below
    try:
        ui = UI(port)
        ui.wait_until_serving(proc, log)
        yield ui, lake, partition_key_for(sha256_file(path)), log
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # dg dev ignores SIGTERM in the background
        proc.wait(timeout=30)


def test_ui_serves_the_lineage_and_materializes_the_whole_graph(dagster_dev):
    ui, lake, key, log = dagster_dev
    nodes = ui.graphql("{ assetNodes { assetKey { path } groupName description dependencyKeys { path } } }")[
        "assetNodes"
    ]
    by_name = {n["assetKey"]["path"][-1]: n for n in nodes}
    edges = {(d["path"][-1], name) for name, n in by_name.items() for d in n["dependencyKeys"]}
    assert EXPECTED_EDGES <= edges
    for name, group in GROUPS.items():
        assert by_name[name]["groupName"] == group
        assert len(by_name[name]["description"] or "") > 40, name

    # The partition dialog's "add partition", then the Materialize button for that file...
    added = ui.graphql(
        "mutation($l: String!, $r: String!, $p: String!, $k: String!) { addDynamicPartition("
        "repositorySelector: {repositoryLocationName: $l, repositoryName: $r}, partitionsDefName: $p, "
        "partitionKey: $k) { __typename } }",
        {"l": LOCATION, "r": "__repository__", "p": "incoming_files", "k": key},
    )["addDynamicPartition"]
    assert added["__typename"] == "AddDynamicPartitionSuccess", added
    run = ui.launch(["raw_incidents", "validated_incidents", "incident_quarantine"], {"dagster/partition": key})
    assert ui.wait_for_run(run) == "SUCCESS", log.read_text()[-3000:]
    # ...and for everything below it.
    downstream = [
        "incidents",
        "incident_features",
        "dataset_splits",
        "baseline_model",
        "mlp_model",
        "mlp_weighted_model",
        "gbdt_model",
        "model_evaluation",
        "figures",
        "seed_reproduction",
        "crime_report",
    ]
    run = ui.launch(downstream)
    assert ui.wait_for_run(run) == "SUCCESS", log.read_text()[-3000:]

    report = ui.graphql(
        '{ assetOrError(assetKey: {path: ["crime_report"]}) { ... on Asset { assetMaterializations(limit: 1) { '
        "metadataEntries { label __typename ... on PathMetadataEntry { path } ... on FloatMetadataEntry { floatValue } "
        "... on MarkdownMetadataEntry { mdStr } } } } } }"
    )["assetOrError"]["assetMaterializations"][0]["metadataEntries"]
    entries = {e["label"]: e for e in report}
    assert entries["path"]["path"] == str(lake.report_file("report.html"))
    assert lake.report_file("report.html").exists()
    assert 0 < entries["best_accuracy"]["floatValue"] < 1
    assert "Bayes" in entries["summary"]["mdStr"]

    figures = ui.graphql(
        '{ assetOrError(assetKey: {path: ["figures"]}) { ... on Asset { assetMaterializations(limit: 1) { '
        "metadataEntries { label ... on MarkdownMetadataEntry { mdStr } } } } } }"
    )["assetOrError"]["assetMaterializations"][0]["metadataEntries"]
    images = {e["label"] for e in figures if "data:image/png;base64," in (e.get("mdStr") or "")}
    assert {"confusion_matrices", "reliability", "training_curves", "hotspots_time_bands", "per_class_recall"} <= images
