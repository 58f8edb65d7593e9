"""Shared fixtures: a temporary lake, its Definitions, an ephemeral instance, generated data."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from crime_pipeline.definitions import build_definitions
from crime_pipeline.lib import synthetic
from crime_pipeline.lib.ingest.raw_csv import sha256_file
from crime_pipeline.lib.lake.layout import LakeLayout
from crime_pipeline.lib.lake.ledger import record_generated
from crime_pipeline.orchestrate import run_pipeline
from crime_pipeline_tests.tooling import tiers

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"
API_SAMPLE = FIXTURES / "buffalo_api_sample.csv"


@pytest.fixture
def lake(tmp_path: Path) -> LakeLayout:
    return LakeLayout(tmp_path / "lake").ensure()


@pytest.fixture
def defs(lake: LakeLayout) -> dg.Definitions:
    return build_definitions(str(lake.root))


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


class Pipeline:
    """Runs `crime-pipeline run`'s logic against a temporary lake and instance, keeping its output."""

    def __init__(
        self, defs: dg.Definitions, instance: dg.DagsterInstance, lake: LakeLayout, downstream: list[str] | None = None
    ):
        self.defs, self.instance, self.lake, self.downstream = defs, instance, lake, downstream
        self.output: list[str] = []

    def run(self) -> int:
        self.output.clear()
        return run_pipeline(self.defs, self.instance, echo=self.output.append, downstream=self.downstream)

    def drop(self, name: str, data: bytes | Path) -> Path:
        target = self.lake.incoming / name
        target.write_bytes(data.read_bytes() if isinstance(data, Path) else data)
        return target

    def generate(self, name: str, rows: int, seed: int) -> synthetic.GeneratedIncidents:
        data = synthetic.generate_incidents(rows, seed)
        path = synthetic.write_export_csv(data, self.lake.incoming / name)
        record_generated(
            self.lake,
            sha256_file(path),
            {"file": name, "rows": rows, "seed": seed, "generator_version": synthetic.GENERATOR_VERSION},
        )
        return data


@pytest.fixture
def pipeline(defs, instance, lake) -> Pipeline:
    """Ingestion through the merged incidents table (training is tested in its own module)."""
    return Pipeline(defs, instance, lake, downstream=["incidents"])


def lake_snapshot(lake: LakeLayout) -> dict[str, bytes]:
    """Every file under the lake except the incoming folder, with its bytes."""
    return {
        str(p.relative_to(lake.root)): p.read_bytes()
        for p in sorted(lake.root.rglob("*"))
        if p.is_file() and lake.incoming not in p.parents
    }


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """The whole pipeline (through the report) on 20,000 generated rows, run once per test session:
    (lake, definitions, the instance that recorded the runs)."""
    lake = LakeLayout(tmp_path_factory.mktemp("trained") / "lake").ensure()
    with dg.instance_for_test() as instance:
        defs = build_definitions(str(lake.root))
        pipe = Pipeline(defs, instance, lake)
        pipe.generate("gen.csv", rows=20_000, seed=8)
        assert pipe.run() == 0, pipe.output
        yield lake, defs, instance


@pytest.fixture(scope="session")
def trained(trained_run):
    """(lake, splits, split summary) of the session's trained lake."""
    import json

    from crime_pipeline.lib.lake.parquet import read_parquet

    lake = trained_run[0]
    splits = read_parquet(lake.table("dataset_splits"))
    info = json.loads(lake.lake_file("dataset_splits.json").read_text())
    return lake, splits, info


# Test tiers (crime_pipeline_tests/tooling/tiers.py): one marker per test, added here where a rule
# holds; the guard fails a fast-tier test that starts a process or launches a Dagster run.
def pytest_configure(config):
    tiers.install()
    config.pluginmanager.register(tiers.TierGuard(), "tier_guard")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        markers = [m.name for m in item.iter_markers()]
        if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
            markers.append("hypothesis")  # its own marker comes after this hook
        if not tiers.tier_markers(markers):
            rule = tiers.rule_tier(item.nodeid, item.fixturenames, markers)
            if rule:
                item.add_marker(rule[0])
