"""The HubSpot mapping (SOURCES.md), rule by rule, on hand-made replicated tables.

`tests/fixtures/hubspot_small/` holds HubSpot objects replicated as snake_case
tables, as replication tools write them (with their `_fivetran_*` columns).
Owners: 101 Ann Lee (team 7 East, primary), 102 Björn Ray (no team,
deactivated: no active_user_id, updated 2025-03-05). Deals: 901 won 2000
(101), 902 lost (102), 903 open and unowned, 904 merged into 901, 905 deleted
at the source. Contacts: 301 (owner 101, associated with won 901), 302
(unowned, associated with lost 902), 303 deleted. No quotas, no
subscriptions. Each case is (name, SQL, expected rows), the arithmetic above it.
"""

from __future__ import annotations

import shutil
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from conftest import assert_contract_columns

from runner import Project
from runner.crm_formats import detect_format

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "hubspot_small"
STG = "staging.stg_hubspot__"
COMPANY = "level = 'company'"
JAN, FEB = date(2025, 1, 1), date(2025, 2, 1)


def build(raw_dir: Path, work: Path) -> tuple[Project, Path]:
    path = work / "warehouse.duckdb"
    project = Project.load(ROOT, warehouse=path, raw_dir=raw_dir, target_path=work / "target")
    return project, path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, Path]:
    project, path = build(FIXTURE, tmp_path_factory.mktemp("hs"))
    result = project.build()
    assert result.exit_code == 0, result.summary
    return project, path


def query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


CASES: list[tuple[str, str, list[tuple[Any, ...]]]] = [
    # owners: first + last name; the primary team, else no_team; 102 has no
    # active_user_id -> terminated on the date of updated_at
    (
        "users_from_owners",
        f"select user_id, full_name, role, team_id, terminated_at from {STG}users order by 1",
        [
            ("101", "Ann Lee", "rep", "7", None),
            ("102", "Björn Ray", "rep", "no_team", date(2025, 3, 5)),
        ],
    ),
    (
        "teams_with_no_team",
        f"select team_id, team_name from {STG}teams order by 1",
        [("7", "East"), ("no_team", "No team")],
    ),
    # stage ids are the names, the label kept; display_order starts at 0 -> + 1
    (
        "stages_by_id_order_plus_one",
        f"select stage_name, stage_order, is_closed, is_won, stage_label "
        f"from {STG}pipeline_stages order by stage_order",
        [
            ("appointmentscheduled", 1, False, False, "Appointment scheduled"),
            ("qualifiedtobuy", 2, False, False, "Qualified to buy"),
            ("closedwon", 3, True, True, "Closed won"),
            ("closedlost", 4, True, False, "Closed lost"),
        ],
    ),
    # deals: 904 merged and 905 deleted are gone; account = first deal_company
    # (903 has none -> no_account); 903 unowned; close_date only when closed
    (
        "deals_merged_deleted_account_close_date",
        f"select opportunity_id, account_id, owner_id, amount, is_closed, is_won, close_date "
        f"from {STG}opportunities order by 1",
        [
            ("901", "501", "101", Decimal("2000.0000"), True, True, date(2025, 2, 10)),
            ("902", "501", "102", None, True, False, date(2025, 2, 14)),
            ("903", "no_account", "unowned", Decimal("300.0000"), False, False, None),
        ],
    ),
    # deal_stage: 901's repeated appointmentscheduled row collapses; 902's
    # inactive (_fivetran_active false) row is dropped
    (
        "history_active_rows_stage_changes_only",
        f"select opportunity_id, stage_name, entered_at "
        f"from {STG}opportunity_stage_history order by 1, 3",
        [
            ("901", "appointmentscheduled", datetime(2025, 1, 5, 10)),
            ("901", "closedwon", datetime(2025, 2, 10, 15)),
            ("902", "qualifiedtobuy", datetime(2025, 1, 8)),
            ("902", "closedlost", datetime(2025, 2, 14)),
            ("903", "appointmentscheduled", datetime(2025, 2, 1)),
        ],
    ),
    # contacts: lifecycle dates; converted through the won associated deal 901;
    # 302's only deal is lost -> its lead status; 303 deleted
    (
        "leads_lifecycle_dates_and_won_deal",
        f"select lead_id, owner_id, status, mql_at, sql_at, converted_opportunity_id "
        f"from {STG}leads order by 1",
        [
            ("301", "101", "converted", datetime(2025, 1, 3), datetime(2025, 1, 4), "901"),
            ("302", "unowned", "in_progress", None, None, None),
        ],
    ),
    # engagements: type from the table; 402 has no property owner -> the
    # engagement's owner 102, no hs_timestamp -> its createdate, two contacts
    # -> the first by id (302); 403 a meeting at its start time, on deal 901
    (
        "activities_from_engagements",
        f"select activity_id, owner_id, activity_type, occurred_at, lead_id, opportunity_id "
        f"from {STG}activities order by 1",
        [
            ("401", "101", "call", datetime(2025, 1, 2, 8, 20), "301", None),
            ("402", "102", "email", datetime(2025, 2, 3, 9, 30), "302", None),
            ("403", "101", "meeting", datetime(2025, 1, 20, 14), None, "901"),
        ],
    ),
    # win rate Feb: 901 won, 902 lost -> 1 / 2
    (
        "mart_win_rate",
        f"select month, won_deals, lost_deals, win_rate from marts.kpi_win_rate "
        f"where {COMPANY} order by 1",
        [(JAN, 0, 0, None), (FEB, 1, 1, 0.5)],
    ),
    # days to close of 901: created 2025-01-05 (meeting 403 is later) ->
    # 2025-02-10 - 2025-01-05 = 26 + 10 = 36
    (
        "mart_days_to_close",
        f"select month, won_deals, total_days_to_close from marts.kpi_days_to_close "
        f"where {COMPANY} order by 1",
        [(JAN, 0, 0), (FEB, 1, 36)],
    ),
    # conversion: Jan 301 is an MQL, an SQL and a customer; Feb 302 none
    (
        "mart_lead_conversion",
        f"select month, leads, mqls, sqls, customers from marts.kpi_lead_conversion "
        f"where {COMPANY} order by 1",
        [(JAN, 1, 1, 1, 1), (FEB, 1, 0, 0, 0)],
    ),
    # response: 301 08:00 -> call 08:20 = 20 min; 302 09:00 -> email 09:30 = 30
    (
        "mart_lead_response_time",
        f"select month, contacted_leads, total_response_minutes "
        f"from marts.kpi_lead_response_time where {COMPANY} order by 1",
        [(JAN, 1, 20.0), (FEB, 1, 30.0)],
    ),
    (
        "mart_sales_effort",
        f"select month, calls, emails, meetings, total_activities from marts.kpi_sales_effort "
        f"where {COMPANY} order by 1",
        [(JAN, 1, 0, 1, 2), (FEB, 0, 1, 0, 1)],
    ),
    # 901 in appointmentscheduled 01-05 10:00 -> 02-10 15:00 = 36 d 5 h = 36.2083;
    # 902 in qualifiedtobuy 01-08 -> 02-14 = 37 days
    (
        "mart_stage_duration",
        f"select month, stage_name, exits, round(total_days_in_stage, 4) "
        f"from marts.kpi_stage_duration where {COMPANY} and exits > 0 order by 1, 2",
        [(FEB, "appointmentscheduled", 1, 36.2083), (FEB, "qualifiedtobuy", 1, 37.0)],
    ),
    # no quotas and no subscriptions: the marts hold no rows, not wrong ones
    ("mart_quota_attainment_empty", "select count(*) from marts.kpi_quota_attainment", [(0,)]),
    ("mart_churn_empty", "select count(*) from marts.kpi_churn", [(0,)]),
]


@pytest.mark.parametrize(("sql", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_mapping_rule(built: tuple[Project, Path], sql: str, expected: list[tuple[Any, ...]]):
    assert query(built[1], sql) == expected


def test_build_output_says_what_hubspot_lacks(built: tuple[Project, Path]):
    project, _ = built
    assert detect_format(FIXTURE) == "hubspot"
    said = " ".join(project.load_warnings)
    assert "no standard quotas object" in said and "kpi_quota_attainment holds no rows" in said
    assert "kpi_churn holds no rows" in said


def test_load_counts_rows_deleted_at_the_source(tmp_path: Path):
    project, _ = build(FIXTURE, tmp_path)
    report = project.load_raw()
    # company 502, contact 303 (is_deleted); deal 905 (_fivetran_deleted);
    # deal_stage: one inactive version
    assert report.dropped("company") == {"is_deleted = true": 1}
    assert report.dropped("deal") == {"_fivetran_deleted = true": 1}
    assert report.dropped("deal_stage") == {"_fivetran_active = false (an older version)": 1}


def test_subscriptions_csv_fills_churn(tmp_path: Path):
    export = tmp_path / "export"
    shutil.copytree(FIXTURE, export)
    (export / "subscriptions.csv").write_text(
        "subscription_id,account_id,started_at,ended_at,mrr\ns1,501,2025-01-15,2025-02-10,100\n"
    )
    project, path = build(export, tmp_path)
    assert project.export_format.missing_tables == ("quotas",)
    assert project.build().exit_code == 0
    # 501 becomes a customer in January and churns in February
    assert query(
        path, "select month, new_customers, churned_customers from marts.kpi_churn order by 1"
    ) == [(JAN, 1, 0), (FEB, 0, 1)]


def test_staging_models_have_exactly_the_contract_columns(built: tuple[Project, Path]):
    """Contract columns and types, plus `_load_id`; the stage's label is kept
    in `stage_label` (SOURCES.md), the deal's currency in `currency_code`."""
    currency = {t: ["currency_code"] for t in ("opportunities", "quotas", "subscriptions")}
    extra = {**currency, "pipeline_stages": ["stage_label"]}
    assert_contract_columns(built[1], "hubspot", extra)
