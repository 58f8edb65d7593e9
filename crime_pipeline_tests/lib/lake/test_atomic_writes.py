"""Atomic writes name the file they could not write, and publish files others can read (the umask decides)."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from crime_pipeline.lib.lake import atomic
from crime_pipeline.lib.lake.atomic import atomic_path, write_bytes, write_json, write_text
from crime_pipeline.lib.lake.faults import FAULT_ENV
from crime_pipeline.lib.lake.parquet import read_parquet, write_parquet, write_parquet_batches

FRAME = pd.DataFrame({"case_number": ["a", "b"], "latitude": [42.9, 42.8]})


def _temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("kind, reason", [("enospc", "No space left on device"), ("erofs", "Read-only file system")])
def test_a_full_disk_names_the_file_and_keeps_the_previous_one(tmp_path, monkeypatch, kind, reason):
    target = tmp_path / "reports" / "summary.json"
    write_json(target, {"rows": 1})
    monkeypatch.setenv(FAULT_ENV, f"write:summary.json={kind}")
    with pytest.raises(OSError) as info:
        write_json(target, {"rows": 2})
    assert str(info.value) == f"could not write {target}: {reason} (injected at write:summary.json)"
    assert info.value.errno == getattr(errno, kind.upper())
    assert target.read_text() == '{\n  "rows": 1\n}\n'  # the previous good file stays
    assert _temp_files(target.parent) == []


def test_a_parquet_writer_out_of_space_names_the_file(tmp_path, monkeypatch):
    def full_disk(*args, **kwargs):  # what pyarrow raises when the disk fills mid-write
        raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device")

    monkeypatch.setattr(pq, "write_table", full_disk)
    target = tmp_path / "lake" / "incident_features.parquet"
    with pytest.raises(OSError) as info:
        write_parquet(target, FRAME)
    assert str(info.value) == (
        f"could not write {target}: Error writing bytes to file. Detail: [errno 28] No space left on device"
    )
    assert not target.exists() and _temp_files(target.parent) == []


def test_an_error_reading_another_file_is_not_blamed_on_the_target(tmp_path):
    missing = tmp_path / "no_such_input.parquet"
    target = tmp_path / "out.parquet"

    def batches():
        yield FRAME
        yield read_parquet(missing)

    with pytest.raises(FileNotFoundError) as info:
        write_parquet_batches(target, batches())
    assert "could not write" not in str(info.value) and not target.exists()


def test_the_rename_failing_names_the_file(tmp_path, monkeypatch):
    def refuse(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied", str(dst))

    monkeypatch.setattr(atomic.os, "replace", refuse)
    target = tmp_path / "report.html"
    with pytest.raises(OSError, match=f"^could not write {target}: Permission denied$"):
        write_text(target, "<html></html>")


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_published_files_have_the_mode_open_would_give_them(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        written = [
            write_json(tmp_path / "evaluation.json", {"a": 1}),
            write_text(tmp_path / "report.html", "<html></html>"),
            write_bytes(tmp_path / "models" / "mlp-0123456789ab.pt", b"weights"),
            write_parquet(tmp_path / "incidents.parquet", FRAME),
            write_parquet_batches(tmp_path / "features.parquet", [FRAME, FRAME]),
        ]
        with atomic_path(tmp_path / "reports" / "figure.png") as tmp:
            tmp.write_bytes(b"\x89PNG")
        written.append(tmp_path / "reports" / "figure.png")
    finally:
        os.umask(previous)
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in written} == {p.name: mode for p in written}
