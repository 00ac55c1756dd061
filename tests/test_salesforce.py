"""The Salesforce mapping (SOURCES.md), rule by rule, on a hand-made Data Export.

`tests/fixtures/salesforce_small/` is a Salesforce weekly Data Export in its
real shape: one CSV per object named by its API name, every value quoted, CRLF
line ends, `000000000000000AAA` for empty references, `IsDeleted`, and a
`User.csv` in Latin-1 bytes. Ids are shortened below: `U1` is
`005000000000001AAA`, `O1` is `006000000000001AAA`, `L1` is
`00Q000000000001AAA`, and so on.

Users: U1 Ann Lee (role West, reports to U3), U2 José Núñez (no role, reports
to U4, inactive since 2025-03-10), U3 Mia Boss (West, owns only the deleted
deal O4), U4 Max Owner (West, owns O3), U5 an AutomatedProcess user.
Deals: O1 won 1000.5 (U1, closed 2025-02-20), O2 lost (U2, 2025-02-25), O3
open (U4), O4 deleted. Leads: L1 and L2 both converted into O1 (L1 created
first), L3 unowned, L4 deleted. The export's newest SystemModstamp is
2025-03-15 (U4's user row).

Each case is (name, SQL over the warehouse, expected rows), the arithmetic in
the comment above it: a table of cases, read by one test.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from conftest import assert_contract_columns
from test_incremental_stateful import PROJECT_PARTS

from runner import Project
from runner.crm.generate_crm import snake_case
from runner.crm_formats import detect_format, resolve_format
from runner.errors import KpiError

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "salesforce_small"


def sf(prefix: str, n: int) -> str:
    """`sf("005", 1)` is the 18-character id `005000000000001AAA`."""
    return f"{prefix}{n:012d}AAA"


U1, U2, U3, U4 = (sf("005", n) for n in (1, 2, 3, 4))
O1, O2, O3 = (sf("006", n) for n in (1, 2, 3))
L1, L2, L3 = (sf("00Q", n) for n in (1, 2, 3))
ROLE = sf("00E", 1)
JAN, FEB, MAR = date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)


def build(raw_dir: Path, work: Path, **kwargs: Any) -> tuple[Project, Path]:
    path = work / "warehouse.duckdb"
    project = Project.load(
        ROOT, warehouse=path, raw_dir=raw_dir, target_path=work / "target", **kwargs
    )
    return project, path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, Path]:
    project, path = build(FIXTURE, tmp_path_factory.mktemp("sf"))
    result = project.build()
    assert result.exit_code == 0, result.summary
    return project, path


def query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


STG = "staging.stg_salesforce__"
COMPANY = "level = 'company'"

CASES: list[tuple[str, str, list[tuple[Any, ...]]]] = [
    # users: only Standard users (U5 is AutomatedProcess); role: U3 is named by
    # U1's ManagerId and owns no non-deleted deal (O4 is deleted) -> manager; U4
    # is named by U2's ManagerId but owns O3 -> rep. Team: the role, or no_role.
    # terminated_at: NULL while IsActive, else the date of LastModifiedDate.
    (
        "users_standard_only_roles_teams_termination",
        f"select user_id, full_name, role, team_id, manager_id, hired_at, terminated_at "
        f"from {STG}users order by user_id",
        [
            (U1, "Ann Lee", "rep", ROLE, U3, date(2024, 1, 15), None),
            (U2, "José Núñez", "rep", "no_role", U4, date(2024, 2, 1), date(2025, 3, 10)),
            (U3, "Mia Boss", "manager", ROLE, None, date(2023, 5, 1), None),
            (U4, "Max Owner", "rep", ROLE, None, date(2023, 6, 1), None),
        ],
    ),
    # teams: UserRole rows, plus no_role because U2 has no role
    (
        "teams_with_no_role",
        f"select team_id, team_name from {STG}teams order by team_id",
        [(ROLE, "West"), ("no_role", "No role")],
    ),
    # accounts: the deleted Globex is dropped
    (
        "accounts_deleted_dropped",
        f"select account_id, account_name, industry from {STG}accounts",
        [(sf("001", 1), "Acme", "Technology")],
    ),
    # stages derived from the deals: Prospecting 1, Closed Won 5, Closed Lost 6;
    # Negotiation and Qualification appear only in history: open, not won,
    # after all others by name (6 + 1, 6 + 2). Discovery is named only by a
    # deleted history row: no stage.
    (
        "stages_derived_history_only_last",
        f"select stage_name, stage_order, probability, is_closed, is_won "
        f"from {STG}pipeline_stages order by stage_order",
        [
            ("Prospecting", 1, None, False, False),
            ("Closed Won", 5, None, True, True),
            ("Closed Lost", 6, None, True, False),
            ("Negotiation", 7, None, False, False),
            ("Qualification", 8, None, False, False),
        ],
    ),
    # opportunities: Type lower-cased with `_`; close_date only when closed (O3's
    # expected 2025-06-30 is dropped; O1's zero time is a date); lead_id: L1 and
    # L2 both converted into O1, L1 was created first; L4 (deleted) named O2.
    (
        "opportunities_type_close_date_lead",
        f"select opportunity_id, opportunity_type, amount, is_closed, is_won, close_date, "
        f"lead_id, currency_code from {STG}opportunities order by opportunity_id",
        [
            (O1, "new_business", Decimal("1000.5000"), True, True, date(2025, 2, 20), L1, "USD"),
            (O2, "existing_business", None, True, False, date(2025, 2, 25), None, "USD"),
            (O3, "renewal", Decimal("500.0000"), False, False, None, None, "EUR"),
        ],
    ),
    # history: O1's second Prospecting row changes only the amount: collapsed;
    # O3's Discovery row is deleted: O3 keeps one row
    (
        "history_collapses_non_stage_changes",
        f"select opportunity_id, stage_name, entered_at "
        f"from {STG}opportunity_stage_history order by opportunity_id, entered_at",
        [
            (O1, "Prospecting", datetime(2025, 1, 5, 10)),
            (O1, "Negotiation", datetime(2025, 1, 20)),
            (O1, "Closed Won", datetime(2025, 2, 20)),
            (O2, "Qualification", datetime(2025, 1, 10, 10)),
            (O2, "Closed Lost", datetime(2025, 2, 25, 10)),
            (O3, "Prospecting", datetime(2025, 2, 1, 10)),
        ],
    ),
    # leads: converted -> status converted, converted_at midnight UTC; L3 has no
    # owner -> unowned, status lower-cased; L4 deleted
    (
        "leads_status_owner_conversion",
        f"select lead_id, owner_id, status, converted_at, converted_opportunity_id "
        f"from {STG}leads order by lead_id",
        [
            (L1, U1, "converted", datetime(2025, 1, 5), O1),
            (L2, U1, "converted", datetime(2025, 1, 6), O1),
            (L3, "unowned", "working - contacted", None, None),
        ],
    ),
    # activities: T5 is open, T6 deleted, E2 an invitee's copy (IsChild), E3
    # starts 2025-03-20, after the newest SystemModstamp 2025-03-15. Types:
    # T1 TaskSubtype Call; T2 Email; T3 Type 'demo ' trimmed; T4 nothing ->
    # other (and no owner -> unowned); T7 ListEmail; E1 no Type -> meeting; E4
    # Type Call. occurred_at: T2 has no CompletedDateTime -> CreatedDate; E4 is
    # all-day -> ActivityDate. WhoId 00Q -> lead, WhatId 006 -> deal; T1's
    # WhatId is 000000000000000AAA -> NULL.
    (
        "activities_done_held_typed_linked",
        f"select activity_id, owner_id, activity_type, occurred_at, lead_id, opportunity_id "
        f"from {STG}activities order by activity_id",
        [
            (sf("00T", 1), U1, "call", datetime(2025, 1, 2, 8, 30), L1, None),
            (sf("00T", 2), U1, "email", datetime(2025, 2, 10, 9), L3, None),
            (sf("00T", 3), U1, "demo", datetime(2025, 1, 15, 14), None, O1),
            (sf("00T", 4), "unowned", "other", datetime(2025, 2, 5, 10), None, None),
            (sf("00T", 7), U2, "email", datetime(2025, 2, 12, 10), None, O2),
            (sf("00U", 1), U1, "meeting", datetime(2025, 1, 25, 15), None, O1),
            (sf("00U", 4), U4, "call", datetime(2025, 2, 12), None, O3),
        ],
    ),
    # quotas: U1's 10000 for the quarter starting 2025-01-01 -> 3333.3333 (10000 / 3
    # rounded down to 4 decimals) in Jan and Feb, 10000 - 2 x 3333.3333 = 3333.3334
    # in Mar; U2's 1500 for a Month period -> Feb only
    (
        "quotas_quarter_split_in_decimal",
        f"select user_id, month, quota_amount from {STG}quotas order by user_id, month",
        [
            (U1, JAN, Decimal("3333.3333")),
            (U1, FEB, Decimal("3333.3333")),
            (U1, MAR, Decimal("3333.3334")),
            (U2, FEB, Decimal("1500.0000")),
        ],
    ),
    # subscriptions: Activated and Expired contracts (the Draft one is not);
    # ended_at = EndDate + 1 day
    (
        "subscriptions_from_contracts_end_plus_one",
        f"select subscription_id, started_at, ended_at, mrr from {STG}subscriptions "
        f"order by subscription_id",
        [
            (sf("800", 1), date(2025, 1, 1), date(2026, 1, 1), None),
            (sf("800", 3), date(2024, 1, 1), date(2025, 2, 1), None),
        ],
    ),
    # exchange rates: no DatedConversionRate rows -> CurrencyType, valid always
    (
        "exchange_rates_from_currency_type",
        f"select currency_code, valid_from, rate from {STG}exchange_rates order by 1",
        [
            ("EUR", date(1900, 1, 1), Decimal("0.9000000000")),
            ("USD", date(1900, 1, 1), Decimal("1.0000000000")),
        ],
    ),
    # win rate, February: O1 won, O2 lost -> 1 / 2
    (
        "mart_win_rate",
        f"select month, won_deals, lost_deals, win_rate from marts.kpi_win_rate "
        f"where {COMPANY} and closed_deals > 0",
        [(FEB, 1, 1, 0.5)],
    ),
    # days to close of O1: first touch = L1 created 2025-01-02 (before the deal,
    # 2025-01-05, and T1 on L1, 2025-01-02 08:30) -> 2025-02-20 - 2025-01-02 =
    # 29 + 20 = 49 days
    (
        "mart_days_to_close_through_lead",
        f"select month, won_deals, total_days_to_close from marts.kpi_days_to_close "
        f"where {COMPANY} and won_deals > 0",
        [(FEB, 1, 49)],
    ),
    # quota attainment, company: Jan 3333.3333; Feb 3333.3333 + 1500 = 4833.3333
    # with 1000.5 won; Mar 3333.3334 (the quarter adds up to 10000)
    (
        "mart_quota_attainment_company",
        f"select month, quota_amount, won_amount, reps_with_quota "
        f"from marts.kpi_quota_attainment where {COMPANY} order by month",
        [
            (JAN, Decimal("3333.3333"), Decimal("0.0000"), 1),
            (FEB, Decimal("4833.3333"), Decimal("1000.5000"), 2),
            (MAR, Decimal("3333.3334"), Decimal("0.0000"), 1),
        ],
    ),
    # lead conversion: Jan L1, L2 (L4 deleted) both converted into won O1 -> 2 of 2;
    # Feb L3, not converted
    (
        "mart_lead_conversion",
        f"select month, leads, customers from marts.kpi_lead_conversion "
        f"where {COMPANY} order by month",
        [(JAN, 2, 2), (FEB, 1, 0), (MAR, 0, 0)],
    ),
    # response time: L1 08:00 -> T1 08:30 = 30 min; L2 never contacted; L3 08:00
    # -> T2 09:00 (its CreatedDate) = 60 min, within the hour. T5 (open) and T6
    # (deleted) would have been earlier contacts of L3.
    (
        "mart_lead_response_time",
        f"select month, leads, contacted_leads, total_response_minutes, contacted_within_1h "
        f"from marts.kpi_lead_response_time where {COMPANY} and leads > 0 order by month",
        [(JAN, 2, 1, 30.0, 1), (FEB, 1, 1, 60.0, 1)],
    ),
    # effort: Jan T1 call, T3 demo, E1 meeting; Feb T2 + T7 emails, E4 call, T4
    # other; Mar nothing (E3 has not happened)
    (
        "mart_sales_effort",
        f"select month, calls, emails, meetings, demos, other_activities, total_activities "
        f"from marts.kpi_sales_effort where {COMPANY} order by month",
        [(JAN, 1, 0, 1, 1, 0, 3), (FEB, 1, 2, 0, 0, 1, 4), (MAR, 0, 0, 0, 0, 0, 0)],
    ),
    # stage duration: O1 Prospecting 2025-01-05 10:00 -> Negotiation 2025-01-20
    # 00:00 = 14 days 14 hours = 14.5833 days, one exit (without collapsing the
    # amount-only row there would be two); Feb: O1 Negotiation 01-20 -> 02-20 =
    # 31 days, O2 Qualification 01-10 10:00 -> 02-25 10:00 = 46 days
    (
        "mart_stage_duration",
        f"select month, stage_name, stage_order, exits, round(total_days_in_stage, 4) "
        f"from marts.kpi_stage_duration where {COMPANY} and exits > 0 "
        f"order by month, stage_order",
        [
            (JAN, "Prospecting", 1, 1, 14.5833),
            (FEB, "Negotiation", 7, 1, 31.0),
            (FEB, "Qualification", 8, 1, 46.0),
        ],
    ),
    # churn: Acme is a customer all along (the Expired contract to 2025-01-31,
    # then the Activated one from 2025-01-01)
    (
        "mart_churn",
        "select month, customers_at_start, customers_at_end, churned_customers "
        "from marts.kpi_churn order by month",
        [(JAN, 1, 1, 0), (FEB, 1, 1, 0), (MAR, 1, 1, 0)],
    ),
]


@pytest.mark.parametrize(("sql", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_mapping_rule(built: tuple[Project, Path], sql: str, expected: list[tuple[Any, ...]]):
    assert query(built[1], sql) == expected


def test_staging_models_have_exactly_the_contract_columns(built: tuple[Project, Path]):
    """Each stg_salesforce__<table> has the contract table's columns, in its
    order and with its types, plus `_load_id` (and KPI_SPEC section 5's
    optional `currency_code` where the contract allows one)."""
    currency = {t: ["currency_code"] for t in ("opportunities", "quotas", "subscriptions")}
    assert_contract_columns(built[1], "salesforce", currency)


def test_load_report_counts_drops_and_warns_once_per_latin1_file(built: tuple[Project, Path]):
    project, _ = built
    warnings = project.load_warnings
    assert [w for w in warnings if "not valid UTF-8" in w] == [
        f"{FIXTURE / 'User.csv'}: not valid UTF-8; read as windows-1252 (pass --encoding to "
        "force one)."
    ]
    # a file the mapping does not read (Campaign.csv) is ignored without a word
    assert not any("Campaign.csv" in w for w in warnings)


def test_detection_and_forcing():
    assert detect_format(FIXTURE) == "salesforce"
    assert detect_format(ROOT / "runner" / "crm" / "demo_export") == "contract"
    assert resolve_format("contract", "salesforce", FIXTURE).name == "contract"
    assert resolve_format(None, None, FIXTURE).how == "detected"
    # the CurrencyType row with IsCorporate = 1: the default reporting currency
    assert resolve_format(None, None, FIXTURE).corporate_currency == "USD"
    with pytest.raises(KpiError, match="must be one of contract, salesforce, hubspot"):
        resolve_format(None, "pipedrive", FIXTURE)


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "export"
    shutil.copytree(FIXTURE, target)
    return target


def test_load_report_counts_each_drop(tmp_path: Path):
    project, _ = build(_copy(tmp_path), tmp_path)
    report = project.load_raw()
    # one deleted row each in Account, Lead, Opportunity, OpportunityHistory, Task;
    # U5 is an AutomatedProcess user, T5 an open task, E2 an invitee's copy
    assert report.dropped() == {
        "IsDeleted = 1": 5,
        "not a Standard user": 1,
        "an open task (IsClosed = 0)": 1,
        "an invitee's copy (IsChild = 1)": 1,
    }
    assert report.dropped("Opportunity") == {"IsDeleted = 1": 1}
    # E3 starts after the export's newest SystemModstamp: counted, not loaded away
    assert "1 event(s) after the export's newest SystemModstamp" in " ".join(project.load_warnings)


def test_without_any_system_modstamp_every_dated_event_is_an_activity(tmp_path: Path):
    """An export with no SystemModstamp column reaches no date: E3 (after the
    fixture's newest stamp) is an activity too, of the export's one load."""
    export = _copy(tmp_path)
    for path in export.glob("*.csv"):
        text = path.read_bytes().decode("latin-1")
        rows = list(csv.reader(io.StringIO(text, newline="")))
        if "SystemModstamp" not in rows[0]:
            continue
        drop = rows[0].index("SystemModstamp")
        out = io.StringIO(newline="")
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        writer.writerows([v for i, v in enumerate(row) if i != drop] for row in rows)
        path.write_bytes(out.getvalue().encode("latin-1"))
    project, path = build(export, tmp_path / "w")
    assert project.build(select=["+stg_salesforce__activities"]).exit_code == 0
    sql = f"select activity_id, _load_id from {STG}activities where activity_id like '00U%'"
    assert query(path, sql + " order by 1") == [(sf("00U", n), 1) for n in (1, 3, 4)]


def test_missing_required_column_names_file_field_and_near_match(tmp_path: Path):
    export = _copy(tmp_path)
    path = export / "Opportunity.csv"
    path.write_bytes(path.read_bytes().replace(b'"StageName"', b'"StagName"', 1))
    project, _ = build(export, tmp_path)
    with pytest.raises(KpiError) as info:
        project.load_raw()
    message = str(info.value)
    assert "Opportunity.csv" in message and "lacks required column(s) StageName" in message
    assert "'StagName' may be meant as StageName" in message


def test_all_missing_required_files_listed_at_once(tmp_path: Path):
    export = _copy(tmp_path)
    (export / "User.csv").unlink()
    (export / "Lead.csv").unlink()
    (export / "Task.csv").unlink()  # optional: not listed
    project, _ = build(export, tmp_path)
    with pytest.raises(KpiError) as info:
        project.load_raw()
    message = str(info.value)
    assert "Lead.csv: missing" in message and "User.csv: missing" in message
    assert "Task" not in message


def test_unparsable_value_rejected_with_file_and_line(tmp_path: Path):
    export = _copy(tmp_path)
    path = export / "Opportunity.csv"
    path.write_bytes(path.read_bytes().replace(b'"1000.5"', b'"1.000,50"', 1))
    project, _ = build(export, tmp_path)
    with pytest.raises(KpiError) as info:
        project.load_raw()
    assert "Opportunity.csv: 1 rejected row(s)" in str(info.value)
    assert "line 2: column Amount: '1.000,50' is not money" in str(info.value)
    report = project.load_raw(on_bad_rows="quarantine")
    assert report.rejected == 1


def test_forced_encoding_reads_every_file_without_warning(tmp_path: Path):
    project, path = build(_copy(tmp_path), tmp_path, encoding="windows-1252")
    project.load_raw()
    assert not [w for w in project.load_warnings if "UTF-8" in w]
    assert query(path, 'select "Name" from raw."User" where "Id" = ?'.replace("?", f"'{U2}'")) == [
        ("José Núñez",)
    ]


def test_quotas_csv_beside_the_export_replaces_forecasting_quota(tmp_path: Path):
    export = _copy(tmp_path)
    (export / "quotas.csv").write_text(f"user_id,month,quota_amount\n{U1},2025-02-01,2000\n")
    project, path = build(export, tmp_path)
    assert project.export_format.contract_tables == ("quotas",)
    assert "contract-format file(s) used instead of the mapping: quotas" in (
        project.export_format.describe()
    )
    assert project.build().exit_code == 0
    sql = "select user_id, quota_month, quota_amount from staging.stg_crm__quotas"
    assert query(path, sql) == [(U1, FEB, Decimal("2000.0000"))]


def test_snake_case_replicated_copy_maps_the_same(tmp_path: Path, built: tuple[Project, Path]):
    """The same objects replicated as snake_case Parquet tables and columns
    (`opportunity_history.parquet`, `stage_name`) give the same staging rows."""
    export = tmp_path / "replicated"
    export.mkdir()
    with duckdb.connect() as con:
        for csv_file in sorted(FIXTURE.glob("*.csv")):
            text = csv_file.read_bytes().decode("cp1252")
            utf8 = tmp_path / csv_file.name
            utf8.write_text(text, encoding="utf-8")
            columns = con.execute(
                f"select * from read_csv('{utf8}', all_varchar = true) limit 0"
            ).description
            renamed = ", ".join(f'"{c[0]}" as "{snake_case(c[0])}"' for c in columns)
            target = export / f"{snake_case(csv_file.stem)}.parquet"
            con.execute(
                f"copy (select {renamed} from read_csv('{utf8}', all_varchar = true)) "
                f"to '{target}' (format parquet)"
            )
    assert detect_format(export) == "salesforce"
    project, path = build(export, tmp_path / "w")
    assert project.build().exit_code == 0
    for table in ("users", "opportunities", "opportunity_stage_history", "activities", "quotas"):
        sql = f"select * exclude (_load_id) from {STG}{table} order by all"
        assert query(path, sql) == query(built[1], sql), table


def test_weekly_export_rewriting_every_file_counts_only_changed_rows(tmp_path: Path):
    export = _copy(tmp_path)
    project, path = build(export, tmp_path)
    assert project.build().exit_code == 0
    # next week's export: every file written again, one deal's amount changed
    for file in export.glob("*.csv"):
        file.write_bytes(file.read_bytes())
    opportunity = export / "Opportunity.csv"
    opportunity.write_bytes(opportunity.read_bytes().replace(b'"500"', b'"650"', 1))
    project, path = build(export, tmp_path)
    result = project.build()
    assert result.exit_code == 0
    changes = query(
        path,
        "select relation, inserted_rows, updated_rows, deleted_rows from _kpi.table_changes "
        "where load_id = (select max(load_id) from _kpi.table_changes)",
    )
    assert changes == [("raw.Opportunity", 0, 1, 0)]
    clean, clean_path = build(export, tmp_path / "clean")
    assert clean.build().exit_code == 0
    for mart in ("kpi_win_rate", "kpi_sales_effort", "kpi_stage_duration", "kpi_lead_conversion"):
        sql = f"select * from marts.{mart} order by all"
        assert query(path, sql) == query(clean_path, sql), mart


def _with_stage_picklist(tmp_path: Path) -> Path:
    export = _copy(tmp_path)
    (export / "OpportunityStage.csv").write_text(
        '"Id","MasterLabel","ApiName","IsActive","SortOrder","IsClosed","IsWon",'
        '"DefaultProbability"\r\n'
        '"01J1","Prospecting","Prospecting","1","1","0","0","10"\r\n'
        '"01J2","Closed Won","Closed Won","1","2","1","1","100"\r\n'
        '"01J3","Closed Lost","Closed Lost","1","3","1","0","0"\r\n'
        '"01J4","Old","Old","0","9","0","0","50"\r\n'
    )
    return export


def test_stages_from_opportunity_stage_file_active_only(tmp_path: Path):
    """With OpportunityStage rows, stages come from it (ApiName, SortOrder,
    DefaultProbability / 100, only active ones); Negotiation and Qualification,
    named only in history, follow the largest SortOrder (3) by name."""
    project, path = build(_with_stage_picklist(tmp_path), tmp_path)
    assert project.build().exit_code == 0
    assert query(
        path,
        f"select stage_name, stage_order, probability, is_closed, is_won "
        f"from {STG}pipeline_stages order by stage_order",
    ) == [
        ("Prospecting", 1, 0.1, False, False),
        ("Closed Won", 2, 1.0, True, True),
        ("Closed Lost", 3, 0.0, True, False),
        ("Negotiation", 4, None, False, False),
        ("Qualification", 5, None, False, False),
    ]


def test_a_deal_change_leaves_the_load_of_picklist_stages(tmp_path: Path):
    """A stage from OpportunityStage depends on that file alone: after a
    weekly export that changed one deal's amount, it keeps the first load;
    the stages known only from history depend on every deal and move."""
    export = _with_stage_picklist(tmp_path)
    project, path = build(export, tmp_path)
    assert project.build().exit_code == 0
    opportunity = export / "Opportunity.csv"
    opportunity.write_bytes(opportunity.read_bytes().replace(b'"500"', b'"650"', 1))
    project, path = build(export, tmp_path)
    assert project.build().exit_code == 0
    sql = f"select stage_name, _load_id from {STG}pipeline_stages order by stage_order"
    assert query(path, sql) == [
        ("Prospecting", 1),
        ("Closed Won", 1),
        ("Closed Lost", 1),
        ("Negotiation", 2),
        ("Qualification", 2),
    ]


def test_dated_conversion_rates_replace_currency_type(tmp_path: Path):
    export = _copy(tmp_path)
    (export / "DatedConversionRate.csv").write_text(
        '"Id","IsoCode","StartDate","NextStartDate","ConversionRate"\r\n'
        '"04w1","EUR","2025-01-01","2025-02-01","0.95"\r\n'
        '"04w2","EUR","2025-02-01","9999-12-31","0.92"\r\n'
    )
    project, path = build(export, tmp_path)
    assert project.build().exit_code == 0
    assert query(path, f"select * exclude (_load_id) from {STG}exchange_rates order by all") == [
        ("EUR", date(2025, 1, 1), Decimal("0.9500000000")),
        ("EUR", date(2025, 2, 1), Decimal("0.9200000000")),
    ]


def test_only_the_models_of_the_format_in_use_are_parsed(tmp_path: Path):
    contract = Project.load(ROOT, target_path=tmp_path / "a")
    names = {n.name for n in contract.nodes.values()}
    assert "stg_crm__opportunities" in names
    assert not [n for n in names if "salesforce" in n]
    salesforce = Project.load(ROOT, target_path=tmp_path / "a", raw_dir=FIXTURE)
    names = {n.name for n in salesforce.nodes.values()}
    assert "stg_salesforce__opportunities" in names
    # the detected format is part of the parse cache key: no stale parse
    assert contract.loaded.digest != salesforce.loaded.digest
    assert "salesforce" in {s.source_name for s in salesforce.loaded.sources.values()}
    assert "crm" not in {s.source_name for s in salesforce.loaded.sources.values()}


def test_activity_types_are_mapped_once_in_the_salesforce_staging_model(
    built: tuple[Project, Path],
):
    """stg_salesforce__activities maps TaskSubtype and Type through the seed;
    stg_crm__activities keeps its types instead of looking them up again (a
    lookup per row makes DuckDB compute the Salesforce activities twice)."""
    compiled = built[1].parent / "target" / "compiled" / "models" / "staging"
    assert (
        "activity_types" in (compiled / "salesforce" / "stg_salesforce__activities.sql").read_text()
    )
    assert "activity_types" not in (compiled / "crm" / "stg_crm__activities.sql").read_text()
    assert query(built[1], f"select distinct activity_type from {STG}activities order by 1") == [
        ("call",),
        ("demo",),
        ("email",),
        ("meeting",),
        ("other",),
    ]


def _with_second_february_quota(tmp_path: Path, currency: str) -> Path:
    """The fixture with a second February quota of U2 (another forecast type): 500."""
    export = _copy(tmp_path)
    path = export / "ForecastingQuota.csv"
    path.write_bytes(
        path.read_bytes()
        + b'"0J9000000000003AAA","005000000000002AAA","026000000000002AAA","2025-02-01",'
        + f'"500","","0Db000000000002AAA","{currency}","2024-12-01T00:00:00.000Z"\r\n'.encode()
    )
    return export


def test_quotas_of_one_user_and_month_add_up(tmp_path: Path):
    """Two forecast types give U2 two February quotas: 1500 + 500 = 2000."""
    project, warehouse = build(_with_second_february_quota(tmp_path, "USD"), tmp_path)
    assert project.build().exit_code == 0
    assert query(warehouse, f"select quota_amount from {STG}quotas where user_id = '{U2}'") == [
        (Decimal("2000.0000"),)
    ]


def test_quotas_of_one_user_and_month_in_two_currencies_fail_the_build(
    tmp_path: Path, built: tuple[Project, Path]
):
    """1500 USD + 500 EUR is no amount: the build fails naming U2 and February,
    and the quota mart keeps the table of the previous, good build."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(built[1], warehouse)
    before = query(warehouse, "select * from marts.kpi_quota_attainment order by all")
    project, _ = build(_with_second_february_quota(tmp_path, "EUR"), tmp_path)
    result = project.build()
    assert result.exit_code == 1
    # the view's data tests are the first to read it: they fail with its
    # message, and the view is not published
    failed = {r.name: r.message for r in result.results if r.status == "error"}
    assert failed.pop("stg_salesforce__quotas").startswith("not published")
    assert failed and all("stg_salesforce__quotas" in name for name in failed)
    for message in failed.values():
        assert (
            f"ForecastingQuota: the quotas of user {U2} for 2025-02 are in more than one "
            "currency (EUR and USD), so they cannot be added up." in message
        )
    assert query(warehouse, "select * from marts.kpi_quota_attainment order by all") == before


def _project_with(tmp_path: Path, settings: str) -> Path:
    """A copy of this project whose pyproject.toml ends with `settings`."""
    project = tmp_path / "project"
    for part in PROJECT_PARTS:
        if (ROOT / part).is_dir():
            shutil.copytree(ROOT / part, project / part)
    text = (ROOT / "pyproject.toml").read_text()
    (project / "pyproject.toml").write_text(text + "\n" + settings)
    return project


def test_lead_mql_and_sql_fields_fill_mql_at_and_sql_at(tmp_path: Path):
    """`[tool.kpi.salesforce] lead_mql_at_field` / `lead_sql_at_field` name
    the fixture's custom Lead fields MQL_Date__c (a datetime) and SQL_Date__c
    (a date: midnight UTC). L1: MQL 2025-01-03 10:00, SQL 2025-01-04; L2: MQL
    2025-01-04 09:30, no SQL; L3 neither; L4 is deleted (its dates count
    nowhere). January's cohort (L1, L2): 2 MQLs, 1 SQL, MQL -> SQL 1 / 2 =
    0.5; February's (L3): none. Without the settings (the module build) both
    are NULL."""
    project_dir = _project_with(
        tmp_path,
        '[tool.kpi.salesforce]\nlead_mql_at_field = "MQL_Date__c"\n'
        'lead_sql_at_field = "sql_date__c"\n',
    )
    project = Project.load(
        project_dir,
        warehouse=tmp_path / "w.duckdb",
        raw_dir=FIXTURE,
        target_path=tmp_path / "target",
    )
    result = project.build()
    assert result.exit_code == 0, result.summary
    path = tmp_path / "w.duckdb"
    assert query(path, f"select lead_id, mql_at, sql_at from {STG}leads order by lead_id") == [
        (L1, datetime(2025, 1, 3, 10, 0), datetime(2025, 1, 4)),
        (L2, datetime(2025, 1, 4, 9, 30), None),
        (L3, None, None),
    ]
    sql = (
        "select month, leads, mqls, sqls, mql_to_sql_rate from marts.kpi_lead_conversion "
        f"where {COMPANY} and leads > 0 order by month"
    )
    assert query(path, sql) == [(JAN, 2, 2, 1, 0.5), (FEB, 1, 0, 0, None)]


def test_lead_fields_are_null_without_the_settings(built: tuple[Project, Path]):
    sql = f"select count(*) from {STG}leads where mql_at is not null or sql_at is not null"
    assert query(built[1], sql) == [(0,)]


def test_a_configured_lead_field_missing_from_the_export_names_file_and_field(tmp_path: Path):
    project_dir = _project_with(
        tmp_path, '[tool.kpi.salesforce]\nlead_mql_at_field = "MQL_Datum__c"\n'
    )
    project = Project.load(
        project_dir, warehouse=tmp_path / "w.duckdb", raw_dir=FIXTURE, target_path=tmp_path / "t"
    )
    with pytest.raises(KpiError) as info:
        project.load_raw()
    message = str(info.value)
    assert "Lead.csv" in message
    assert "lacks the field MQL_Datum__c, which [tool.kpi.salesforce] lead_mql_at_field" in message
    assert "'MQL_Date__c' may be meant as MQL_Datum__c" in message


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ('lead_mql_at_field = "MQL Date"', "must name a Lead field by its API name"),
        ('lead_mql_at_field = "Status"', "reads as text, not as a datetime"),
        ('lead_mq_at_field = "MQL_Date__c"', "unknown setting(s) lead_mq_at_field"),
    ],
)
def test_lead_field_settings_are_checked(tmp_path: Path, settings: str, error: str):
    project_dir = _project_with(tmp_path, f"[tool.kpi.salesforce]\n{settings}\n")
    with pytest.raises(KpiError, match=re.escape(error)):
        Project.load(project_dir, raw_dir=FIXTURE, target_path=tmp_path / "t")


# The fixture's deals as a replicated copy in history mode: one row per
# version (`_fivetran_start`), the newest active, and no opportunity_history.
# O1's versions are its OpportunityHistory rows (the second changes only the
# amount); old versions carry no stage sort order and are open, like stages
# known only from history. O4's newest version is inactive: deleted since.
HISTORY_MODE = [
    # id, stage_name, stage_sort_order, amount, is_closed, is_won, _fivetran_start, active
    (O1, "Prospecting", "1", "1000", "0", "0", "2025-01-05 10:00:00", "false"),
    (O1, "Prospecting", "1", "1200", "0", "0", "2025-01-08 10:00:00", "false"),
    (O1, "Negotiation", "", "1200", "0", "0", "2025-01-20 00:00:00", "false"),
    (O1, "Closed Won", "5", "1000.5", "1", "1", "2025-02-20 00:00:00", "true"),
    (O2, "Qualification", "", "", "0", "0", "2025-01-10 10:00:00", "false"),
    (O2, "Closed Lost", "6", "", "1", "0", "2025-02-25 10:00:00", "true"),
    (O3, "Prospecting", "1", "500", "0", "0", "2025-02-01 10:00:00", "true"),
    (sf("006", 4), "Prospecting", "1", "700", "0", "0", "2025-02-02 10:00:00", "false"),
]


def test_history_mode_opportunity_is_read_as_stage_history(
    tmp_path: Path, built: tuple[Project, Path]
):
    """Versions in `_fivetran_start` order, the first and every stage change
    kept: O1 Prospecting 01-05 10:00 (the 01-08 version changes only the
    amount), Negotiation 01-20, Closed Won 02-20; O2 Qualification 01-10 10:00,
    Closed Lost 02-25 10:00; O3 Prospecting 02-01 10:00; O4 is gone. The deals
    are the newest versions: every staging table equals the Data Export's."""
    export = tmp_path / "replicated"
    export.mkdir()
    with duckdb.connect() as con:
        for csv_file in sorted(FIXTURE.glob("*.csv")):
            if csv_file.stem in ("Opportunity", "OpportunityHistory"):
                continue
            utf8 = tmp_path / csv_file.name
            utf8.write_text(csv_file.read_bytes().decode("cp1252"), encoding="utf-8")
            read = f"read_csv('{utf8}', all_varchar = true)"
            names = con.execute(f"select * from {read} limit 0").description
            renamed = ", ".join(f'"{c[0]}" as "{snake_case(c[0])}"' for c in names)
            target = export / f"{snake_case(csv_file.stem)}.csv"
            con.execute(f"copy (select {renamed} from {read}) to '{target}'")
    current = {
        row["Id"]: row
        for row in csv.DictReader(io.StringIO((FIXTURE / "Opportunity.csv").read_text()))
    }
    columns = ["id", "account_id", "name", "type", "stage_name", "stage_sort_order"]
    columns += ["amount", "close_date", "is_closed", "is_won", "owner_id", "created_date"]
    columns += ["currency_iso_code", "system_modstamp", "_fivetran_start", "_fivetran_active"]
    with (export / "opportunity.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for deal, stage, order, amount, closed, won, start, active in HISTORY_MODE:
            now = current[deal]
            writer.writerow(
                [
                    *(deal, now["AccountId"], now["Name"], now["Type"], stage, order, amount),
                    *(now["CloseDate"], closed, won, now["OwnerId"], now["CreatedDate"]),
                    *(now["CurrencyIsoCode"], start, start, active),
                ]
            )
    assert detect_format(export) == "salesforce"
    project, path = build(export, tmp_path / "w")
    result = project.build()
    assert result.exit_code == 0, result.summary
    sql = (
        f"select opportunity_id, stage_name, entered_at from {STG}opportunity_stage_history "
        "order by opportunity_id, entered_at"
    )
    assert query(path, sql) == [
        (O1, "Prospecting", datetime(2025, 1, 5, 10)),
        (O1, "Negotiation", datetime(2025, 1, 20)),
        (O1, "Closed Won", datetime(2025, 2, 20)),
        (O2, "Qualification", datetime(2025, 1, 10, 10)),
        (O2, "Closed Lost", datetime(2025, 2, 25, 10)),
        (O3, "Prospecting", datetime(2025, 2, 1, 10)),
    ]
    for table in ("users", "pipeline_stages", "opportunities", "opportunity_stage_history"):
        sql = f"select * exclude (_load_id) from {STG}{table} order by all"
        assert query(path, sql) == query(built[1], sql), table
    for mart in ("kpi_win_rate", "kpi_stage_duration", "kpi_days_to_close", "kpi_monthly_sales"):
        sql = f"select * from marts.{mart} order by all"
        assert query(path, sql) == query(built[1], sql), mart


def test_without_opportunity_history_a_data_export_lists_it_missing(tmp_path: Path):
    export = _copy(tmp_path)
    (export / "OpportunityHistory.csv").unlink()
    project, _ = build(export, tmp_path)
    with pytest.raises(KpiError) as info:
        project.load_raw()
    assert "OpportunityHistory.csv: missing" in str(info.value)
    assert "(or a file Opportunity with a column _fivetran_start)" in str(info.value)


def test_a_run_that_does_not_load_stops_when_the_warehouse_holds_another_export(
    tmp_path: Path, runner_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`kpi load DIR` then `kpi run`: the models the project parses are those
    of the export folder the command is given (`[tool.kpi] raw_dir`, the
    contract-format demo, unless `--raw-dir`), so a command that does not
    load stops, naming the load and what to pass, instead of building from
    raw tables an older load filled (or failing on a missing one)."""
    from click.testing import CliRunner

    from runner.cli import main

    def kpi(*args: str) -> Any:
        where = ["--warehouse", str(tmp_path / "w.duckdb"), "--target-path", str(tmp_path / "t")]
        return CliRunner().invoke(main, [*args, "--project-dir", str(ROOT), *where])

    assert kpi("load", str(FIXTURE)).exit_code == 0
    for command in (["run"], ["build", "--skip-load"], ["test"]):
        result = kpi(*command)
        assert result.exit_code == 2, result.stderr
        assert "The warehouse's newest load (load 1) filled raw.Account" in result.stderr
        assert "the contract format (detected, from" in result.stderr
        assert "(`--raw-dir DIR`, or `KPI_RAW_DIR=DIR`)" in result.stderr
        assert "Traceback" not in result.stderr
    # --crm alone keeps the configured folder, whose contract-format files
    # (quotas.csv, ...) would replace their mapped tables: they were not loaded
    forced = kpi("build", "--skip-load", "--crm", "salesforce")
    assert forced.exit_code == 2, forced.stderr
    assert "The warehouse has no raw table raw.quotas" in forced.stderr
    # given the folder it loaded, the same command builds
    given = kpi("build", "--skip-load", "-s", "stg_salesforce__users", "--raw-dir", str(FIXTURE))
    assert given.exit_code == 0, given.stderr
    assert "PASS=" in given.stderr and "ERROR=0" in given.stderr
    for command in ("run", "test"):
        given = kpi(command, "-s", "stg_salesforce__users", "--raw-dir", str(FIXTURE))
        assert given.exit_code == 0, given.stderr
    monkeypatch.setenv("KPI_RAW_DIR", str(FIXTURE))
    assert kpi("test", "-s", "stg_salesforce__users").exit_code == 0


def test_the_commands_that_load_nothing_take_the_export_folder_too(
    tmp_path: Path, runner_env: None
) -> None:
    """`ls`, `compile`, `show` and `docs generate` parse the models of the
    folder `--raw-dir` names, as `run` and `test` do, and load nothing."""
    from click.testing import CliRunner

    from runner.cli import main

    def kpi(*args: str) -> Any:
        where = ["--warehouse", str(tmp_path / "w.duckdb"), "--target-path", str(tmp_path / "t")]
        return CliRunner().invoke(main, [*args, "--project-dir", str(ROOT), *where])

    listed = kpi("ls", "-s", "staging", "--output", "name")
    assert "stg_crm__opportunities" in listed.stdout.split(), listed.stderr
    assert "stg_salesforce__opportunities" not in listed.stdout.split()
    given = ["--raw-dir", str(FIXTURE)]
    listed = kpi("ls", "-s", "staging", "--output", "name", *given)
    assert listed.exit_code == 0, listed.stderr
    assert "stg_salesforce__opportunities" in listed.stdout.split()
    compiled = kpi("compile", "-s", "stg_salesforce__users", *given)
    assert compiled.exit_code == 0, compiled.stderr
    sql = tmp_path / "t" / "compiled" / "models" / "staging" / "salesforce"
    assert '"raw"."User"' in (sql / "stg_salesforce__users.sql").read_text(encoding="utf-8")
    assert not (tmp_path / "w.duckdb").exists()  # nothing was loaded
    assert kpi("load", str(FIXTURE)).exit_code == 0
    assert kpi("run", "-s", "stg_salesforce__users", *given).exit_code == 0
    shown = kpi("show", "stg_salesforce__users", "--output", "csv", "--limit", "1", *given)
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout.startswith("user_id,")
    # without the folder the model is not enabled, and the error says why
    shown = kpi("show", "stg_salesforce__users")
    assert shown.exit_code == 2
    assert "stg_salesforce__users.sql) is disabled: its `enabled` config is false" in shown.stderr
    assert "(--raw-dir DIR, or KPI_RAW_DIR=DIR)" in shown.stderr
    docs = kpi("docs", "generate", *given)
    assert docs.exit_code == 0, docs.stderr
    assert "stg_salesforce__opportunities" in (tmp_path / "t" / "docs" / "index.html").read_text(
        encoding="utf-8"
    )


def test_a_run_on_a_warehouse_never_loaded_names_the_missing_raw_tables(
    tmp_path: Path, runner_env: None
) -> None:
    from click.testing import CliRunner

    from runner.cli import main

    where = ["--warehouse", str(tmp_path / "w.duckdb"), "--target-path", str(tmp_path / "t")]
    # a selection reads only its own raw tables: those are the ones named
    result = CliRunner().invoke(
        main, ["run", "-s", "stg_crm__teams", "--project-dir", str(ROOT), *where]
    )
    assert result.exit_code == 2, result.stderr
    assert "The warehouse has no raw table raw.teams, which the models of" in result.stderr
    assert "kpi load DIR" in result.stderr
    assert "Traceback" not in result.stderr
