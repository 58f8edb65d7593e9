"""The built-in data set: crime incidents whose true class probabilities are known, for any city.

`from crime_pipeline.lib import synthetic`, then `synthetic.generate_incidents(rows, seed, city=)`,
`synthetic.posterior(...)` (the Bayes limit) and `synthetic.write_export_files(...)`. By concern:
spec.py (the generating model, its parameters and version), sample.py (clean rows), posterior.py
(the exact P(type | place, time)), near_repeat.py (the self-exciting component, on by default),
intensity.py and expected.py (expected counts per cell and period: the forecast oracle's),
buffalo.py and chicago.py (the export layouts), dirt.py (dirt and re-issued records), generate.py
(`generate_incidents`) and export.py (CSV files, in chunks).
"""

from crime_pipeline.lib.synthetic.buffalo import EXPORT_COLUMNS
from crime_pipeline.lib.synthetic.chicago import CHICAGO_COLUMNS
from crime_pipeline.lib.synthetic.dirt import DIRT_RATES, REISSUED_RATE
from crime_pipeline.lib.synthetic.export import (
    CHUNK_ROWS,
    chunk_sizes,
    generate_chunks,
    write_export_csv,
    write_export_files,
)
from crime_pipeline.lib.synthetic.formats import DATETIME_FORMAT
from crime_pipeline.lib.synthetic.generate import GeneratedIncidents, generate_incidents
from crime_pipeline.lib.synthetic.posterior import posterior
from crime_pipeline.lib.synthetic.spec import (
    CLASSES,
    DEFAULT_ROWS,
    DEFAULT_SEED,
    GENERATOR_VERSION,
    HOTSPOTS,
    LAT_MAX,
    LAT_MIN,
    LON_MAX,
    LON_MIN,
    MODEL,
    NEAR_REPEAT,
    PRIMARY_TYPES,
    PRIORS,
    ROUNDED_FROM_YEAR,
    TYPE_TIME,
    YEARS,
    CitySpec,
    Hotspot,
    NearRepeat,
    generated_by,
    generator_version,
    spec,
    spec_for_version,
)

__all__ = [
    "CHICAGO_COLUMNS",
    "CHUNK_ROWS",
    "CLASSES",
    "DATETIME_FORMAT",
    "DEFAULT_ROWS",
    "DEFAULT_SEED",
    "DIRT_RATES",
    "EXPORT_COLUMNS",
    "GENERATOR_VERSION",
    "HOTSPOTS",
    "LAT_MAX",
    "LAT_MIN",
    "LON_MAX",
    "LON_MIN",
    "MODEL",
    "NEAR_REPEAT",
    "PRIMARY_TYPES",
    "PRIORS",
    "REISSUED_RATE",
    "ROUNDED_FROM_YEAR",
    "TYPE_TIME",
    "YEARS",
    "CitySpec",
    "GeneratedIncidents",
    "Hotspot",
    "NearRepeat",
    "chunk_sizes",
    "generate_chunks",
    "generate_incidents",
    "generator_version",
    "posterior",
    "spec",
    "spec_for_version",
    "generated_by",
    "write_export_csv",
    "write_export_files",
]
