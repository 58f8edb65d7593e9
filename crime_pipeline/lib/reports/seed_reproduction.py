"""The seed reproduction stage: the seed project's method on our incidents, honest and leaky.

`reproduce_seed` chooses a stratified sample of the primary city's incidents from their labels
alone, reads only those rows' wide columns, runs seed_method.reproduce on them and writes the
metrics (no network) to reports/seed_reproduction.json.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crime_pipeline.lib.cities.profiles import DEFAULT_CITY, get_profile, primary_city
from crime_pipeline.lib.lake.atomic import write_json
from crime_pipeline.lib.lake.reads import DeclaredReads
from crime_pipeline.lib.reports.seed_method import DISGUISES, SeedSettings, check_labels, reproduce, sample_index

SEED_RESULT_FILE = "seed_reproduction.json"
_log = logging.getLogger(__name__)


@dataclass
class SeedReproduced:
    """The seed method's metrics (honest and leaky) as written to reports/seed_reproduction.json."""

    doc: dict
    path: Path


def reproduce_seed(
    reads: DeclaredReads, settings: SeedSettings, device: str, log: logging.Logger = _log
) -> SeedReproduced:
    """The seed's method on a stratified sample of the primary city's incidents, honest and leaky."""
    layout = reads.layout
    table = layout.table("incidents")
    present = reads.parquet_schema(table).names
    # The sample is chosen from the labels alone; only its rows' wide columns (two of them text) are read.
    labels = reads.parquet(table, columns=["label", *(["city"] if "city" in present else [])])
    city = primary_city(labels["city"].unique()) if "city" in labels else DEFAULT_CITY
    if "city" in labels:  # the primary city's incidents (the default city when present)
        labels = labels[labels["city"] == city]
    classes = get_profile(city, lake_root=layout.root).class_names
    check_labels(labels["label"], classes)
    chosen = sample_index(labels["label"], settings)  # row positions in the table, in sample order
    wanted = ["label", "latitude", "longitude", "incident_datetime", *DISGUISES]  # only what the method reads
    keep = np.zeros(reads.parquet_rows(table), dtype=bool)
    keep[chosen] = True
    rows = reads.parquet_rows_where(table, keep, columns=[c for c in wanted if c in present]).to_pandas()
    rows = rows.set_axis(np.flatnonzero(keep)).loc[chosen]  # in the sample's order
    doc = reproduce(rows, settings, device, log=log.info, classes=classes, sampled_from=len(labels))
    doc["city"] = city
    path = write_json(layout.report_file(SEED_RESULT_FILE), doc)
    log.info(doc["sentence"])
    return SeedReproduced(doc=doc, path=path)
