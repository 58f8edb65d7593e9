"""The built-in synthetic data set (see generator.py for the generating model)."""

from crime_pipeline.lib.synthetic.generator import *  # noqa: F403
from crime_pipeline.lib.synthetic.generator import _version  # noqa: F401
