"""The exploration notebook executes on a small generated lake and says what the table says.

The notebook runs in a real kernel (nbclient) with CRIME_PIPELINE_LAKE pointing at a temporary
lake; each sentence it prints is parsed and checked against numbers this file computes on its own
from the published incidents table.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import dagster as dg
import nbformat
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from crime_pipeline.definitions import build_definitions
from crime_pipeline.lib.lake.layout import LakeLayout
from crime_pipeline.lib.reports import explore
from crime_pipeline.notebook import NotMaterializedError, load_table, published_table
from crime_pipeline_tests.conftest import REPO, Pipeline

NOTEBOOK = REPO / "notebooks" / "explore.ipynb"
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
NUMBER = r"([\d,]+)"


@pytest.fixture(scope="module")
def small_lake(tmp_path_factory) -> LakeLayout:
    """Ingestion through `incidents` on 3,000 generated rows (no features, no training)."""
    lake = LakeLayout(tmp_path_factory.mktemp("explore") / "lake").ensure()
    with dg.instance_for_test() as instance:
        pipe = Pipeline(build_definitions(str(lake.root)), instance, lake, downstream=["incidents"])
        pipe.generate("gen.csv", rows=3_000, seed=11)
        assert pipe.run() == 0, pipe.output
    return lake


def run_notebook(lake_root: Path, tmp_path: Path, monkeypatch) -> nbformat.NotebookNode:
    """Execute the notebook in a kernel of this interpreter (an explicit kernelspec, so no
    `python3` kernel installed elsewhere on the machine is picked up instead)."""
    spec = tmp_path / "kernels" / "crime-pipeline-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "crime_pipeline tests",
                "language": "python",
            }
        )
    )
    manager = KernelManager(
        kernel_name="crime-pipeline-test", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec.parent)])
    )
    monkeypatch.setenv("CRIME_PIPELINE_LAKE", str(lake_root))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, km=manager, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    return notebook


def stdout_of(cell) -> str:
    return "".join(o["text"] for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")


def pngs_of(cell) -> int:
    return sum(1 for o in cell.outputs if o.output_type == "display_data" and "image/png" in o.data)


def count(text: str) -> int:
    return int(text.replace(",", ""))


def test_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)


@pytest.mark.external
def test_notebook_runs_and_its_sentences_match_the_table(small_lake, tmp_path, monkeypatch):
    notebook = run_notebook(small_lake.root, tmp_path, monkeypatch)
    cells = [c for c in notebook.cells if c.cell_type == "code"]
    assert [c.outputs for c in cells if any(o.output_type == "error" for o in c.outputs)] == []
    # One figure per section (a one-city lake), then its sentence.
    assert [pngs_of(c) for c in cells] == [0, 1, 1, 1, 1]
    balance, heatmap, hotspots, trend = (stdout_of(c) for c in cells[1:])

    table = pq.read_table(small_lake.table("incidents")).to_pandas()
    n = len(table)
    assert f"{n:,} incidents" in stdout_of(cells[0])
    when = pd.to_datetime(table["incident_datetime"])
    labels = table["label"]
    counts = labels.value_counts()

    # Class balance: the largest and smallest types, their shares, the total.
    m = re.search(
        rf"Class distribution: (.+) is the largest class, ([\d.]+)% of {NUMBER} incidents, "
        r"and the smallest \((.+)\) is ([\d.]+)%",
        balance,
    )
    assert m, balance
    assert count(m[3]) == n
    assert counts[m[1]] == counts.max() and m[2] == f"{100 * counts.max() / n:.1f}"
    assert counts[m[4]] == counts.min() and m[5] == f"{100 * counts.min() / n:.2f}"

    # Hour by weekday: incidents at exactly noon (the export's default time) or on the 1st (its
    # default day) are left out of the hour x weekday grid; a type's busiest hour needs a known time.
    noon = (when.dt.hour == 12) & (when.dt.minute == 0) & (when.dt.second == 0)
    unknown = noon | (when.dt.day == 1)
    timed, timed_labels = when[~noon], labels[~noon]
    grid = np.zeros((7, 24), int)
    np.add.at(grid, (when[~unknown].dt.day_of_week.to_numpy(), when[~unknown].dt.hour.to_numpy()), 1)
    m = re.search(rf"busiest hour of the week is (\w+) (\d\d):00, ([\d.]+)% of {NUMBER} incidents", heatmap)
    assert m, heatmap
    assert count(m[4]) == grid.sum() == n - int(unknown.sum())
    assert grid[WEEKDAYS.index(m[1]), int(m[2])] == grid.max()
    assert m[3] == f"{100 * grid.max() / grid.sum():.2f}"
    assert f"{int(unknown.sum()):,} of {n:,} incidents" in heatmap and "12:00:00, or day, the 1st" in heatmap
    # ... and each type's busiest hour of day, for every type with at least 200 timed incidents.
    clause = heatmap.split("each type's busiest hour of day (types with at least 200 incidents): ")[1].split(". ")[0]
    eligible = [label for label, k in timed_labels.value_counts().items() if k >= 200]
    assert len(re.findall(r"\d\d:00", clause)) == len(eligible) >= 4
    for label in eligible:
        by_hour = timed[timed_labels == label].dt.hour.value_counts()
        m = re.search(rf"(?:^|, ){re.escape(label)} (\d\d):00", clause)
        assert m and by_hour[int(m[1])] == by_hour.max(), (label, clause)

    # Hotspots: the band whose densest 0.005-degree cell holds the largest share of it.
    placed = table[~noon].dropna(subset=["latitude", "longitude"])
    hour = pd.to_datetime(placed["incident_datetime"]).dt.hour
    bands = {"late night": (0, 5), "morning": (5, 12), "afternoon": (12, 18), "evening": (18, 24)}
    densest = {}
    for band, (lo, hi) in bands.items():
        rows = placed[(hour >= lo) & (hour < hi)]
        cells_of = pd.DataFrame({"a": np.floor(rows["latitude"] / 0.005), "b": np.floor(rows["longitude"] / 0.005)})
        densest[band] = cells_of.value_counts().max() / len(rows)
    m = re.search(r"the most concentrated band is ([a-z ]+), with ([\d.]+)% of its incidents", hotspots)
    assert m, hotspots
    assert densest[m[1]] == max(densest.values()) and m[2] == f"{100 * densest[m[1]]:.1f}"
    assert f"{int(noon.sum()):,} of {n:,} incidents" in hotspots and "default time, 12:00:00" in hotspots

    # Monthly trend: months from the first to the last, the busiest and quietest, the last year
    # against the first.
    index = (when.dt.year * 12 + when.dt.month - 1).to_numpy()
    per_month = np.bincount(index - index.min())
    name = lambda i: f"{(index.min() + i) // 12}-{(index.min() + i) % 12 + 1:02d}"  # noqa: E731
    m = re.search(
        rf"Monthly trend: {NUMBER} incidents over (\d+) months \((\S+) to (\S+)\); the busiest month "
        rf"was (\S+) with {NUMBER}, the quietest (\S+) with {NUMBER}; the last 12 months have ([\d.]+)% "
        rf"(more|fewer) incidents than the first 12 \({NUMBER} against {NUMBER}\)",
        trend,
    )
    assert m, trend
    assert count(m[1]) == n and int(m[2]) == len(per_month)
    assert (m[3], m[4]) == (name(0), name(len(per_month) - 1))
    assert (m[5], count(m[6])) == (name(int(per_month.argmax())), per_month.max())
    assert (m[7], count(m[8])) == (name(int(per_month.argmin())), per_month.min())
    first, last = per_month[:12].sum(), per_month[-12:].sum()
    assert (count(m[11]), count(m[12])) == (last, first)
    assert m[9] == f"{100 * abs(last / first - 1):.1f}" and m[10] == ("more" if last >= first else "fewer")


@pytest.mark.external
def test_notebook_names_the_asset_to_materialize_on_an_empty_lake(tmp_path, monkeypatch):
    empty = LakeLayout(tmp_path / "empty_lake").ensure()
    with pytest.raises(CellExecutionError) as failure:
        run_notebook(empty.root, tmp_path, monkeypatch)
    message = str(failure.value)
    assert "NotMaterializedError" in message
    assert f"asset incidents has not been materialized in the lake {empty.root}" in message
    assert "lake/incidents.parquet is missing" in message and "crime-pipeline run" in message


@pytest.mark.e2e
def test_load_table_reads_only_what_the_catalog_credits(small_lake, tmp_path):
    table = load_table("incidents", str(small_lake.root))
    assert len(table) == pq.read_metadata(small_lake.table("incidents")).num_rows
    assert published_table("incident_features") == "lake/incident_features.parquet"
    with pytest.raises(NotMaterializedError, match="asset incident_features has not been materialized"):
        load_table("incident_features", str(small_lake.root))
    with pytest.raises(ValueError, match="figures publishes no single lake table; assets that do: .*incidents"):
        load_table("figures", str(small_lake.root))
    with pytest.raises(KeyError, match="no asset not_an_asset in the definitions"):
        load_table("not_an_asset", str(small_lake.root))


def test_the_notebook_table_of_an_asset_comes_from_the_catalog():
    assert {
        name: published_table(name) for name in ("incidents", "incident_features", "dataset_splits", "model_evaluation")
    } == {
        "incidents": "lake/incidents.parquet",
        "incident_features": "lake/incident_features.parquet",
        "dataset_splits": "lake/dataset_splits.parquet",
        "model_evaluation": "lake/test_predictions.parquet",
    }
    for asset in ("raw_incidents", "incident_quarantine", "figures", "mlp_model"):  # partitioned, or no table
        with pytest.raises(ValueError, match=f"{asset} publishes no single lake table"):
            published_table(asset)


def two_cities() -> pd.DataFrame:
    """Two cities with different mixes: 60 Theft + 40 Assault in A, 10 Theft + 30 Robbery in B."""
    rng = np.random.default_rng(0)
    labels = ["Theft"] * 60 + ["Assault"] * 40 + ["Theft"] * 10 + ["Robbery"] * 30
    n = len(labels)
    return pd.DataFrame(
        {
            "city": ["A"] * 100 + ["B"] * 40,
            "label": labels,
            "incident_datetime": pd.Timestamp("2021-01-04 01:30")
            + pd.to_timedelta(rng.integers(0, 400 * 24, n), unit="h"),
            "latitude": 40 + rng.random(n) / 10,
            "longitude": -80 + rng.random(n) / 10,
        }
    )


def test_several_cities_get_a_sentence_and_a_panel_each():
    frame = two_cities()
    lines = explore.class_balance_sentence(frame).splitlines()
    assert lines == [
        "A: Class distribution: Theft is the largest class, 60.0% of 100 incidents, and the smallest (Assault) is "
        "40.00%; read every accuracy against this imbalance.",
        "B: Class distribution: Robbery is the largest class, 75.0% of 40 incidents, and the smallest (Theft) is "
        "25.00%; read every accuracy against this imbalance.",
    ]
    for sentence in (explore.hour_weekday_sentence, explore.hotspots_sentence, explore.monthly_trend_sentence):
        assert [line[:3] for line in sentence(frame).splitlines()] == ["A: ", "B: "]
    assert "Monthly trend: 40 incidents over" in explore.monthly_trend_sentence(frame).splitlines()[1]
    assert len(explore.hour_weekday_figures(frame)) == len(explore.hotspot_figures(frame)) == 2
    panels = [ax for ax in explore.class_balance_figure(frame).axes if ax.axison and ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["A: Class balance (100 incidents)", "B: Class balance (40 incidents)"]
    # One city, or none named: no prefixes, one figure.
    one = frame.assign(city="A")
    assert not explore.class_balance_sentence(one).startswith("A:")
    assert explore.class_balance_sentence(one) == explore.class_balance_sentence(frame.drop(columns="city"))
    assert len(explore.hour_weekday_figures(one)) == 1


def test_sentences_without_noon_flag_or_enough_rows():
    frame = two_cities().drop(columns="city")
    heatmap = explore.hour_weekday_sentence(frame)
    assert "12:00:00" not in heatmap and "busiest hour of day" not in heatmap  # no type reaches 200 incidents
    assert explore.monthly_trend_sentence(frame.iloc[:0]) == "Monthly trend: no incidents."
    gap = frame.iloc[:3].assign(incident_datetime=pd.to_datetime(["2021-01-05", "2021-03-09", "2021-03-10"]))
    assert explore.monthly_trend_sentence(gap) == (
        "Monthly trend: 3 incidents over 3 months (2021-01 to 2021-03); the busiest month was 2021-03 with 2, "
        "the quietest 2021-02 with 0."
    )

    # Two years and more: the last 12 months against the first 12, in words that fit the size.
    def year_on_year(first: int, last: int) -> str:
        stamps = ["2019-01-15"] * first + ["2020-06-15"] + ["2021-12-15"] * last
        rows = pd.DataFrame({"label": "Theft", "incident_datetime": pd.to_datetime(stamps)})
        return explore.monthly_trend_sentence(rows).split("; the last 12 months have ")[-1]

    assert year_on_year(4, 3) == "25.0% fewer incidents than the first 12 (3 against 4)."
    assert year_on_year(4, 6) == "50.0% more incidents than the first 12 (6 against 4)."
    assert year_on_year(2, 9) == "4.5 times as many incidents as the first 12 (9 against 2)."
    flagged = frame.assign(time_defaulted_noon=[True] * 5 + [False] * (len(frame) - 5))
    assert "of 135 incidents" in explore.hour_weekday_sentence(flagged)
    assert "5 of 140 incidents (3.6%) are left out" in explore.hour_weekday_sentence(flagged)
