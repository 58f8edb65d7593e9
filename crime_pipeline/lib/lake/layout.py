"""Where everything lives under one lake root: the catalog's datasets (catalog.py) as paths."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from crime_pipeline.lib.lake import catalog, storage

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
    """Paths of every table, model and report under one lake root, each looked up in the catalog
    (catalog.py DATASETS): a path the catalog does not declare cannot be built here."""

    root: Path

    def path(self, dataset: str, **fields: str) -> Path:
        """One file of a dataset, e.g. `path("raw_incidents", partition=key)`."""
        return self._declared(catalog.dataset(dataset).fill(**fields), dataset)

    def folder(self, dataset: str) -> Path:
        """The folder a dataset's files live in (its pattern's folder part)."""
        return self._join(catalog.dataset(dataset).folder)

    def _join(self, relative: str) -> Path:
        path = self.root
        for part in relative.split("/") if relative else ():
            path = path / part
        return path

    def _declared(self, relative: str, dataset: str | None = None) -> Path:
        found = [d.name for d in catalog.datasets_at(relative)]
        if len(found) != 1 or (dataset and found[0] != dataset):
            raise ValueError(
                f"{relative} is not a file of {dataset or 'any dataset'} in the lake catalog"
                + (f" (it matches {', '.join(found)})" if found else "")
            )
        return self._join(relative)

    @property
    def incoming(self) -> Path:
        return self.folder("incoming")

    @property
    def generated_manifest(self) -> Path:
        return self.path("generated_manifest")

    @property
    def ledger(self) -> Path:
        return self.path("ledger")

    @property
    def open_data_pull_state(self) -> Path:
        return self.path("open_data_pull_state")

    def open_data_pull_file(self, stamp: str) -> Path:
        return self.path("open_data_pull_file", stamp=stamp)

    def raw_table(self, key: str) -> Path:
        return self.path("raw_incidents", partition=key)

    def validated_table(self, key: str) -> Path:
        return self.path("validated_incidents", partition=key)

    def quarantine_table(self, key: str) -> Path:
        return self.path("incident_quarantine", partition=key)

    def validation_summary(self, key: str) -> Path:
        return self.path("validation_summary", partition=key)

    def table(self, name: str) -> Path:
        """A whole table in lake/ by its dataset name (`incidents`, `dataset_splits`...)."""
        if catalog.dataset(name).format != "parquet":
            raise ValueError(f"dataset {name} is not a table")
        return self.path(name)

    def lake_file(self, name: str) -> Path:
        """A file in lake/ by its file name (`label_map.json`); it must be a declared dataset's."""
        return self._declared(f"lake/{name}")

    @property
    def models(self) -> Path:
        """Published models: what `predict` and the reports load."""
        return self.folder("model")

    @property
    def model_candidates(self) -> Path:
        """Models as trained, before model_evaluation's checks publish them."""
        return self.folder("model_candidate")

    def report_file(self, name: str) -> Path:
        """A file in reports/ by its file name (`evaluation.json`, a figure); "" is the folder."""
        return self._declared(f"reports/{name}") if name else self.folder("evaluation")

    def ensure(self) -> LakeLayout:
        if storage.is_remote(self.root):  # no folders on an object store; fail early if unreachable
            storage.check_reachable(self.root)
            return self
        # every dataset's top folder, and the incoming folder where files are dropped
        tops = dict.fromkeys(d.pattern.split("/")[0] for d in catalog.DATASETS)
        for folder in (self.incoming, *(self._join(top) for top in tops)):
            folder.mkdir(parents=True, exist_ok=True)
        return self
