"""The reporting time zone (KPI_SPEC section 5): months and first-touch dates
are taken in `timezone`, durations stay differences of instants, and neither
the machine's TZ nor a change of the setting between builds changes a number
a clean build would give.

A tiny export, with every timestamp in UTC:
- lead L1 created 2026-01-31 23:30: 15:30 on Jan 31 in Los Angeles (UTC-8),
  08:30 on Feb 1 in Tokyo (UTC+9); answered by act1 at 2026-02-01 00:30 (60
  minutes later in every zone);
- lead L2 created 2026-03-15 12:00 (March everywhere);
- deal o1 (r1) created 2026-03-01 07:30: Feb 28 23:30 in Los Angeles, Mar 1
  in UTC and Tokyo; won, close_date 2026-03-20, so 20 days to close in Los
  Angeles (Feb 28 -> Mar 20) and 19 in UTC and Tokyo (Mar 1 -> Mar 20);
- o1 enters prospecting 2026-03-07 12:00 and qualification 2026-03-09 12:00:
  Los Angeles moves its clocks forward on 2026-03-08 at 02:00, so the wall
  clock shows 47 hours, but the interval lasts 48 hours: 2.0 days.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest
from test_invariants import write_export

from runner import Project
from runner.errors import ProjectError
from runner.reporting import Reporter

ROOT = Path(__file__).resolve().parents[1]
JAN, FEB, MAR = date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)
EXPORT: dict[str, list[dict[str, str]]] = {
    "teams": [{"team_id": "T1", "team_name": "East"}],
    "users": [
        {
            "user_id": "r1",
            "full_name": "Rep One",
            "role": "rep",
            "team_id": "T1",
            "hired_at": "2025-01-01",
        },
    ],
    "accounts": [{"account_id": "a1", "account_name": "Acme", "created_at": "2025-01-01"}],
    "leads": [
        {"lead_id": "L1", "created_at": "2026-01-31 23:30:00", "owner_id": "r1", "status": "new"},
        {"lead_id": "L2", "created_at": "2026-03-15 12:00:00", "owner_id": "r1", "status": "new"},
    ],
    "pipeline_stages": [
        {"stage_name": "prospecting", "stage_order": "1", "is_closed": "false", "is_won": "false"},
        {
            "stage_name": "qualification",
            "stage_order": "2",
            "is_closed": "false",
            "is_won": "false",
        },
        {"stage_name": "closed_won", "stage_order": "3", "is_closed": "true", "is_won": "true"},
    ],
    "opportunities": [
        {
            "opportunity_id": "o1",
            "account_id": "a1",
            "owner_id": "r1",
            "amount": "100",
            "stage_name": "closed_won",
            "is_closed": "true",
            "is_won": "true",
            "created_at": "2026-03-01 07:30:00",
            "close_date": "2026-03-20",
        },
    ],
    "opportunity_stage_history": [
        {"opportunity_id": "o1", "stage_name": "prospecting", "entered_at": "2026-03-07 12:00:00"},
        {
            "opportunity_id": "o1",
            "stage_name": "qualification",
            "entered_at": "2026-03-09 12:00:00",
        },
        {"opportunity_id": "o1", "stage_name": "closed_won", "entered_at": "2026-03-20 09:00:00"},
    ],
    "quotas": [],
    "activities": [
        {
            "activity_id": "act1",
            "owner_id": "r1",
            "activity_type": "call",
            "occurred_at": "2026-02-01 00:30:00",
            "lead_id": "L1",
        },
    ],
    "subscriptions": [],
}


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tz") / "export"
    write_export(folder, EXPORT)
    return folder


def build(warehouse: Path, export: Path, **settings: Any) -> Project:
    project = Project.load(
        ROOT,
        warehouse=warehouse,
        raw_dir=export,
        target_path=warehouse.parent / "target",
        vars=settings,
        reporter=Reporter(stream=io.StringIO()),
    )
    project.load_raw()
    project.seed()
    result = project.run()
    assert result.exit_code == 0, [r.message for r in result.results if r.status == "error"]
    return project


def company(warehouse: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


LEADS = "select month, leads from marts.kpi_lead_conversion where level = 'company' order by 1"
DEAL = (
    "select first_touch_date, days_to_close, created_month "
    "from intermediate.int_opportunities_enriched"
)
STAGE = (
    "select month, stage_name, exits, total_days_in_stage from marts.kpi_stage_duration "
    "where level = 'company' and exits > 0 order by 1, 2"
)


@pytest.fixture(scope="module")
def los_angeles(tmp_path_factory: pytest.TempPathFactory, export: Path) -> Path:
    work = tmp_path_factory.mktemp("la")
    build(work / "w.duckdb", export, timezone="America/Los_Angeles")
    return work / "w.duckdb"


def test_a_lead_at_2330_utc_on_jan_31_is_january_in_los_angeles(los_angeles) -> None:
    # L1 is 15:30 on Jan 31 in Los Angeles; L2 is March; February has none
    assert company(los_angeles, LEADS) == [(JAN, 1), (FEB, 0), (MAR, 1)]


def test_the_same_lead_is_february_in_tokyo(tmp_path, export) -> None:
    build(tmp_path / "w.duckdb", export, timezone="Asia/Tokyo")
    # L1 is 08:30 on Feb 1 in Tokyo: the range starts in February (act1 too)
    assert company(tmp_path / "w.duckdb", LEADS) == [(FEB, 1), (MAR, 1)]


def test_first_touch_date_and_days_to_close_in_the_zone(los_angeles) -> None:
    # o1 created Feb 28 23:30 in Los Angeles: first touch Feb 28, Mar 20 - Feb 28 = 20
    # days; its created month is February there
    assert company(los_angeles, DEAL) == [(date(2026, 2, 28), 20, FEB)]


def test_a_stage_interval_across_a_dst_change_keeps_its_exact_duration(los_angeles) -> None:
    # prospecting 03-07 12:00 -> 03-09 12:00 UTC = 48 hours = 2.0 days, although
    # Los Angeles clocks show 04:00 -> 05:00 two days later (47 hours)
    # qualification 03-09 12:00 -> 03-20 09:00 = 10 days 21 hours = 10.875 days
    assert company(los_angeles, STAGE) == [
        (MAR, "prospecting", 1, 2.0),
        (MAR, "qualification", 1, 10.875),
    ]


def test_utc_is_the_default_and_the_machine_tz_never_matters(tmp_path, export) -> None:
    # a separate process whose TZ is UTC+14, where DuckDB's own TimeZone follows it
    warehouse = tmp_path / "w.duckdb"
    env = {**os.environ, "TZ": "Pacific/Kiritimati"}
    for name in ("KPI_WAREHOUSE", "KPI_RAW_DIR", "KPI_TARGET_PATH"):
        env.pop(name, None)
    args = ["--project-dir", str(ROOT), "--warehouse", str(warehouse)]
    args += ["--target-path", str(tmp_path / "target")]
    done = subprocess.run(
        [sys.executable, "-m", "runner", "build", *args, "--raw-dir", str(export)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert company(warehouse, LEADS) == [(JAN, 1), (FEB, 0), (MAR, 1)]  # L1 is Jan 31 UTC
    # first touch Mar 1 UTC: Mar 20 - Mar 1 = 19 days
    assert company(warehouse, DEAL) == [(date(2026, 3, 1), 19, MAR)]
    assert company(warehouse, STAGE)[0] == (MAR, "prospecting", 1, 2.0)


def test_changing_the_zone_rebuilds_the_incremental_models_as_a_clean_build_would(
    tmp_path, export, los_angeles
) -> None:
    warehouse = tmp_path / "w.duckdb"
    build(warehouse, export)  # UTC
    project = build(warehouse, export, timezone="America/Los_Angeles")
    log = project.reporter.stream.getvalue()  # type: ignore[attr-defined]
    assert (
        "Rebuilding int_activities_aggregated in full: its SQL, config or inputs' "
        "definitions changed since its last build." in log
    )
    for sql in (LEADS, DEAL, STAGE, "select * from marts.kpi_sales_effort order by all"):
        assert company(warehouse, sql) == company(los_angeles, sql)


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "america/los_angeles", "", 5])
def test_an_unknown_zone_is_a_clear_error(tmp_path, zone) -> None:
    with pytest.raises(ProjectError, match="timezone must be an IANA time zone name"):
        Project.load(
            ROOT,
            warehouse=tmp_path / "w.duckdb",
            target_path=tmp_path / "target",
            vars={"timezone": zone},
        )
