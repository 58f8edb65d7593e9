"""The ledger of ingested files in the data lake (layout.py says where everything lives).

The ledger (`ledger/ingested.json`) records every file ingested, by content hash, so a file is
ingested once however often it is dropped in, renamed, or whatever happens to DAGSTER_HOME. A file
is done only when its validation is published (status `validated`); until then (status `read`:
raw table written, validation not yet published, e.g. after a crash) every run retries it.
Its updates never lose a concurrent writer's entry: an fcntl lock on a local lake, a conditional
PUT retried on conflict on an object store (documents.update_json).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from crime_pipeline.lib.lake import storage
from crime_pipeline.lib.lake.documents import read_json, update_json
from crime_pipeline.lib.lake.layout import LakeLayout, partition_key_for

VALIDATED = "validated"


def ingested(layout: LakeLayout) -> dict[str, dict]:
    """Ledger entries by partition key, in ingestion order, whatever their status."""
    files = read_json(layout.ledger, {"files": {}})["files"]
    return dict(sorted(files.items(), key=lambda kv: kv[1]["seq"]))


def split_by_status(files: dict[str, dict]) -> tuple[dict[str, dict], dict[str, dict]]:
    """(validated, not validated) ledger entries, each in ingestion order. Validated files are the
    ones downstream assets merge; the others were read but their validation was never published
    (a crash, a failed check) and are retried."""
    ordered = sorted(files.items(), key=lambda kv: kv[1]["seq"])
    return (
        {k: e for k, e in ordered if e.get("status") == VALIDATED},
        {k: e for k, e in ordered if e.get("status") != VALIDATED},
    )


def validated_files(layout: LakeLayout) -> dict[str, dict]:
    return split_by_status(ingested(layout))[0]


def unvalidated_files(layout: LakeLayout) -> dict[str, dict]:
    return split_by_status(ingested(layout))[1]


def _update_entry(layout: LakeLayout, key: str, update) -> dict:
    def apply(ledger: dict) -> dict:
        files = ledger["files"]
        files[key] = update(files.get(key), files)
        return ledger

    return update_json(layout.ledger, apply, {"files": {}})["files"][key]


def record_ingested(layout: LakeLayout, key: str, entry: dict) -> dict:
    """Record a file's raw table (status `read`). A retried file keeps its order and first ingestion
    time, since validation judges "in the future" against that time."""

    def update(previous, files):
        seq = previous["seq"] if previous else max((f["seq"] for f in files.values()), default=0) + 1
        first = previous.get("ingested_at") if previous else None
        return {**entry, "seq": seq, "ingested_at": first or datetime.now(UTC).isoformat(), "status": "read"}

    return _update_entry(layout, key, update)


def record_validated(layout: LakeLayout, key: str, counts: dict) -> dict:
    """Mark a file done: its validated and quarantine tables are published."""

    def update(previous, files):
        if previous is None:
            raise KeyError(f"partition {key} was validated but never recorded as read")
        return {**previous, "status": VALIDATED, "validation": counts, "validated_at": datetime.now(UTC).isoformat()}

    return _update_entry(layout, key, update)


def record_generated(layout: LakeLayout, sha256: str, info: dict) -> None:
    """Remember that a file came from the built-in generator (enables the Bayes limit)."""

    def apply(manifest: dict) -> dict:
        manifest["files"][partition_key_for(sha256)] = {"sha256": sha256, **info}
        return manifest

    update_json(layout.generated_manifest, apply, {"files": {}})


def generated_files(layout: LakeLayout) -> dict[str, dict]:
    return read_json(layout.generated_manifest, {"files": {}})["files"]


def incoming_refusal(path: Path) -> str | None:
    """Why an entry of the incoming folder must not be ingested, or None when it may be."""
    name = path.name
    remote = storage.is_remote(path)  # an object store has no links
    if not remote and path.is_symlink():
        return "is a symbolic link"
    if name.startswith(".") or "/" in name or "\\" in name or any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return "has an unsafe name (path separators, control characters or a leading dot)"
    if not storage.is_file(path):
        return "is not a regular file"
    if not remote and path.lstat().st_nlink > 1:  # another name for some other file (a hard link), perhaps a secret
        return "has more than one hard link (it is also some other file); copy it in instead"
    if path.suffix.lower() != ".csv":
        return "is not a .csv file"
    if remote and not storage.follows_own_pointer(path):  # the object-store kind of link
        return "is a pointer to some other object (perhaps a secret)"
    return None


class NewFile(NamedTuple):
    path: Path
    key: str  # partition key: the start of the content hash


def scan_incoming(
    layout: LakeLayout, key_of: Callable[[Path], str | None]
) -> tuple[list[NewFile], list[tuple[str, str]]]:
    """Files in raw/incoming not yet ingested, one per content, and notes on the rest.

    `key_of` gives a file's partition key, or None when it is not ready (the sensor waits for a
    stable size). Notes are (kind, message) with kind "refused", "known", "duplicate" or "retry".
    A file read before but never validated (a crash, a failed check) counts as new: it is retried.
    """
    done, unfinished = split_by_status(ingested(layout))
    new: dict[str, NewFile] = {}
    notes: list[tuple[str, str]] = []
    for path in storage.listdir(layout.incoming):
        refusal = incoming_refusal(path)
        if refusal:
            notes.append(("refused", f"not ingesting {path.name!r}: it {refusal}; left untouched"))
            continue
        key = key_of(path)
        if key is None:
            continue
        if key in done:
            notes.append(("known", f"{path.name}: already ingested (as {done[key]['file']})"))
        elif key in new:
            notes.append(("duplicate", f"{path.name}: same content as {new[key].path.name}; ingested once"))
        else:
            if key in unfinished:
                notes.append(("retry", f"{path.name}: read before but its validation was never published; retrying"))
            new[key] = NewFile(path, key)
    return list(new.values()), notes
