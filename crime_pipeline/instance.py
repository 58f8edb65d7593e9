"""The persistent Dagster instance: DAGSTER_HOME with the project's settings, SQLite or PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

from crime_pipeline.lib.lake.atomic import write_text
from crime_pipeline.lib.lake.layout import PROJECT_ROOT

SQLITE_HOME = PROJECT_ROOT / ".dagster_home"  # committed dagster.yaml; storage under it (git-ignored)
POSTGRES_HOME = PROJECT_ROOT / ".dagster_home_postgres"  # generated: the same settings plus PostgreSQL storage
POSTGRES_HOME_ENV = "CRIME_PIPELINE_PG_HOME"  # overrides POSTGRES_HOME (tests point it at a temp folder)
POSTGRES_STORAGE = """
storage:
  postgres:
    postgres_url:
      env: DAGSTER_PG_URL
"""


def prepare_dagster_home() -> Path:
    """Set DAGSTER_HOME (unless the user did) and return it.

    SQLite under `.dagster_home` by default. With DAGSTER_PG_URL set, `.dagster_home_postgres`
    (or CRIME_PIPELINE_PG_HOME), whose dagster.yaml is the project's settings plus PostgreSQL run,
    event and schedule storage reading the URL from the environment (needs `pip install -e '.[postgres]'`).
    """
    if os.environ.get("DAGSTER_HOME"):
        home = Path(os.environ["DAGSTER_HOME"])
    elif os.environ.get("DAGSTER_PG_URL"):
        home = Path(os.environ.get(POSTGRES_HOME_ENV) or POSTGRES_HOME)
        base = (SQLITE_HOME / "dagster.yaml").read_text()
        write_text(home / "dagster.yaml", base + POSTGRES_STORAGE)
    else:
        home = SQLITE_HOME
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    return home
