"""Where everything lives under one lake root."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from crime_pipeline.lib.lake import storage

PROJECT_ROOT = Path(__file__).resolve().parents[3]  # the checkout: pyproject.toml, data_lake/


def default_lake_root() -> str:
    """`CRIME_PIPELINE_LAKE` (a folder or an s3:// URL), else `data_lake/` next to the project (else in
    the working directory)."""
    if os.environ.get("CRIME_PIPELINE_LAKE"):
        return os.environ["CRIME_PIPELINE_LAKE"]
    base = PROJECT_ROOT if (PROJECT_ROOT / "pyproject.toml").exists() else Path.cwd()
    return str(base / "data_lake")



PARTITION_KEY_LENGTH = 16  # hex digits of the file's SHA-256 used as its partition key


def partition_key_for(sha256: str) -> str:
    return sha256[:PARTITION_KEY_LENGTH]


@dataclass(frozen=True)
class LakeLayout:
    """Paths of every table, model and report under one lake root."""

    root: Path

    @property
    def incoming(self) -> Path:
        return self.root / "raw" / "incoming"

    @property
    def generated_manifest(self) -> Path:
        return self.root / "raw" / "generated.json"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger" / "ingested.json"

    def raw_table(self, key: str) -> Path:
        return self.root / "lake" / "raw_incidents" / f"{key}.parquet"

    def validated_table(self, key: str) -> Path:
        return self.root / "lake" / "validated_incidents" / f"{key}.parquet"

    def quarantine_table(self, key: str) -> Path:
        return self.root / "quarantine" / f"{key}.parquet"

    def validation_summary(self, key: str) -> Path:
        return self.root / "lake" / "validated_incidents" / f"{key}.summary.json"

    def table(self, name: str) -> Path:
        return self.root / "lake" / f"{name}.parquet"

    def lake_file(self, name: str) -> Path:
        return self.root / "lake" / name

    @property
    def models(self) -> Path:
        """Published models: what `predict` and the reports load."""
        return self.root / "models"

    @property
    def model_candidates(self) -> Path:
        """Models as trained, before model_evaluation's checks publish them."""
        return self.root / "models" / "candidates"

    def report_file(self, name: str) -> Path:
        return self.root / "reports" / name

    def ensure(self) -> "LakeLayout":
        if storage.is_remote(self.root):  # no folders on an object store; fail early if unreachable
            storage.check_reachable(self.root)
            return self
        for folder in (self.incoming, self.root / "lake", self.root / "quarantine", self.root / "models",
                       self.root / "reports", self.ledger.parent):
            folder.mkdir(parents=True, exist_ok=True)
        return self
