"""Read materialized assets from a notebook, through the project's definitions.

`load_table("incidents")` builds the Definitions (the lake root from `CRIME_PIPELINE_LAKE`, as
everywhere), checks the asset exists in them, takes the `lake` resource they configure, and reads
the one table the lake catalog (lib/lake/catalog.py DATASETS) says the asset publishes, with the same
checked reader the assets use. Only published tables are read, never CSVs or staged files.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd

from crime_pipeline.lib.lake.catalog import DATASETS, Dataset, tables_published_by
from crime_pipeline.lib.lake.reads import DeclaredReads


class NotMaterializedError(RuntimeError):
    """The asset's table is not in the lake: materialize the asset first."""


def published_dataset(asset: str) -> Dataset:
    """The catalog's entry for the one lake table (`lake/<name>.parquet`) that `asset` publishes."""
    tables = tables_published_by(asset)
    if len(tables) != 1:
        with_tables = sorted({a for d in DATASETS for a in d.publishers if len(tables_published_by(a)) == 1})
        raise ValueError(f"{asset} publishes no single lake table; assets that do: {', '.join(with_tables)}")
    return tables[0]


def published_table(asset: str) -> str:
    """The lake table (relative path `lake/<name>.parquet`) that `asset` publishes."""
    return published_dataset(asset).pattern


def load_table(
    asset: str | dg.AssetKey, lake_root: str | None = None, defs: dg.Definitions | None = None
) -> pd.DataFrame:
    """The published table of `asset`, from the lake the definitions are configured with."""
    from crime_pipeline.definitions import build_definitions

    key = dg.AssetKey.from_coercible(asset)
    name = key.to_user_string()
    defs = defs if defs is not None else build_definitions(lake_root)
    if key not in defs.resolve_asset_graph().get_all_asset_keys():
        raise KeyError(f"no asset {name} in the definitions")
    layout = defs.resources["lake"].layout
    table = published_dataset(name)
    relative, path = table.pattern, layout.path(table.name)
    reads = DeclaredReads(layout, "notebook", {name})  # refuses a file the catalog does not credit to it
    if not reads.exists(path):
        raise NotMaterializedError(
            f"asset {name} has not been materialized in the lake {layout.root} ({relative} is missing): "
            f"materialize {name} first, with `crime-pipeline run` or in the UI (`crime-pipeline ui`, select "
            f"{name}, Materialize); set CRIME_PIPELINE_LAKE if the lake is elsewhere"
        )
    return reads.parquet(path)
