"""The new-file sensor: one partition and run per content, nothing touched that must not be."""

from __future__ import annotations

import os

import dagster as dg
import pytest

from crime_pipeline.defs.sensors import incoming_file_sensor
from crime_pipeline.lib.ingest.raw_csv import sha256_file
from crime_pipeline.lib.lake.layout import partition_key_for
from crime_pipeline.lib.lake.ledger import record_ingested, record_validated
from crime_pipeline.resources import LakeResource
from crime_pipeline.runs import (
    FINISHED_STATUSES,
    HOST_TAG,
    IN_PROGRESS_STATUSES,
    PID_TAG,
    SOURCE_FILE_TAG,
    process_tags,
    reap_dead_runs,
)
from crime_pipeline_tests.conftest import API_SAMPLE


class Ticker:
    """Successive sensor ticks that carry the cursor, as the daemon does."""

    def __init__(self, instance, lake, cursor=None):
        self.instance, self.lake, self.cursor = instance, lake, cursor

    def tick(self) -> dg.SensorResult:
        context = dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources={"lake": LakeResource(root=str(self.lake.root))}
        )
        result = incoming_file_sensor(context)
        self.cursor = result.cursor
        return result


@pytest.fixture
def ticker(instance, lake) -> Ticker:
    return Ticker(instance, lake)


def test_a_new_file_becomes_one_partition_and_run_once_its_size_is_stable(ticker, lake):
    path = lake.incoming / "export.csv"
    path.write_bytes(API_SAMPLE.read_bytes())
    assert ticker.tick().run_requests == []  # first sight: wait one tick
    result = ticker.tick()
    key = partition_key_for(sha256_file(path))
    [request] = result.run_requests
    assert request.run_key == key and request.partition_key == key
    assert request.tags[SOURCE_FILE_TAG] == "export.csv"
    assert result.dynamic_partitions_requests[0].partition_keys == [key]


def test_a_file_still_being_written_waits(ticker, lake):
    path = lake.incoming / "growing.csv"
    data = API_SAMPLE.read_bytes()
    path.write_bytes(data[:5000])
    ticker.tick()
    with open(path, "ab") as fh:
        fh.write(data[5000:])
    assert ticker.tick().run_requests == []  # the size changed since the last tick
    assert len(ticker.tick().run_requests) == 1


def test_same_bytes_under_two_names_are_requested_once(ticker, lake):
    (lake.incoming / "a.csv").write_bytes(API_SAMPLE.read_bytes())
    (lake.incoming / "b.csv").write_bytes(API_SAMPLE.read_bytes())
    ticker.tick()
    assert len(ticker.tick().run_requests) == 1


def test_the_ledger_not_the_run_history_decides(lake):
    """A wiped DAGSTER_HOME (fresh instance, no cursor) must not ingest a known file again."""
    path = lake.incoming / "known.csv"
    path.write_bytes(API_SAMPLE.read_bytes())
    digest = sha256_file(path)
    record_ingested(
        lake, partition_key_for(digest), {"file": "known.csv", "sha256": digest, "bytes": 1, "rows_read": 200}
    )
    record_validated(lake, partition_key_for(digest), {"valid": 194, "quarantined": 6})
    with dg.instance_for_test() as fresh:
        ticker = Ticker(fresh, lake)
        ticker.tick()
        assert ticker.tick().run_requests == []


def test_a_file_read_but_never_validated_is_retried_a_few_times(ticker, lake, instance):
    from dagster._core.test_utils import create_run_for_test

    path = lake.incoming / "crashed.csv"
    path.write_bytes(API_SAMPLE.read_bytes())
    key = partition_key_for(sha256_file(path))
    record_ingested(lake, key, {"file": "crashed.csv", "sha256": sha256_file(path), "bytes": 1, "rows_read": 200})
    ticker.tick()
    [first] = ticker.tick().run_requests
    assert first.run_key == key
    create_run_for_test(
        instance, job_name="ingest_file", tags={"dagster/partition": key}, status=dg.DagsterRunStatus.STARTED
    )
    assert ticker.tick().run_requests == []  # never while a run for the file is still going
    for attempt in (1, 2):
        [run] = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        instance.report_run_failed(run)
        [retry] = ticker.tick().run_requests
        assert retry.run_key == f"{key}:retry{attempt}"
        create_run_for_test(
            instance, job_name="ingest_file", tags={"dagster/partition": key}, status=dg.DagsterRunStatus.STARTED
        )
    [run] = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    instance.report_run_failed(run)
    assert ticker.tick().run_requests == []  # given up after a few tries: the error log names the file


def test_files_that_must_not_be_touched_are_logged_and_left_alone(ticker, lake, tmp_path, capfd):
    outside = tmp_path / "outside.csv"
    outside.write_bytes(API_SAMPLE.read_bytes())
    os.symlink(outside, lake.incoming / "link.csv")
    (lake.incoming / "notes.txt").write_text("not data")
    (lake.incoming / "bad\x07name.csv").write_bytes(API_SAMPLE.read_bytes())
    (lake.incoming / ".hidden.csv").write_bytes(API_SAMPLE.read_bytes())
    (lake.incoming / "folder.csv").mkdir()
    before = {p.name: (p.is_symlink(), p.lstat().st_mtime_ns, p.lstat().st_size) for p in lake.incoming.iterdir()}
    ticker.tick()
    assert ticker.tick().run_requests == []
    after = {p.name: (p.is_symlink(), p.lstat().st_mtime_ns, p.lstat().st_size) for p in lake.incoming.iterdir()}
    assert after == before
    logged = capfd.readouterr().err
    assert "'link.csv': it is a symbolic link" in logged
    assert "'notes.txt': it is not a .csv file" in logged
    assert "unsafe name" in logged and "'folder.csv': it is not a regular file" in logged


def test_ordinary_download_names_are_accepted(ticker, lake):
    (lake.incoming / "Crime Incidents (1) – 2025.csv").write_bytes(API_SAMPLE.read_bytes())
    ticker.tick()
    assert len(ticker.tick().run_requests) == 1


def test_run_statuses_are_dagsters_own_groups():
    from dagster._core.storage.dagster_run import FINISHED_STATUSES as DAGSTER_FINISHED
    from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES as DAGSTER_IN_PROGRESS

    assert set(IN_PROGRESS_STATUSES) == set(DAGSTER_IN_PROGRESS)
    assert set(FINISHED_STATUSES) == set(DAGSTER_FINISHED)


def test_runs_whose_process_is_gone_are_marked_failed_and_live_ones_kept(instance):
    from pathlib import Path

    from dagster._core.test_utils import create_run_for_test

    dead = int(Path("/proc/sys/kernel/pid_max").read_text())  # every pid is below it: no such process
    runs = {
        name: create_run_for_test(
            instance,
            job_name="ingest_file",
            status=dg.DagsterRunStatus.STARTED,
            tags={**process_tags(), PID_TAG: str(pid)},
        )
        for name, pid in (("dead", dead), ("live", os.getppid()), ("this", os.getpid()))
    }
    elsewhere = create_run_for_test(
        instance,
        job_name="ingest_file",
        status=dg.DagsterRunStatus.STARTED,
        tags={PID_TAG: str(dead), HOST_TAG: "another-host"},
    )
    logged = []
    assert reap_dead_runs(instance, echo=logged.append) == [runs["dead"].run_id]
    assert instance.get_run_by_id(runs["dead"].run_id).status == dg.DagsterRunStatus.FAILURE
    for run in (runs["live"], runs["this"], elsewhere):
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
    assert logged == [f"run {runs['dead'].run_id[:8]} was left running by a killed process; marked failed"]


def test_twenty_files_dropped_at_once_become_twenty_partitions_and_runs_each_once(ticker, lake):
    data = API_SAMPLE.read_bytes().splitlines(keepends=True)
    header, rows = data[0], data[1:]
    keys = {}
    for i in range(20):  # 20 different exports of 10 rows each
        path = lake.incoming / f"export_{i:02}.csv"
        path.write_bytes(header + b"".join(rows[i * 10 : i * 10 + 10]))
        keys[path.name] = partition_key_for(sha256_file(path))
    assert ticker.tick().run_requests == []
    result = ticker.tick()
    assert {r.tags[SOURCE_FILE_TAG]: r.partition_key for r in result.run_requests} == keys
    assert {r.run_key for r in result.run_requests} == set(keys.values())
    assert sorted(result.dynamic_partitions_requests[0].partition_keys) == sorted(keys.values())
    for name, key in keys.items():  # once ingested and validated, nothing is requested again
        record_ingested(lake, key, {"file": name, "sha256": sha256_file(lake.incoming / name), "rows_read": 10})
        record_validated(lake, key, {"valid": 10, "quarantined": 0})
    result = ticker.tick()
    assert result.run_requests == [] and result.dynamic_partitions_requests == []


def test_a_file_that_grows_while_the_sensor_hashes_it_waits(ticker, lake, monkeypatch):
    """The writer paused for a tick, then went on while the sensor read the file: the hash taken
    covers half a file, so the sensor must not register it, and takes the whole file once stable."""
    import crime_pipeline.defs.sensors as sensors

    path = lake.incoming / "slow_writer.csv"
    data = API_SAMPLE.read_bytes()
    path.write_bytes(data[:5000])
    assert ticker.tick().run_requests == []  # first sight

    def hash_while_the_writer_goes_on(target):
        digest = sha256_file(target)
        with open(target, "ab") as fh:  # the writer resumes after the sensor has read the file
            fh.write(data[5000:])
        return digest

    monkeypatch.setattr(sensors, "sha256_file", hash_while_the_writer_goes_on)
    result = ticker.tick()
    assert result.run_requests == [] and result.dynamic_partitions_requests == []
    monkeypatch.setattr(sensors, "sha256_file", sha256_file)
    [request] = ticker.tick().run_requests  # unchanged since the end of the last read: the whole file
    assert (
        request.partition_key
        == partition_key_for(sha256_file(path))
        == partition_key_for(__import__("hashlib").sha256(data).hexdigest())
    )


def test_a_file_replaced_under_the_same_name_is_a_new_partition(ticker, lake):
    path = lake.incoming / "monthly.csv"
    data = API_SAMPLE.read_bytes()
    path.write_bytes(data)
    ticker.tick()
    [first] = ticker.tick().run_requests
    record_ingested(lake, first.partition_key, {"file": "monthly.csv", "sha256": sha256_file(path), "rows_read": 200})
    record_validated(lake, first.partition_key, {"valid": 194, "quarantined": 6})
    path.write_bytes(data.replace(b"\n", b"\r\n"))  # the same records, re-exported: different bytes
    assert ticker.tick().run_requests == []  # changed: wait one tick
    [second] = ticker.tick().run_requests
    assert second.partition_key == partition_key_for(sha256_file(path)) != first.partition_key
    assert second.tags[SOURCE_FILE_TAG] == "monthly.csv"
    assert second.run_key == second.partition_key  # a first run for new content, not a retry of the old


def test_a_launched_runs_worker_is_told_apart_from_a_reused_pid():
    import time

    from dagster._core.storage.tags import GRPC_INFO_TAG as DAGSTERS_TAG

    from crime_pipeline.runs import GRPC_INFO_TAG, worker_alive

    assert GRPC_INFO_TAG == DAGSTERS_TAG
    assert worker_alive(os.getpid(), started_by=time.time())  # this process, started before now
    # The worker logged its start a day before this process existed: the pid was reused, the worker is gone.
    assert not worker_alive(os.getpid(), started_by=time.time() - 86_400)
    assert not worker_alive(int(open("/proc/sys/kernel/pid_max").read()), started_by=time.time())
