"""The seed project's 97-99%, reproduced on our incidents with and without the label's disguises."""

import dagster as dg
import numpy as np

from crime_pipeline.defs.automation_conditions import REFRESH_WHEN_UPSTREAM_CHANGES
from crime_pipeline.defs.lake_io import declared_reads, reads_metadata
from crime_pipeline.deploy_tags import CPU_TRAINING
from crime_pipeline.lib.lake.atomic import write_json
from crime_pipeline.lib.cities.profiles import DEFAULT_CITY, get_profile, primary_city
from crime_pipeline.lib.reports.seed_method import DISGUISES, SeedSettings, check_labels, markdown, reproduce, sample_index
from crime_pipeline.resources import LakeResource, TorchDeviceResource

RESULT_FILE = "seed_reproduction.json"


class SeedReproductionConfig(dg.Config):
    """The seed's training settings, and how many incidents to spend on them."""

    epochs: int = 15
    batch_size: int = 256
    max_rows: int = 50_000  # stratified by type; 0 uses every incident
    max_categories: int = 30
    threads: int = 1  # torch CPU threads (measured: 2 threads cost 13x the CPU time on a busy machine); 0: torch's default
    seed: int = 0


@dg.asset(deps=["incidents"], group_name="reports", kinds={"pytorch", "json"}, code_version="1",
          automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES, pool="gpu", op_tags=CPU_TRAINING)
def seed_reproduction(context: dg.AssetExecutionContext, config: SeedReproductionConfig, lake: LakeResource,
                      torch_device: TorchDeviceResource) -> dg.MaterializeResult:
    """Where the seed project's 97-99% came from: its own method run on our incidents twice.

    Random split, MinMax latitude and longitude, one-hot hour and weekday, the seed's 128-64-32
    network for 15 epochs (batch 256, a torch DataLoader): once honest, once with the label's
    disguises (incident_type_primary, incident_description) one-hot encoded. On a stratified sample
    of `max_rows` incidents. Only the metrics are kept (reports/seed_reproduction.json): neither
    network is saved, and neither can be used by `crime-pipeline predict`.
    """
    layout = lake.layout
    reads = declared_reads(context, lake)
    table = layout.table("incidents")
    present = reads.parquet_schema(table).names
    # The sample is chosen from the labels alone; only its rows' wide columns (two of them text) are read.
    labels = reads.parquet(table, columns=["label", *(["city"] if "city" in present else [])])
    city = primary_city(labels["city"].unique()) if "city" in labels else DEFAULT_CITY
    if "city" in labels:  # the primary city's incidents (the default city when present)
        labels = labels[labels["city"] == city]
    classes = get_profile(city).class_names
    check_labels(labels["label"], classes)
    settings = SeedSettings(**config.model_dump())
    chosen = sample_index(labels["label"], settings)  # row positions in the table, in sample order
    wanted = ["label", "latitude", "longitude", "incident_datetime", *DISGUISES]  # only what the method reads
    keep = np.zeros(reads.parquet_rows(table), dtype=bool)
    keep[chosen] = True
    rows = reads.parquet_rows_where(table, keep, columns=[c for c in wanted if c in present]).to_pandas()
    rows = rows.set_axis(np.flatnonzero(keep)).loc[chosen]  # in the sample's order
    device = torch_device.resolve()
    doc = reproduce(rows, settings, device, log=context.log.info, classes=classes, sampled_from=len(labels))
    doc["city"] = city
    path = write_json(layout.report_file(RESULT_FILE), doc)
    context.log.info(doc["sentence"])
    honest, leaky = doc["variants"]["honest"], doc["variants"]["leaky"]
    return dg.MaterializeResult(
        metadata={
            # Our own models sit beside these in the report (crime_report), which also reads model_evaluation.
            "comparison": dg.MetadataValue.md(markdown(doc, None)),
            "sentence": doc["sentence"],
            "path": dg.MetadataValue.path(str(path)),
            "honest/accuracy": honest["accuracy"],
            "leaky/accuracy": leaky["accuracy"],
            "majority/accuracy": doc["majority"]["accuracy"],
            "rows_used": doc["rows"]["used"],
            "seconds": doc["seconds"],
            "device": device,
            **reads_metadata(reads),
        }
    )

