"""The scheduled pull against a local SODA-like server: paging, retries, the watermark, bad pages."""

from __future__ import annotations

import json

import dagster as dg
import pandas as pd
import pytest

from crime_pipeline.defs.open_data import open_data_pull, open_data_schedule
from crime_pipeline.lib.ingest.open_data import SodaSettings
from crime_pipeline.lib.lake.parquet import read_parquet
from crime_pipeline.resources import LakeResource, OpenDataResource
from crime_pipeline_tests.soda_server import SodaServer, api_rows


def pull(lake, server: SodaServer):
    return dg.materialize(
        [open_data_pull],
        resources={
            "lake": LakeResource(root=str(lake.root)),
            "open_data": OpenDataResource(
                base_url=server.url, page_size=4, max_retries=2, backoff_seconds=0.01, app_token="token-123"
            ),
        },
        raise_on_error=False,
    )


def test_pull_pages_retries_and_writes_one_csv_the_pipeline_ingests(lake, pipeline):
    with SodaServer(api_rows(10)) as server:
        server.fail_next = 1  # a transient 500 before the first page
        result = pull(lake, server)
        assert result.success
        [written] = list(lake.incoming.iterdir())
        assert written.name.startswith("open_data_pull_") and written.suffix == ".csv"
        assert [int(q["$offset"]) for q in server.requests] == [0, 0, 4, 8]  # retry, then three pages
        assert "$where" not in server.requests[0]  # the first pull asks for everything
        assert {h.get("X-App-Token") for h in server.headers} == {"token-123"}
        frame = pd.read_csv(written, dtype=str)
        assert len(frame) == 10 and frame["case_number"].is_unique
        state = json.loads((lake.ledger.parent / "open_data_pull.json").read_text())
        assert state["last_updated_at"] == max(r[":updated_at"] for r in server.rows)
        [materialization] = result.asset_materializations_for_node("open_data_pull")
        assert materialization.metadata["pages_fetched"].value == 3
        assert materialization.metadata["watermark"].value == state["last_updated_at"]

        # The next pull asks only for rows updated since the watermark; nothing new, nothing written.
        server.requests.clear()
        assert pull(lake, server).success
        assert server.requests[0]["$where"] == f":updated_at > '{state['last_updated_at']}'"
        assert len(list(lake.incoming.iterdir())) == 1

    assert pipeline.run() == 0, pipeline.output
    incidents = read_parquet(lake.table("incidents"))
    assert len(incidents) == 10  # API layout: ISO datetimes and snake_case names ingest cleanly


@pytest.mark.e2e
def test_a_malformed_page_fails_clearly_and_writes_nothing(lake):
    with SodaServer(api_rows(10)) as server:
        server.malformed_offsets = {4}
        result = pull(lake, server)
    assert not result.success
    failure = result.failure_data_for_node("open_data_pull")
    assert "page at offset 4 is not JSON" in failure.user_failure_data.description
    assert list(lake.incoming.iterdir()) == []
    assert not (lake.ledger.parent / "open_data_pull.json").exists()


@pytest.mark.e2e
def test_persistent_server_errors_give_up_after_the_retries(lake):
    with SodaServer(api_rows(3)) as server:
        server.fail_next = 10
        result = pull(lake, server)
        assert not result.success
        assert len(server.requests) == 3  # one try and two retries
    assert list(lake.incoming.iterdir()) == []


def test_schedule_is_daily_in_buffalo_time_and_off_until_enabled():
    assert open_data_schedule.cron_schedule == "0 6 * * *"
    assert open_data_schedule.execution_timezone == "America/New_York"
    assert open_data_schedule.default_status == dg.DefaultScheduleStatus.STOPPED


def test_the_resource_and_the_client_share_the_documented_limits():
    defaults = OpenDataResource().settings()
    assert defaults == SodaSettings("https://data.buffalony.gov", "d6g9-xbgu")
    assert (defaults.max_pages, defaults.max_page_bytes, defaults.max_total_bytes) == (100, 256 * 2**20, 2**30)
    assert (defaults.timeout_seconds, defaults.deadline_seconds) == (120.0, 3600.0)
