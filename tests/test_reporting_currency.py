"""Money in the reporting currency (KPI_SPEC section 5), on a tiny export in
three currencies, reported in USD.

Rates (units per 1 USD): EUR 0.8 from 2026-01-01 and 0.9 from 2026-03-01; GBP
0.75 from 2026-01-01. Deals of r1, all won:
- o1 EUR 1000.00 closed 2026-03-01, the day the 0.9 rate starts: 1000 / 0.9
  = 1111.11111... -> 1111.1111;
- o2 500.00 without a code (USD) closed 2026-03-10: 500;
- o3 EUR 200.00 closed 2026-02-15, under the 0.8 rate: 250;
- o4 EUR 100.00 closed 2025-12-15, before every EUR rate: the earliest (0.8),
  125;
- o5 USD 50.00 closed 2026-03-20 (the reporting currency's own code): 50;
- o6 EUR 90.00, open: its currency's latest rate (0.9), 100.
Quotas of r1: 2026-03 GBP 750 (750 / 0.75 = 1000), 2026-02 300 without a code.
"""

from __future__ import annotations

import io
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from test_invariants import write_export

from runner import Project
from runner.errors import ProjectError
from runner.project import RunResult
from runner.reporting import Reporter

ROOT = Path(__file__).resolve().parents[1]
DEC, FEB, MAR = date(2025, 12, 1), date(2026, 2, 1), date(2026, 3, 1)
LOGS: dict[Path, str] = {}


def deal(opportunity_id: str, amount: str, code: str, close_date: str) -> dict[str, str]:
    closed = "true" if close_date else "false"
    return {
        "opportunity_id": opportunity_id,
        "account_id": "a1",
        "owner_id": "r1",
        "amount": amount,
        "currency_code": code,
        "stage_name": "closed_won" if close_date else "prospecting",
        "is_closed": closed,
        "is_won": closed,
        "created_at": "2025-12-01 10:00:00",
        "close_date": close_date,
    }


EXPORT: dict[str, list[dict[str, str]]] = {
    "teams": [{"team_id": "T1", "team_name": "East"}],
    "users": [
        {
            "user_id": "r1",
            "full_name": "Rep One",
            "role": "rep",
            "team_id": "T1",
            "hired_at": "2025-01-01",
        }
    ],
    "accounts": [{"account_id": "a1", "account_name": "Acme", "created_at": "2025-01-01"}],
    "leads": [],
    "pipeline_stages": [
        {"stage_name": "prospecting", "stage_order": "1", "is_closed": "false", "is_won": "false"},
        {"stage_name": "closed_won", "stage_order": "2", "is_closed": "true", "is_won": "true"},
    ],
    "opportunities": [
        deal("o1", "1000.00", "EUR", "2026-03-01"),
        deal("o2", "500.00", "", "2026-03-10"),
        deal("o3", "200.00", "EUR", "2026-02-15"),
        deal("o4", "100.00", "EUR", "2025-12-15"),
        deal("o5", "50.00", "USD", "2026-03-20"),
        deal("o6", "90.00", "EUR", ""),
    ],
    "opportunity_stage_history": [],
    "quotas": [
        {"user_id": "r1", "month": "2026-02-01", "quota_amount": "300"},
        {"user_id": "r1", "month": "2026-03-01", "quota_amount": "750", "currency_code": "GBP"},
    ],
    "activities": [],
    "subscriptions": [
        {
            "subscription_id": "s1",
            "account_id": "a1",
            "started_at": "2025-12-01",
            "mrr": "10",
            "currency_code": "GBP",
        },
    ],
    "exchange_rates": [
        {"currency_code": "EUR", "valid_from": "2026-01-01", "rate": "0.8"},
        {"currency_code": "EUR", "valid_from": "2026-03-01", "rate": "0.9"},
        {"currency_code": "GBP", "valid_from": "2026-01-01", "rate": "0.75"},
    ],
}


def build(work: Path, export: dict[str, list[dict[str, str]]], **settings: Any) -> RunResult:
    """Write `export`, load it and the seeds and run the models (no data tests) into `work`;
    what the runner printed is kept in `LOGS[work]`."""
    write_export(work / "export", export)
    project = Project.load(
        ROOT,
        warehouse=work / "w.duckdb",
        raw_dir=work / "export",
        target_path=work / "target",
        vars=settings,
        reporter=Reporter(stream=io.StringIO()),
    )
    project.load_raw()
    project.seed()
    result = project.run()
    LOGS[work] = project.reporter.stream.getvalue()  # type: ignore[attr-defined]
    return result


def query(warehouse: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def errors(result: RunResult) -> list[str]:
    return [r.message or "" for r in result.results if r.status == "error"]


@pytest.fixture(scope="module")
def usd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("usd")
    write_export(work / "export", EXPORT)
    project = Project.load(
        ROOT,
        warehouse=work / "w.duckdb",
        raw_dir=work / "export",
        target_path=work / "target",
        vars={"reporting_currency": "USD"},
        reporter=Reporter(stream=io.StringIO()),
    )
    result = project.build()  # the data tests too
    assert result.exit_code == 0, result.summary
    return work / "w.duckdb"


def test_a_eur_deal_closed_on_the_day_a_new_rate_starts_takes_the_new_rate(usd) -> None:
    amounts = dict(query(usd, "select opportunity_id, amount from marts.fct_opportunities"))
    assert amounts == {
        "o1": Decimal("1111.1111"),  # 1000 / 0.9 (the rate from 2026-03-01), 4 decimals
        "o2": Decimal("500.0000"),  # no code: already USD
        "o3": Decimal("250.0000"),  # 200 / 0.8 (2026-02-15, the rate from 2026-01-01)
        "o4": Decimal("125.0000"),  # 100 / 0.8: before every rate, the earliest
        "o5": Decimal("50.0000"),  # USD, the reporting currency
        "o6": Decimal("100.0000"),  # open: 90 / 0.9, the latest rate
    }


def test_monthly_sales_sum_converted_decimals_and_name_the_currency(usd) -> None:
    rows = query(
        usd,
        "select month, won_amount, quota_amount, currency_code, attainment "
        "from marts.kpi_monthly_sales where level = 'company' order by month",
    )
    assert [r[:4] for r in rows] == [
        (DEC, Decimal("125.0000"), Decimal("0.0000"), "USD"),  # o4
        (date(2026, 1, 1), Decimal("0.0000"), Decimal("0.0000"), "USD"),
        (FEB, Decimal("250.0000"), Decimal("300.0000"), "USD"),  # o3; quota 300 USD
        # o1 + o2 + o5 = 1111.1111 + 500 + 50; the GBP quota 750 / 0.75 = 1000
        (MAR, Decimal("1661.1111"), Decimal("1000.0000"), "USD"),
    ]
    assert rows[3][4] == pytest.approx(1.6611111)  # 1661.1111 / 1000


def test_a_quota_in_gbp_is_converted_on_its_month(usd) -> None:
    rows = query(
        usd,
        "select month, quota_amount, won_amount, currency_code, met_quota "
        "from marts.kpi_quota_attainment where level = 'rep' and rep_id = 'r1' "
        "and month >= '2026-02-01' order by month",
    )
    assert rows == [
        (FEB, Decimal("300.0000"), Decimal("250.0000"), "USD", False),  # 250 < 300
        (MAR, Decimal("1000.0000"), Decimal("1661.1111"), "USD", True),  # 750 GBP / 0.75
    ]


def test_money_marts_carry_the_currency_as_their_yml_says(usd) -> None:
    project = Project.load(ROOT, warehouse=usd, target_path=usd.parent / "target")
    for name in ("kpi_avg_deal_size", "kpi_monthly_sales", "kpi_quota_attainment"):
        columns = [c for (c,) in query(usd, f"select column_name from (describe marts.{name})")]
        documented = list(project.loaded.node_by_name(name).columns)
        assert columns == documented, name
    assert query(usd, "select distinct currency_code from marts.kpi_avg_deal_size") == [("USD",)]


def test_a_currency_without_a_rate_fails_naming_it_and_its_first_row(tmp_path, usd) -> None:
    export = {**EXPORT, "opportunities": [*EXPORT["opportunities"]]}
    export["opportunities"] += [
        deal("o9", "5000", "JPY", "2026-03-05"),
        deal("o8", "7000", "JPY", "2026-03-06"),
    ]
    shutil.copy(usd, tmp_path / "w.duckdb")  # the previous, good build
    before = query(tmp_path / "w.duckdb", "select * from marts.kpi_monthly_sales order by all")
    result = build(tmp_path, export, reporting_currency="USD")
    assert result.exit_code == 1
    assert errors(result) == [
        "Invalid Input Error: JPY has no rate in exchange_rates to convert it to the reporting "
        "currency USD (first row: opportunities opportunity_id o8). Add its rates to the "
        "exchange_rates file (rate = units of JPY per 1 USD)."
    ]
    # the marts keep their previous tables
    after = query(tmp_path / "w.duckdb", "select * from marts.kpi_monthly_sales order by all")
    assert after == before


def test_currency_codes_without_a_reporting_currency_fail_saying_so(tmp_path) -> None:
    assert errors(build(tmp_path, EXPORT)) == [
        "Invalid Input Error: the export has money in currency EUR (first row: opportunities "
        "opportunity_id o1) but no reporting currency is set, so nothing can be summed in "
        "one currency. Set reporting_currency in [tool.kpi] (for example "
        'reporting_currency = "USD") and give the rates of every other currency in an '
        "exchange_rates file."
    ]


def test_the_exchange_rates_file_may_be_absent(tmp_path) -> None:
    plain = {t: rows for t, rows in EXPORT.items() if t != "exchange_rates"}
    for table in ("opportunities", "quotas", "subscriptions"):
        plain[table] = [{**r, "currency_code": ""} for r in plain[table]]
    write_export(tmp_path / "export", plain)
    project = Project.load(
        ROOT,
        warehouse=tmp_path / "w.duckdb",
        raw_dir=tmp_path / "export",
        target_path=tmp_path / "target",
        reporter=Reporter(stream=io.StringIO()),
    )
    result = project.build()
    assert result.exit_code == 0, result.summary
    log = project.reporter.stream.getvalue()  # type: ignore[attr-defined]
    assert "exchange_rates: no file (an optional table), empty" in log
    # no reporting currency: no currency_code column, amounts as exported
    assert query(tmp_path / "w.duckdb", "select sum(amount) from marts.fct_opportunities") == [
        (Decimal("1940.0000"),)  # 1000 + 500 + 200 + 100 + 50 + 90
    ]


@pytest.mark.parametrize("code", ["usd", "US", "EURO", 978])
def test_a_reporting_currency_that_is_not_an_iso_code_is_a_clear_error(tmp_path, code) -> None:
    with pytest.raises(ProjectError, match="reporting_currency must be a three-letter ISO 4217"):
        Project.load(
            ROOT,
            warehouse=tmp_path / "w.duckdb",
            target_path=tmp_path / "target",
            vars={"reporting_currency": code},
        )


def test_a_new_rate_reconverts_incrementally_as_a_clean_build_would(tmp_path) -> None:
    later = {**EXPORT, "exchange_rates": [*EXPORT["exchange_rates"]]}
    later["exchange_rates"].append(
        {"currency_code": "EUR", "valid_from": "2026-03-05", "rate": "1.2"}
    )
    assert build(tmp_path, EXPORT, reporting_currency="USD").exit_code == 0
    # on the previous build: an incremental run, no model rebuilt in full
    assert build(tmp_path, later, reporting_currency="USD").exit_code == 0
    assert "Rebuilding int_opportunities_enriched" not in LOGS[tmp_path]
    assert "Running " in LOGS[tmp_path]
    assert build(tmp_path / "clean", later, reporting_currency="USD").exit_code == 0
    sql = "select opportunity_id, amount from marts.fct_opportunities order by all"
    incremental = query(tmp_path / "w.duckdb", sql)
    assert incremental == query(tmp_path / "clean" / "w.duckdb", sql)
    # o1 (closed 2026-03-01) keeps the 0.9 rate; o6, open, takes the new latest one
    assert dict(incremental)["o1"] == Decimal("1111.1111")
    assert dict(incremental)["o6"] == Decimal("75.0000")  # 90 / 1.2
    for mart in ("kpi_monthly_sales", "kpi_quota_attainment", "kpi_avg_deal_size"):
        sql = f"select * from marts.{mart} order by all"
        assert query(tmp_path / "w.duckdb", sql) == query(tmp_path / "clean" / "w.duckdb", sql)


def test_a_single_currency_export_loads_without_currency_warnings(demo_build) -> None:
    # the demo has no currency_code columns and no exchange_rates file
    project, _ = demo_build
    log = project.reporter.stream.getvalue()
    assert "exchange_rates: no file (an optional table), empty" in log
    assert "currency_code absent" not in log
    assert "optional column(s)" not in log
