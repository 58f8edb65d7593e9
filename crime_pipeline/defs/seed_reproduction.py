"""The seed project's 97-99%, reproduced on our incidents with and without the label's disguises.

The work is lib/reports/seed_reproduction.py's `reproduce_seed`; `SeedReproductionConfig`, the
run config, is derived from `SeedSettings` (lib/reports/seed_method.py), the one declaration.
"""

import dagster as dg

from crime_pipeline.defs.automation_conditions import REFRESH_WHEN_UPSTREAM_CHANGES
from crime_pipeline.defs.config import config_from_settings, first_paragraph, settings_of
from crime_pipeline.defs.lake_io import declared_reads, reads_metadata
from crime_pipeline.deploy_tags import CPU_TRAINING
from crime_pipeline.lib.reports.seed_method import SeedSettings, markdown
from crime_pipeline.lib.reports.seed_reproduction import reproduce_seed
from crime_pipeline.resources import LakeResource, TorchDeviceResource

# The run config of seed_reproduction; its description is SeedSettings' first paragraph.
SeedReproductionConfig = config_from_settings("SeedReproductionConfig", first_paragraph(SeedSettings), SeedSettings)


@dg.asset(
    deps=["incidents"],
    group_name="reports",
    kinds={"pytorch", "json"},
    code_version="1",
    automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
    pool="gpu",
    op_tags=CPU_TRAINING,
)
def seed_reproduction(
    context: dg.AssetExecutionContext,
    config: SeedReproductionConfig,
    lake: LakeResource,
    torch_device: TorchDeviceResource,
) -> dg.MaterializeResult:
    """Where the seed project's 97-99% came from: its own method run on our incidents twice.

    Random split, MinMax latitude and longitude, one-hot hour and weekday, the seed's 128-64-32
    network for 15 epochs (batch 256, a torch DataLoader): once honest, once with the label's
    disguises (incident_type_primary, incident_description) one-hot encoded. On a stratified sample
    of `max_rows` incidents. Only the metrics are kept (reports/seed_reproduction.json): neither
    network is saved, and neither can be used by `crime-pipeline predict`.
    """
    reads = declared_reads(context, lake)
    device = torch_device.resolve()
    seed = reproduce_seed(reads, settings_of(config, SeedSettings), device, log=context.log)
    doc = seed.doc
    honest, leaky = doc["variants"]["honest"], doc["variants"]["leaky"]
    return dg.MaterializeResult(
        metadata={
            # Our own models sit beside these in the report (crime_report), which also reads model_evaluation.
            "comparison": dg.MetadataValue.md(markdown(doc, None)),
            "sentence": doc["sentence"],
            "path": dg.MetadataValue.path(str(seed.path)),
            "honest/accuracy": honest["accuracy"],
            "leaky/accuracy": leaky["accuracy"],
            "majority/accuracy": doc["majority"]["accuracy"],
            "rows_used": doc["rows"]["used"],
            "seconds": doc["seconds"],
            "device": device,
            **reads_metadata(reads),
        }
    )
