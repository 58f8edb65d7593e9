"""Materialization metadata helpers shared by every stage."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd

from crime_pipeline.lib.lake.storage import content_hash

_TYPE_NAMES = {"b": "bool", "i": "int", "u": "int", "f": "float", "M": "datetime", "O": "string"}


def column_schema(frame: pd.DataFrame) -> dg.TableSchema:
    """A `dagster/column_schema` value describing a DataFrame's columns."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=str(c), type=_TYPE_NAMES.get(frame[c].dtype.kind, str(frame[c].dtype)))
            for c in frame.columns
        ]
    )


def table_metadata(frame: pd.DataFrame, path: Path) -> dict:
    """Row count, column schema and location: what a user looks for first on a table asset."""
    return {
        "dagster/row_count": dg.MetadataValue.int(len(frame)),
        "dagster/column_schema": column_schema(frame),
        "path": dg.MetadataValue.path(str(path)),
    }


def column_lineage(deps: dict[str, list[tuple[str, str]]]) -> dg.TableColumnLineage:
    """`dagster/column_lineage` from {column: [(upstream asset, upstream column), ...]}."""
    return dg.TableColumnLineage(
        deps_by_column={
            column: [dg.TableColumnDep(asset_key=dg.AssetKey(asset), column_name=name) for asset, name in sources]
            for column, sources in deps.items()
        }
    )


def same_name_lineage(frame: pd.DataFrame, upstream: str, upstream_columns) -> dict[str, list[tuple[str, str]]]:
    """Columns that pass through unchanged from `upstream`."""
    return {c: [(upstream, c)] for c in frame.columns if c in set(upstream_columns)}


def content_version(*paths: Path) -> dg.DataVersion:
    """A data version from the bytes of what an asset published: Dagster marks what lies below
    stale only when those bytes change (a rebuild that yields the same table changes nothing)."""
    return dg.DataVersion(content_hash(*paths))
