"""The Dagster side of declared reads: a step's reader allows its own assets and their dependencies.

`declared_reads(context, lake)` builds a `DeclaredReads` (lib/lake/reads.py) from the step's asset
graph; `reads_metadata(reads)` shows what it read as the `lake/reads` metadata entry.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import dagster as dg

from crime_pipeline.lib.lake.errors import StageError
from crime_pipeline.lib.lake.reads import DeclaredReads, UndeclaredReadError  # noqa: F401 (re-exported)
from crime_pipeline.resources import LakeResource


def reads_metadata(reads: DeclaredReads) -> dict:
    """The files a step read, shown in the UI as `lake/reads` (the lineage test checks them)."""
    return {"lake/reads": dg.MetadataValue.json(reads.reads)}


@contextlib.contextmanager
def stage_failures() -> Iterator[None]:
    """A stage's `StageError` becomes a `dg.Failure`: its sentence is the failure's description."""
    try:
        yield
    except StageError as exc:
        raise dg.Failure(description=str(exc), metadata=exc.metadata) from exc


def declared_reads(context: dg.AssetExecutionContext, lake: LakeResource, external: bool = False) -> DeclaredReads:
    """A reader for this step: its own assets, their dependencies, and raw inputs when `external`."""
    assets_def = context.assets_def
    keys = set(assets_def.keys) | set(assets_def.dependency_keys)
    allowed = {k.to_user_string() for k in keys} | ({"external"} if external else set())
    return DeclaredReads(lake.layout, context.op_execution_context.op.name, allowed)
