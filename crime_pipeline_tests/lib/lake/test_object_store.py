"""The lake on object storage: the same pipeline on s3://, against a real S3-compatible server
(moto in server mode, started here on 127.0.0.1; never the network)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import uuid

import boto3
import dagster as dg
import numpy as np
import pandas as pd
import pytest

from crime_pipeline.cli import main
from crime_pipeline.definitions import build_definitions
from crime_pipeline.defs.ingestion import SOURCE_FILE_TAG
from crime_pipeline.defs.sensors import incoming_file_sensor
from crime_pipeline.lib import synthetic
from crime_pipeline.lib.lake import storage
from crime_pipeline.lib.lake.atomic import publish, remove_stale_temp_files, staged_path, write_bytes
from crime_pipeline.lib.lake.faults import FAULT_ENV
from crime_pipeline.lib.lake.layout import LakeLayout, partition_key_for
from crime_pipeline.lib.lake.ledger import ingested, record_generated, scan_incoming
from crime_pipeline.lib.lake.parquet import read_parquet, write_parquet
from crime_pipeline.resources import LakeResource
from crime_pipeline_tests.conftest import API_SAMPLE, Pipeline
from crime_pipeline_tests.s3_server import CREDENTIALS, s3_server

ROWS = 2500


@pytest.fixture(scope="module")
def endpoint():
    with s3_server() as url, pytest.MonkeyPatch.context() as env:
        for name, value in CREDENTIALS.items():
            env.setenv(name, value)
        env.setenv(storage.ENDPOINT_ENV, url)
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        yield url


@pytest.fixture
def s3_lake(endpoint) -> LakeLayout:
    """A fresh bucket on the test server; the lake under its `lake/` prefix."""
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    return LakeLayout(storage.lake_path(f"s3://{bucket}/lake")).ensure()


def upload_plain(endpoint: str, path, data: bytes) -> None:
    """Put an object as another tool would (`aws s3 cp`): no pointer, no version."""
    bucket, key = path.path.split("/", 1)
    boto3.client("s3", endpoint_url=endpoint).put_object(Bucket=bucket, Key=key, Body=data)


def objects(lake: LakeLayout) -> list[str]:
    """Every object key under the lake, relative to its root."""
    prefix = lake.root.path.rstrip("/") + "/"
    return sorted(k[len(prefix) :] for k in lake.root.fs.find(lake.root.path))


def test_the_whole_graph_runs_on_an_s3_lake_and_predict_uses_its_model(
    endpoint, s3_lake, instance, tmp_path, monkeypatch, capsys
):
    data = synthetic.generate_incidents(ROWS, seed=3)
    local = synthetic.write_export_csv(data, tmp_path / "gen.csv")
    csv = local.read_bytes()
    upload_plain(endpoint, s3_lake.incoming / "gen.csv", csv)  # dropped in by hand, as a user would
    record_generated(
        s3_lake,
        hashlib.sha256(csv).hexdigest(),
        {"file": "gen.csv", "rows": ROWS, "seed": 3, "generator_version": synthetic.GENERATOR_VERSION},
    )
    pipe = Pipeline(build_definitions(str(s3_lake.root)), instance, s3_lake)
    assert pipe.run() == 0, pipe.output
    assert f"report: {s3_lake.report_file('report.html')}" in pipe.output[-1]

    # Row accounting, exact: every generated kind of dirt where it belongs.
    quality = json.loads(storage.read_bytes(s3_lake.report_file("data_quality.json")))
    dirt = pd.Series(data.dirt)
    totals = quality["totals"]
    assert totals["rows_read"] == ROWS and quality["reconciles"]
    assert totals["quarantined"] == (~dirt.isin(["clean", "reissued_original", "reissued_newer"])).sum()
    assert totals["superseded"] == (dirt == "reissued_original").sum()
    assert totals["valid"] + totals["quarantined"] + totals["superseded"] == ROWS
    assert len(read_parquet(s3_lake.table("incidents"))) == totals["valid"]
    [entry] = ingested(s3_lake).values()
    assert entry["status"] == "validated" and entry["records_counted"] == ROWS

    report = storage.read_bytes(s3_lake.report_file("report.html")).decode()
    assert report.startswith("<!DOCTYPE html>") and report.count("data:image/png;base64,") >= 5
    evaluation = json.loads(storage.read_bytes(s3_lake.report_file("evaluation.json")))
    assert evaluation["generated_data"] and evaluation["bayes"]  # the Bayes limit applies on S3 too

    # Every file the graph wrote is a pointer to a version; nothing is left staged, nothing written twice.
    listed = objects(s3_lake)
    published = [k for k in listed if "/.versions/" not in k and not k.startswith(".versions/")]
    assert not [k for k in published if ".staged." in k]
    assert {
        "raw/incoming/gen.csv",
        "ledger/ingested.json",
        "raw/generated.json",
        "lake/incidents.parquet",
        "models/mlp.json",
        "reports/report.html",
        "reports/confusion_matrices.png",
        "reports/hotspot_cells.geojson",
    } <= set(published)
    assert s3_lake.root.fs.cat_file((s3_lake.incoming / "gen.csv").path) == csv  # the upload stays as it was

    # `predict` on the s3:// lake loads the published model.
    monkeypatch.setenv("CRIME_PIPELINE_LAKE", str(s3_lake.root))
    out = tmp_path / "scored.csv"
    capsys.readouterr()
    assert main(["predict", "--model", "mlp", "--input", str(API_SAMPLE), "--out", str(out)]) == 0
    meta = json.loads(storage.read_bytes(s3_lake.models / "mlp.json"))
    assert f"weights {meta['weights_sha256'][:12]}" in capsys.readouterr().out
    scored = pd.read_csv(out)
    assert len(scored) == 194 and np.allclose(scored.filter(like="p_").sum(axis=1), 1.0)

    # The same objects again: known by content hash, nothing rebuilt.
    assert pipe.run() == 0, pipe.output
    assert "gen.csv: already ingested (as gen.csv)" in pipe.output and "everything is up to date" in pipe.output


CRASH = """
import sys, pandas as pd
from crime_pipeline.lib.lake.atomic import publish, staged_path
from crime_pipeline.lib.lake.parquet import write_parquet
from crime_pipeline.lib.lake.storage import lake_path
target = lake_path(sys.argv[1])
if sys.argv[2] == "write":
    write_parquet(target, pd.DataFrame({"version": [2]}))
else:
    write_parquet(staged_path(target), pd.DataFrame({"version": [3]}))
    publish(target)
"""


def test_a_crash_between_upload_and_pointer_leaves_the_previous_version_served(s3_lake):
    target = s3_lake.table("incidents")
    write_parquet(target, pd.DataFrame({"version": [1]}))
    for mode, point in (("write", "write:incidents.parquet"), ("stage", "publish:incidents.parquet")):
        crashed = subprocess.run(
            [sys.executable, "-c", CRASH, str(target), mode],
            capture_output=True,
            text=True,
            env={**os.environ, FAULT_ENV: f"{point}=kill"},
            timeout=120,
        )
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr
        assert read_parquet(target)["version"].tolist() == [1]
    assert read_parquet(staged_path(target))["version"].tolist() == [3]  # staged, audited, never published

    versions = [k for k in objects(s3_lake) if k.startswith("lake/.versions/incidents.parquet/")]
    assert len(versions) == 3  # the served one, the crashed write's orphan, the staged one
    assert remove_stale_temp_files(s3_lake.root) == []  # young versions may belong to a live writer
    removed = remove_stale_temp_files(s3_lake.root, grace_seconds=0)
    assert [storage.relative(p, s3_lake.root) for p in removed] == [versions[1]]
    assert read_parquet(target)["version"].tolist() == [1]

    publish(target)  # the pointer moves; no bytes are copied
    assert read_parquet(target)["version"].tolist() == [3] and not storage.exists(staged_path(target))
    assert [storage.relative(p, s3_lake.root) for p in remove_stale_temp_files(s3_lake.root, 0)] == [versions[0]]
    assert read_parquet(target)["version"].tolist() == [3]


LEDGER = """
import sys
from crime_pipeline.lib.lake.layout import LakeLayout
from crime_pipeline.lib.lake.ledger import record_ingested, record_validated
from crime_pipeline.lib.lake.storage import lake_path
layout = LakeLayout(lake_path(sys.argv[1]))
who, n = sys.argv[2], int(sys.argv[3])
for i in range(n):
    record_ingested(layout, f"{who}{i:03d}", {"file": f"{who}{i}.csv"})
    if i % 2 == 0:
        record_validated(layout, f"{who}{i:03d}", {"valid": i, "quarantined": 0})
"""


def test_two_processes_updating_the_ledger_lose_no_entry(s3_lake):
    n = 20
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", LEDGER, str(s3_lake.root), who, str(n)], stderr=subprocess.PIPE, text=True
        )
        for who in ("a", "b")
    ]
    for writer in writers:
        assert writer.wait(timeout=120) == 0, writer.stderr.read()
    files = ingested(s3_lake)
    assert sorted(files) == sorted(f"{who}{i:03d}" for who in "ab" for i in range(n))
    assert sorted(e["seq"] for e in files.values()) == list(range(1, 2 * n + 1))
    assert {k for k, e in files.items() if e["status"] == "validated"} == {
        f"{who}{i:03d}" for who in "ab" for i in range(0, n, 2)
    }


def test_an_oversized_document_or_model_file_on_s3_is_refused_before_it_is_downloaded(s3_lake, monkeypatch):
    from crime_pipeline.lib.lake import documents
    from crime_pipeline.lib.lake.errors import StageError
    from crime_pipeline.lib.models import metadata

    path = s3_lake.report_file("evaluation.json")
    write_bytes(path, json.dumps({"padding": "x" * 500}).encode())
    downloads = []
    monkeypatch.setattr(type(path.fs), "cat_file", lambda self, *a, **k: downloads.append(a) or b"{}")
    monkeypatch.setattr(documents, "MAX_DOCUMENT_BYTES", 100)
    with pytest.raises(StageError, match=r"evaluation.json is over the 100-byte limit for a lake document"):
        documents.read_json(path, default={})
    with pytest.raises(metadata.MetadataError, match="over the 100-byte limit"):
        metadata.read_bounded(path, 100)
    assert downloads == []  # the object's size was asked (HEAD), its bytes never fetched


def test_the_sensor_lists_incoming_objects_and_keys_them_by_content(endpoint, s3_lake, instance):
    real = API_SAMPLE.read_bytes()
    write_bytes(s3_lake.incoming / "pulled.csv", real)  # written by the pipeline (the open-data pull): a pointer
    upload_plain(endpoint, s3_lake.incoming / "dropped.csv", real.replace(b"\n", b"\r\n"))  # another export, by hand
    upload_plain(endpoint, s3_lake.incoming / "z_copy.csv", real)  # the same bytes under another name
    upload_plain(endpoint, s3_lake.incoming / "notes.txt", b"not an export")
    upload_plain(
        endpoint,
        s3_lake.incoming / "evil.csv",  # a forged pointer to a published model
        b'{"crime_pipeline_pointer": 1, "version": "../../models/mlp.json"}',
    )
    cursor = None
    results = []
    for _ in range(2):
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor, resources={"lake": LakeResource(root=str(s3_lake.root))}
        )
        results.append(incoming_file_sensor(context))
        cursor = results[-1].cursor
    assert results[0].run_requests == []  # first sight: wait one tick, as for a local file
    requests = {r.tags[SOURCE_FILE_TAG]: r.partition_key for r in results[1].run_requests}
    assert requests == {
        "pulled.csv": partition_key_for(hashlib.sha256(real).hexdigest()),
        "dropped.csv": partition_key_for(hashlib.sha256(real.replace(b"\n", b"\r\n")).hexdigest()),
    }
    _, notes = scan_incoming(s3_lake, key_of=lambda path: None)
    assert (
        "refused",
        "not ingesting 'evil.csv': it is a pointer to some other object (perhaps a secret); left untouched",
    ) in notes


def test_a_bad_url_or_an_unreachable_endpoint_fails_in_one_sentence_naming_it(endpoint, tmp_path, monkeypatch, capsys):
    bucket = f"missing-{uuid.uuid4().hex[:8]}"
    cases = {
        f"s3://{bucket}/lake": (
            f"the lake at s3://{bucket}/lake cannot be used: bucket '{bucket}' does not exist at {endpoint}"
        ),
        "s3://": "the lake URL s3:// names no bucket; use s3://bucket or s3://bucket/prefix",
        "ftp://example.org/lake": "the lake URL ftp://example.org/lake is not usable: unsupported scheme ftp://; "
        "the lake is a local folder or an s3:// URL",
    }
    for url, sentence in cases.items():
        with pytest.raises(storage.LakeError) as caught:
            LakeResource(root=url).layout
        assert str(caught.value) == sentence

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CRIME_PIPELINE_LAKE", f"s3://{bucket}/lake")
    assert main(["run"]) == 1
    assert capsys.readouterr().err == f"error: {cases[f's3://{bucket}/lake']}\n"

    monkeypatch.setenv(storage.ENDPOINT_ENV, "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("CRIME_PIPELINE_LAKE", "s3://lake/x")
    assert main(["predict", "--model", "mlp", "--input", str(API_SAMPLE), "--out", str(tmp_path / "o.csv")]) == 1
    err = capsys.readouterr().err
    assert (
        err.startswith("error: the lake at s3://lake/x cannot be reached through http://127.0.0.1:9: ")
        and err.count("\n") == 1
    ), err
