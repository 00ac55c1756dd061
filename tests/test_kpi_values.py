"""Every KPI value of the `crm_small` export, computed by hand from KPI_SPEC.md.

The export (`tests/fixtures/crm_small/`, described in its README.md) covers
2026-01 .. 2026-04. Each expected value is a literal with the arithmetic that
gives it, naming the fixture rows (deals `o*`, leads `L*`, activities `act*`,
subscriptions `s*`). Users: `m1` manager (T1), `r1` (T1), `r2` (T1,
terminated 2026-02-20), `r3` (T2, hired 2026-03-10), `r4` (T2), and `x9`, an
owner id missing from `users` (team NULL).

Active reps per month: Jan r1 r2 r4; Feb r1 r2 r4; Mar r1 r3 r4; Apr r1 r3 r4.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from runner import Project

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "crm_small"

JAN = date(2026, 1, 1)
FEB = date(2026, 2, 1)
MAR = date(2026, 3, 1)
APR = date(2026, 4, 1)
MONTHS = [JAN, FEB, MAR, APR]

# Columns of each mart beyond the shared month / level / team_id / rep_id
# (KPI_SPEC section 2).
MART_COLUMNS: dict[str, list[str]] = {
    "kpi_win_rate": ["won_deals", "lost_deals", "closed_deals", "win_rate"],
    "kpi_lead_conversion": [
        "leads",
        "mqls",
        "sqls",
        "customers",
        "conversion_rate_pct",
        "mql_to_sql_rate",
        "sql_to_customer_rate",
    ],
    "kpi_avg_deal_size": [
        "won_deals",
        "won_amount",
        "avg_deal_size",
        "prev_avg_deal_size",
        "mom_change_pct",
    ],
    "kpi_days_to_close": ["won_deals", "total_days_to_close", "avg_days_to_close"],
    "kpi_quota_attainment": [
        "quota_amount",
        "won_amount",
        "attainment",
        "reps_with_quota",
        "reps_meeting_quota",
        "pct_reps_meeting_quota",
        "met_quota",
    ],
    "kpi_stage_duration": [
        "stage_name",
        "stage_order",
        "exits",
        "total_days_in_stage",
        "avg_days_in_stage",
        "median_days_in_stage",
        "open_deals_at_month_end",
    ],
    "kpi_monthly_sales": [
        "won_deals",
        "won_amount",
        "quota_amount",
        "attainment",
        "prev_won_amount",
        "mom_growth_pct",
    ],
    "kpi_churn": [
        "customers_at_start",
        "customers_at_end",
        "new_customers",
        "churned_customers",
        "churn_rate",
        "net_churn_rate",
    ],
    "kpi_lead_response_time": [
        "leads",
        "contacted_leads",
        "total_response_minutes",
        "avg_response_minutes",
        "median_response_minutes",
        "contacted_within_1h",
        "pct_contacted_within_1h",
    ],
    "kpi_sales_effort": [
        "calls",
        "emails",
        "meetings",
        "demos",
        "other_activities",
        "total_activities",
    ],
}
SHARED = ["month", "level", "team_id", "rep_id"]
STAGES = ["prospecting", "qualification", "evaluation", "proposal", "negotiation"]


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    work = tmp_path_factory.mktemp("kpi")
    path = work / "warehouse.duckdb"
    project = Project.load(ROOT, warehouse=path, raw_dir=FIXTURE, target_path=work / "target")
    result = project.build()
    assert result.exit_code == 0, result.summary
    return path


def _columns(con: duckdb.DuckDBPyConnection, mart: str) -> list[str]:
    cur = con.execute(f"select * from marts.{mart} limit 0")
    return [d[0] for d in cur.description]


def rows(warehouse: Path, mart: str, where: str = "level = 'company'") -> list[dict[str, Any]]:
    """Rows of `marts.<mart>` matching `where`, ordered by month, level, team_id, rep_id."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        present = _columns(con, mart)
        order = [c for c in SHARED if c in present]
        if "stage_order" in present:
            order += ["stage_order", "stage_name"]
        order_by = ", ".join(f"{c} nulls first" for c in order)
        cur = con.execute(f"select * from marts.{mart} where {where} order by {order_by}")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()


def _sql(value: str | date | None) -> str:
    if value is None:
        return "null"
    return f"'{value}'"


def _eq(column: str, value: str | date | None) -> str:
    return f"{column} is null" if value is None else f"{column} = {_sql(value)}"


def _same(actual: Any, expected: Any) -> bool:
    if expected is None:
        return actual is None
    if isinstance(expected, bool):
        return actual is expected
    if isinstance(expected, int | float):
        if actual is None or isinstance(actual, bool):
            return False
        if isinstance(actual, Decimal):
            actual = float(actual)
        return float(actual) == pytest.approx(expected)
    return actual == expected


def assert_values(actual: dict[str, Any], expected: dict[str, Any], label: str) -> None:
    problems = []
    for column, want in expected.items():
        if column not in actual:
            problems.append(f"{column}: no such column")
        elif not _same(actual[column], want):
            problems.append(f"{column}: expected {want!r}, got {actual[column]!r}")
    assert not problems, f"{label}: " + "; ".join(problems)


def expect_row(
    warehouse: Path,
    mart: str,
    month: date,
    level: str,
    team_id: str | None,
    rep_id: str | None,
    expected: dict[str, Any],
) -> None:
    """Exactly one row has this key, and every mart column has the expected value."""
    assert set(expected) == set(MART_COLUMNS[mart]), "the expected row must give every column"
    where = " and ".join(
        [
            _eq("month", month),
            _eq("level", level),
            _eq("team_id", team_id),
            _eq("rep_id", rep_id),
        ]
    )
    if mart == "kpi_stage_duration":
        where += " and " + _eq("stage_name", expected["stage_name"])
    found = rows(warehouse, mart, where)
    label = f"{mart} {month} {level} team={team_id} rep={rep_id}"
    if mart == "kpi_stage_duration":
        label += f" stage={expected['stage_name']}"
    assert len(found) == 1, f"{label}: expected one row, found {len(found)}"
    assert_values(found[0], expected, label)


def expect_company_rows(warehouse: Path, mart: str, expected: dict[date, dict[str, Any]]) -> None:
    """One company row per month of the range, every column as expected."""
    found = rows(warehouse, mart)
    assert [r["month"] for r in found] == list(expected)
    for row in found:
        want = expected[row["month"]]
        assert set(want) == set(MART_COLUMNS[mart]), "the expected row must give every column"
        assert row.get("team_id") is None
        assert row.get("rep_id") is None
        assert_values(row, want, f"{mart} {row['month']} company")


def keys(warehouse: Path, mart: str, month: date) -> set[tuple[str, str | None, str | None]]:
    return {
        (r["level"], r["team_id"], r["rep_id"]) for r in rows(warehouse, mart, _eq("month", month))
    }


def rep_months(warehouse: Path, mart: str, rep_id: str) -> list[date]:
    return [r["month"] for r in rows(warehouse, mart, f"level = 'rep' and {_eq('rep_id', rep_id)}")]


# Key sets shared by several marts.
COMPANY = ("company", None, None)
# March in the marts counted by close month: active reps r1, r3, r4, plus the
# owners of March's closed/won deals: m1 (o4), x9 (o5), r2 (o6, terminated).
MARCH_CLOSE_KEYS = {
    COMPANY,
    ("team", "T1", None),
    ("team", "T2", None),
    ("team", None, None),  # x9's team
    ("rep", "T1", "m1"),
    ("rep", "T1", "r1"),
    ("rep", "T1", "r2"),
    ("rep", "T2", "r3"),
    ("rep", "T2", "r4"),
    ("rep", None, "x9"),
}
# March lead cohort: active reps r1, r3, r4 plus x9 (owner of L12). No m1 (no
# leads), no r2 (terminated, no leads).
MARCH_LEAD_KEYS = {
    COMPANY,
    ("team", "T1", None),
    ("team", "T2", None),
    ("team", None, None),
    ("rep", "T1", "r1"),
    ("rep", "T2", "r3"),
    ("rep", "T2", "r4"),
    ("rep", None, "x9"),
}


# --------------------------------------------------------------------------- range


@pytest.mark.parametrize("mart", sorted(MART_COLUMNS))
def test_company_rows_cover_exactly_the_range_from_the_data(warehouse, mart):
    # Earliest: act01 2025-12-31T20:00:00-05:00 = 2026-01-01 01:00 UTC (January).
    # Latest: April (leads, deals, activities, quotas). o11 is open: its
    # close_date 2026-06-15 is ignored; subscriptions (2025 .. May 2026) do not count.
    months = sorted({r["month"] for r in rows(warehouse, mart)})
    assert months == MONTHS


@pytest.mark.parametrize("mart", sorted(MART_COLUMNS))
def test_mart_columns_are_the_contract_columns(warehouse, mart):
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        present = set(_columns(con, mart))
    finally:
        con.close()
    wanted = {"month", "level", *MART_COLUMNS[mart]}
    if mart == "kpi_churn":
        # company rows only: team_id / rep_id may be left out (always NULL)
        assert wanted <= present <= wanted | {"team_id", "rep_id"}
    else:
        assert present == wanted | {"team_id", "rep_id"}


# --------------------------------------------------------------------------- 1 win rate

WIN_RATE_COMPANY = {
    JAN: {
        "won_deals": 3,  # o1 (r1), o3 (r4, NULL amount), o15 (r2)
        "lost_deals": 1,  # o2 (r1)
        "closed_deals": 4,  # 3 + 1
        "win_rate": 0.75,  # 3 / 4
    },
    FEB: {
        "won_deals": 0,  # no deal closes in February
        "lost_deals": 0,
        "closed_deals": 0,
        "win_rate": None,  # 0 / 0
    },
    MAR: {
        "won_deals": 5,  # o4 (m1), o5 (x9), o6 (r2), o14 (r4), o17 (r1)
        "lost_deals": 1,  # o13 (r1)
        "closed_deals": 6,  # 5 + 1
        "win_rate": 0.8333333333,  # 5 / 6
    },
    APR: {
        "won_deals": 2,  # o7 (r3), o8 (r1); o10 (is_won=true, close_date 04-28) is open
        "lost_deals": 1,  # o9 (r4)
        "closed_deals": 3,  # 2 + 1
        "win_rate": 0.6666666667,  # 2 / 3
    },
}


def test_win_rate_company_rows(warehouse):
    expect_company_rows(warehouse, "kpi_win_rate", WIN_RATE_COMPANY)


def test_win_rate_team_rows_march(warehouse):
    m = "kpi_win_rate"
    # T1: r1 (o17 won, o13 lost), m1 (o4 won), r2 (o6 won)
    expect_row(warehouse, m, MAR, "team", "T1", None, {
        "won_deals": 3, "lost_deals": 1, "closed_deals": 4,
        "win_rate": 0.75,  # 3 / 4
    })  # fmt: skip
    # T2: r4 (o14 won), r3 (nothing)
    expect_row(warehouse, m, MAR, "team", "T2", None, {
        "won_deals": 1, "lost_deals": 0, "closed_deals": 1, "win_rate": 1.0,  # 1 / 1
    })  # fmt: skip
    # NULL team: x9 (o5 won)
    expect_row(warehouse, m, MAR, "team", None, None, {
        "won_deals": 1, "lost_deals": 0, "closed_deals": 1, "win_rate": 1.0,  # 1 / 1
    })  # fmt: skip


def test_win_rate_team_rows_january_and_april(warehouse):
    m = "kpi_win_rate"
    # Jan T1: r1 (o1 won, o2 lost), r2 (o15 won)
    expect_row(warehouse, m, JAN, "team", "T1", None, {
        "won_deals": 2, "lost_deals": 1, "closed_deals": 3,
        "win_rate": 0.6666666667,  # 2 / 3
    })  # fmt: skip
    # Jan T2: r4 (o3 won)
    expect_row(warehouse, m, JAN, "team", "T2", None, {
        "won_deals": 1, "lost_deals": 0, "closed_deals": 1, "win_rate": 1.0,
    })  # fmt: skip
    # Apr T1: r1 (o8 won)
    expect_row(warehouse, m, APR, "team", "T1", None, {
        "won_deals": 1, "lost_deals": 0, "closed_deals": 1, "win_rate": 1.0,
    })  # fmt: skip
    # Apr T2: r3 (o7 won), r4 (o9 lost)
    expect_row(warehouse, m, APR, "team", "T2", None, {
        "won_deals": 1, "lost_deals": 1, "closed_deals": 2, "win_rate": 0.5,  # 1 / 2
    })  # fmt: skip


def test_win_rate_rep_rows_march(warehouse):
    m = "kpi_win_rate"
    # r1: o17 won, o13 lost -> 1 / 2
    expect_row(warehouse, m, MAR, "rep", "T1", "r1", {
        "won_deals": 1, "lost_deals": 1, "closed_deals": 2, "win_rate": 0.5,
    })  # fmt: skip
    # manager m1 owns o4 (won)
    expect_row(warehouse, m, MAR, "rep", "T1", "m1", {
        "won_deals": 1, "lost_deals": 0, "closed_deals": 1, "win_rate": 1.0,
    })  # fmt: skip
    # unknown owner x9 owns o5 (won): team NULL
    expect_row(warehouse, m, MAR, "rep", None, "x9", {
        "won_deals": 1, "lost_deals": 0, "closed_deals": 1, "win_rate": 1.0,
    })  # fmt: skip
    # r2, terminated 2026-02-20, still owns o6 (won 2026-03-02)
    expect_row(warehouse, m, MAR, "rep", "T1", "r2", {
        "won_deals": 1, "lost_deals": 0, "closed_deals": 1, "win_rate": 1.0,
    })  # fmt: skip
    # r3, hired 2026-03-10, closes nothing in March: zeros, NULL rate (0 / 0)
    expect_row(warehouse, m, MAR, "rep", "T2", "r3", {
        "won_deals": 0, "lost_deals": 0, "closed_deals": 0, "win_rate": None,
    })  # fmt: skip
    # r4: o14 won
    expect_row(warehouse, m, MAR, "rep", "T2", "r4", {
        "won_deals": 1, "lost_deals": 0, "closed_deals": 1, "win_rate": 1.0,
    })  # fmt: skip


def test_win_rate_month_without_closed_deals_has_zero_rows_for_active_reps(warehouse):
    zero = {"won_deals": 0, "lost_deals": 0, "closed_deals": 0, "win_rate": None}
    for team, rep in [("T1", "r1"), ("T1", "r2"), ("T2", "r4")]:
        expect_row(warehouse, "kpi_win_rate", FEB, "rep", team, rep, zero)
    for team in ["T1", "T2"]:
        expect_row(warehouse, "kpi_win_rate", FEB, "team", team, None, zero)
    assert keys(warehouse, "kpi_win_rate", FEB) == {
        COMPANY,
        ("team", "T1", None),
        ("team", "T2", None),
        ("rep", "T1", "r1"),
        ("rep", "T1", "r2"),
        ("rep", "T2", "r4"),
    }


def test_win_rate_row_keys_march(warehouse):
    assert keys(warehouse, "kpi_win_rate", MAR) == MARCH_CLOSE_KEYS


def test_win_rate_row_keys_april_without_terminated_rep(warehouse):
    # active r1, r3, r4; owners of April's closed deals r3 (o7), r1 (o8), r4 (o9)
    assert keys(warehouse, "kpi_win_rate", APR) == {
        COMPANY,
        ("team", "T1", None),
        ("team", "T2", None),
        ("rep", "T1", "r1"),
        ("rep", "T2", "r3"),
        ("rep", "T2", "r4"),
    }


# --------------------------------------------------------------------------- 2 lead conversion

LEAD_CONVERSION_COMPANY = {
    JAN: {
        "leads": 5,  # L1, L2, L3, L4, L5
        "mqls": 4,  # L1, L2, L3, L4
        "sqls": 3,  # L1, L2, L3
        "customers": 1,  # L1 -> o1 (won). L3 -> o13 is lost; L2 is named by o14 (won)
        #                  but has no converted_opportunity_id
        "conversion_rate_pct": 20.0,  # 1 / 5 x 100
        "mql_to_sql_rate": 0.75,  # 3 / 4
        "sql_to_customer_rate": 0.3333333333,  # 1 / 3
    },
    FEB: {
        "leads": 3,  # L6 (2026-01-31T23:30-05:00 = Feb 1 04:30 UTC), L7, L8
        "mqls": 2,  # L7, L8
        "sqls": 1,  # L7
        "customers": 1,  # L7 -> o8, won in April; L8 -> o98 (unknown deal)
        "conversion_rate_pct": 33.3333333333,  # 1 / 3 x 100
        "mql_to_sql_rate": 0.5,  # 1 / 2
        "sql_to_customer_rate": 1.0,  # 1 / 1
    },
    MAR: {
        "leads": 4,  # L9, L10, L11, L12
        "mqls": 3,  # L9, L10, L12
        "sqls": 2,  # L9, L11 (L11 has sql_at without mql_at)
        "customers": 1,  # L9 -> o7, won in April
        "conversion_rate_pct": 25.0,  # 1 / 4 x 100
        "mql_to_sql_rate": 0.6666666667,  # 2 / 3
        "sql_to_customer_rate": 0.5,  # 1 / 2
    },
    APR: {
        "leads": 3,  # L13, L14, L15
        "mqls": 2,  # L13, L14
        "sqls": 1,  # L13
        "customers": 0,
        "conversion_rate_pct": 0.0,  # 0 / 3 x 100
        "mql_to_sql_rate": 0.5,  # 1 / 2
        "sql_to_customer_rate": 0.0,  # 0 / 1
    },
}


def test_lead_conversion_company_rows(warehouse):
    expect_company_rows(warehouse, "kpi_lead_conversion", LEAD_CONVERSION_COMPANY)


def test_lead_conversion_team_rows_january(warehouse):
    m = "kpi_lead_conversion"
    # T1: r1 (L1 mql sql customer, L2 mql sql), r2 (L3 mql sql, lost deal)
    expect_row(warehouse, m, JAN, "team", "T1", None, {
        "leads": 3, "mqls": 3, "sqls": 3, "customers": 1,
        "conversion_rate_pct": 33.3333333333,  # 1 / 3 x 100
        "mql_to_sql_rate": 1.0,  # 3 / 3
        "sql_to_customer_rate": 0.3333333333,  # 1 / 3
    })  # fmt: skip
    # T2: r4 (L4 mql, L5 nothing)
    expect_row(warehouse, m, JAN, "team", "T2", None, {
        "leads": 2, "mqls": 1, "sqls": 0, "customers": 0,
        "conversion_rate_pct": 0.0,  # 0 / 2 x 100
        "mql_to_sql_rate": 0.0,  # 0 / 1
        "sql_to_customer_rate": None,  # 0 / 0
    })  # fmt: skip


def test_lead_conversion_team_rows_march(warehouse):
    m = "kpi_lead_conversion"
    # T1: r1 (L11: sql only)
    expect_row(warehouse, m, MAR, "team", "T1", None, {
        "leads": 1, "mqls": 0, "sqls": 1, "customers": 0,
        "conversion_rate_pct": 0.0,  # 0 / 1 x 100
        "mql_to_sql_rate": None,  # 1 / 0
        "sql_to_customer_rate": 0.0,  # 0 / 1
    })  # fmt: skip
    # T2: r3 (L9 mql sql customer, L10 mql), r4 (no leads)
    expect_row(warehouse, m, MAR, "team", "T2", None, {
        "leads": 2, "mqls": 2, "sqls": 1, "customers": 1,
        "conversion_rate_pct": 50.0,  # 1 / 2 x 100
        "mql_to_sql_rate": 0.5,  # 1 / 2
        "sql_to_customer_rate": 1.0,  # 1 / 1
    })  # fmt: skip
    # NULL team: x9 (L12 mql)
    expect_row(warehouse, m, MAR, "team", None, None, {
        "leads": 1, "mqls": 1, "sqls": 0, "customers": 0,
        "conversion_rate_pct": 0.0, "mql_to_sql_rate": 0.0,  # 0 / 1
        "sql_to_customer_rate": None,  # 0 / 0
    })  # fmt: skip


def test_lead_conversion_rep_rows(warehouse):
    m = "kpi_lead_conversion"
    # unknown owner x9: L12
    expect_row(warehouse, m, MAR, "rep", None, "x9", {
        "leads": 1, "mqls": 1, "sqls": 0, "customers": 0,
        "conversion_rate_pct": 0.0, "mql_to_sql_rate": 0.0, "sql_to_customer_rate": None,
    })  # fmt: skip
    # r4 is active in March but owns no March lead: zeros, NULL rates
    expect_row(warehouse, m, MAR, "rep", "T2", "r4", {
        "leads": 0, "mqls": 0, "sqls": 0, "customers": 0,
        "conversion_rate_pct": None, "mql_to_sql_rate": None, "sql_to_customer_rate": None,
    })  # fmt: skip
    # r1 in February: L7 -> o8 won in April counts in February's cohort
    expect_row(warehouse, m, FEB, "rep", "T1", "r1", {
        "leads": 1, "mqls": 1, "sqls": 1, "customers": 1,
        "conversion_rate_pct": 100.0, "mql_to_sql_rate": 1.0, "sql_to_customer_rate": 1.0,
    })  # fmt: skip
    # r2 in February: L6 (disqualified, nothing)
    expect_row(warehouse, m, FEB, "rep", "T1", "r2", {
        "leads": 1, "mqls": 0, "sqls": 0, "customers": 0,
        "conversion_rate_pct": 0.0, "mql_to_sql_rate": None, "sql_to_customer_rate": None,
    })  # fmt: skip
    # r1 in January: L1 (customer through o1), L2 (o14 won, but not converted)
    expect_row(warehouse, m, JAN, "rep", "T1", "r1", {
        "leads": 2, "mqls": 2, "sqls": 2, "customers": 1,
        "conversion_rate_pct": 50.0,  # 1 / 2 x 100
        "mql_to_sql_rate": 1.0, "sql_to_customer_rate": 0.5,  # 1 / 2
    })  # fmt: skip


def test_lead_conversion_row_keys_march(warehouse):
    assert keys(warehouse, "kpi_lead_conversion", MAR) == MARCH_LEAD_KEYS


# --------------------------------------------------------------------------- 3 avg deal size

AVG_DEAL_SIZE_COMPANY = {
    JAN: {
        "won_deals": 3,  # o1, o3, o15
        "won_amount": 1400,  # 1000 + 0 (o3 NULL) + 400
        "avg_deal_size": 466.6666666667,  # 1400 / 3
        "prev_avg_deal_size": None,  # first month
        "mom_change_pct": None,
    },
    FEB: {
        "won_deals": 0,
        "won_amount": 0,
        "avg_deal_size": None,  # 0 / 0
        "prev_avg_deal_size": 466.6666666667,  # January
        "mom_change_pct": None,  # current NULL
    },
    MAR: {
        "won_deals": 5,  # o4, o5, o6, o14, o17
        "won_amount": 4800.50,  # 2000 + 700 + 300 + 1200.50 + 600
        "avg_deal_size": 960.1,  # 4800.50 / 5
        "prev_avg_deal_size": None,  # February's average is NULL
        "mom_change_pct": None,  # previous NULL
    },
    APR: {
        "won_deals": 2,  # o7, o8
        "won_amount": 2300,  # 1500 + 800
        "avg_deal_size": 1150.0,  # 2300 / 2
        "prev_avg_deal_size": 960.1,  # March
        "mom_change_pct": 19.7791896677,  # (1150 - 960.1) / 960.1 x 100 = 189.9 / 960.1 x 100
    },
}


def test_avg_deal_size_company_rows(warehouse):
    expect_company_rows(warehouse, "kpi_avg_deal_size", AVG_DEAL_SIZE_COMPANY)


def test_avg_deal_size_team_rows(warehouse):
    m = "kpi_avg_deal_size"
    # Jan T1: o1 1000 (r1) + o15 400 (r2)
    expect_row(warehouse, m, JAN, "team", "T1", None, {
        "won_deals": 2, "won_amount": 1400, "avg_deal_size": 700.0,  # 1400 / 2
        "prev_avg_deal_size": None, "mom_change_pct": None,
    })  # fmt: skip
    # Jan T2: o3 NULL amount counts 0
    expect_row(warehouse, m, JAN, "team", "T2", None, {
        "won_deals": 1, "won_amount": 0, "avg_deal_size": 0.0,  # 0 / 1
        "prev_avg_deal_size": None, "mom_change_pct": None,
    })  # fmt: skip
    # Apr T1: o8 800; March T1 = o4 2000 + o6 300 + o17 600 = 2900 / 3 = 966.67
    expect_row(warehouse, m, APR, "team", "T1", None, {
        "won_deals": 1, "won_amount": 800, "avg_deal_size": 800.0,
        "prev_avg_deal_size": 966.6666666667,  # 2900 / 3
        "mom_change_pct": -17.2413793103,  # (800 - 966.67) / 966.67 x 100 = -500 / 2900 x 100
    })  # fmt: skip
    # Apr T2: o7 1500 (o9 is lost); March T2 = o14 1200.50 / 1
    expect_row(warehouse, m, APR, "team", "T2", None, {
        "won_deals": 1, "won_amount": 1500, "avg_deal_size": 1500.0,
        "prev_avg_deal_size": 1200.5,
        "mom_change_pct": 24.9479383590,  # (1500 - 1200.5) / 1200.5 x 100 = 299.5 / 1200.5 x 100
    })  # fmt: skip
    # Mar NULL team: x9 o5 700; no NULL-team row in February
    expect_row(warehouse, m, MAR, "team", None, None, {
        "won_deals": 1, "won_amount": 700, "avg_deal_size": 700.0,
        "prev_avg_deal_size": None, "mom_change_pct": None,
    })  # fmt: skip


def test_avg_deal_size_rep_rows(warehouse):
    m = "kpi_avg_deal_size"
    # r1 Apr: o8 800; r1 Mar: o17 600
    expect_row(warehouse, m, APR, "rep", "T1", "r1", {
        "won_deals": 1, "won_amount": 800, "avg_deal_size": 800.0,
        "prev_avg_deal_size": 600.0,
        "mom_change_pct": 33.3333333333,  # (800 - 600) / 600 x 100
    })  # fmt: skip
    # manager m1 Mar: o4 2000; m1 has no February row
    expect_row(warehouse, m, MAR, "rep", "T1", "m1", {
        "won_deals": 1, "won_amount": 2000, "avg_deal_size": 2000.0,
        "prev_avg_deal_size": None, "mom_change_pct": None,
    })  # fmt: skip
    # unknown owner x9 Mar: o5 700
    expect_row(warehouse, m, MAR, "rep", None, "x9", {
        "won_deals": 1, "won_amount": 700, "avg_deal_size": 700.0,
        "prev_avg_deal_size": None, "mom_change_pct": None,
    })  # fmt: skip
    # r4 Jan: o3, won with a NULL amount
    expect_row(warehouse, m, JAN, "rep", "T2", "r4", {
        "won_deals": 1, "won_amount": 0, "avg_deal_size": 0.0,
        "prev_avg_deal_size": None, "mom_change_pct": None,
    })  # fmt: skip
    # r4 Feb: nothing won; previous average is 0.0
    expect_row(warehouse, m, FEB, "rep", "T2", "r4", {
        "won_deals": 0, "won_amount": 0, "avg_deal_size": None,
        "prev_avg_deal_size": 0.0, "mom_change_pct": None,
    })  # fmt: skip
    # r2 Mar (terminated): o6 300; February row has a NULL average
    expect_row(warehouse, m, MAR, "rep", "T1", "r2", {
        "won_deals": 1, "won_amount": 300, "avg_deal_size": 300.0,
        "prev_avg_deal_size": None, "mom_change_pct": None,
    })  # fmt: skip


def test_avg_deal_size_row_keys_march(warehouse):
    assert keys(warehouse, "kpi_avg_deal_size", MAR) == MARCH_CLOSE_KEYS


# --------------------------------------------------------------------------- 4 days to close
# Per won deal: close_date - UTC date of the first touch.
#   o1  close 01-20, first touch act01 2025-12-31T20:00-05:00 = 2026-01-01 UTC (lead L1,
#       before L1 existed)                                             -> 19
#   o3  close 01-28, created 2026-01-10T01:00+02:00 = 01-09 UTC       -> 19
#   o15 close 01-30, act09 (opp o15) 01-16, before o15 created 01-20  -> 14
#   o4  close 03-05, created 01-15 (act16/17 in Feb)                  -> 16 + 28 + 5 = 49
#   o5  close 03-12, created 02-01                                    -> 28 + 11 = 39
#   o6  close 03-02, created 01-25                                    -> 6 + 28 + 2 = 36
#   o14 close 03-25, lead L2 created 01-06 (act03 01-06)              -> 25 + 28 + 25 = 78
#   o17 close 03-31, created 03-10                                    -> 21
#   o7  close 04-10, lead L9 created 03-11 (act19 03-11)              -> 20 + 10 = 30
#   o8  close 04-20, lead L7 created 02-10 (act15 02-10)              -> 18 + 31 + 20 = 69

DAYS_TO_CLOSE_COMPANY = {
    JAN: {
        "won_deals": 3,
        "total_days_to_close": 52,  # 19 (o1) + 19 (o3) + 14 (o15)
        "avg_days_to_close": 17.3333333333,  # 52 / 3
    },
    FEB: {"won_deals": 0, "total_days_to_close": 0, "avg_days_to_close": None},
    MAR: {
        "won_deals": 5,
        "total_days_to_close": 223,  # 49 (o4) + 39 (o5) + 36 (o6) + 78 (o14) + 21 (o17)
        "avg_days_to_close": 44.6,  # 223 / 5
    },
    APR: {
        "won_deals": 2,
        "total_days_to_close": 99,  # 30 (o7) + 69 (o8)
        "avg_days_to_close": 49.5,  # 99 / 2
    },
}


def test_days_to_close_company_rows(warehouse):
    expect_company_rows(warehouse, "kpi_days_to_close", DAYS_TO_CLOSE_COMPANY)


def test_days_to_close_team_rows_march(warehouse):
    m = "kpi_days_to_close"
    # T1: o4 49 (m1) + o6 36 (r2) + o17 21 (r1)
    expect_row(warehouse, m, MAR, "team", "T1", None, {
        "won_deals": 3, "total_days_to_close": 106,
        "avg_days_to_close": 35.3333333333,  # 106 / 3
    })  # fmt: skip
    # T2: o14 78 (r4)
    expect_row(warehouse, m, MAR, "team", "T2", None, {
        "won_deals": 1, "total_days_to_close": 78, "avg_days_to_close": 78.0,
    })  # fmt: skip
    # NULL team: o5 39 (x9)
    expect_row(warehouse, m, MAR, "team", None, None, {
        "won_deals": 1, "total_days_to_close": 39, "avg_days_to_close": 39.0,
    })  # fmt: skip


def test_days_to_close_first_touch_before_the_lead_existed(warehouse):
    # o1: act01 (lead L1) at 2026-01-01 01:00 UTC precedes L1 (01-02) and o1 (01-05)
    expect_row(warehouse, "kpi_days_to_close", JAN, "rep", "T1", "r1", {
        "won_deals": 1, "total_days_to_close": 19, "avg_days_to_close": 19.0,  # 01-20 - 01-01
    })  # fmt: skip


def test_days_to_close_first_touch_uses_the_utc_date(warehouse):
    # o3 created 2026-01-10T01:00:00+02:00 = 2026-01-09 23:00 UTC
    expect_row(warehouse, "kpi_days_to_close", JAN, "rep", "T2", "r4", {
        "won_deals": 1, "total_days_to_close": 19, "avg_days_to_close": 19.0,  # 01-28 - 01-09
    })  # fmt: skip


def test_days_to_close_first_touch_through_deal_activity(warehouse):
    # o15: act09 (opportunity o15) on 01-16, before o15 was created on 01-20
    expect_row(warehouse, "kpi_days_to_close", JAN, "rep", "T1", "r2", {
        "won_deals": 1, "total_days_to_close": 14, "avg_days_to_close": 14.0,  # 01-30 - 01-16
    })  # fmt: skip


def test_days_to_close_first_touch_through_deal_lead(warehouse):
    m = "kpi_days_to_close"
    # o14: lead L2 created 2026-01-06T08:00Z (o14 itself created 02-05)
    expect_row(warehouse, m, MAR, "rep", "T2", "r4", {
        "won_deals": 1, "total_days_to_close": 78, "avg_days_to_close": 78.0,  # 03-25 - 01-06
    })  # fmt: skip
    # o7: lead L9 created 03-11 (o7 created 03-12)
    expect_row(warehouse, m, APR, "rep", "T2", "r3", {
        "won_deals": 1, "total_days_to_close": 30, "avg_days_to_close": 30.0,  # 04-10 - 03-11
    })  # fmt: skip
    # o8: lead L7 created 02-10 (o8 created 02-12)
    expect_row(warehouse, m, APR, "rep", "T1", "r1", {
        "won_deals": 1, "total_days_to_close": 69, "avg_days_to_close": 69.0,  # 04-20 - 02-10
    })  # fmt: skip


def test_days_to_close_manager_unknown_owner_and_rep_without_wins(warehouse):
    m = "kpi_days_to_close"
    expect_row(warehouse, m, MAR, "rep", "T1", "m1", {
        "won_deals": 1, "total_days_to_close": 49, "avg_days_to_close": 49.0,  # o4
    })  # fmt: skip
    expect_row(warehouse, m, MAR, "rep", None, "x9", {
        "won_deals": 1, "total_days_to_close": 39, "avg_days_to_close": 39.0,  # o5
    })  # fmt: skip
    expect_row(warehouse, m, MAR, "rep", "T2", "r3", {
        "won_deals": 0, "total_days_to_close": 0, "avg_days_to_close": None,
    })  # fmt: skip


def test_days_to_close_row_keys_march(warehouse):
    assert keys(warehouse, "kpi_days_to_close", MAR) == MARCH_CLOSE_KEYS


# --------------------------------------------------------------------------- 5 quota attainment
# Quotas: Jan r1 1000, r2 500, r4 2000; Feb r1 1000, r2 500, r4 0;
#         Mar r1 1000, r4 1000, m1 1500 (r3, r2 none); Apr r1 1000, r3 1000, r4 800.
# Won amounts: Jan r1 1000, r2 400, r4 0; Feb none;
#              Mar m1 2000, x9 700, r2 300, r4 1200.50, r1 600; Apr r3 1500, r1 800.

QUOTA_ATTAINMENT_COMPANY = {
    JAN: {
        "quota_amount": 3500,  # 1000 + 500 + 2000
        "won_amount": 1400,  # 1000 + 400 + 0
        "attainment": 0.4,  # 1400 / 3500
        "reps_with_quota": 3,  # r1, r2, r4
        "reps_meeting_quota": 1,  # r1: 1000 >= 1000 x 1.0
        "pct_reps_meeting_quota": 33.3333333333,  # 1 / 3 x 100
        "met_quota": None,  # company row
    },
    FEB: {
        "quota_amount": 1500,  # 1000 + 500 + 0 (r4)
        "won_amount": 0,
        "attainment": 0.0,  # 0 / 1500
        "reps_with_quota": 2,  # r1, r2 (r4's quota is 0)
        "reps_meeting_quota": 0,
        "pct_reps_meeting_quota": 0.0,  # 0 / 2 x 100
        "met_quota": None,
    },
    MAR: {
        "quota_amount": 3500,  # r1 1000 + r4 1000 + m1 1500
        "won_amount": 4800.50,  # 2000 + 700 + 300 + 1200.50 + 600
        "attainment": 1.3715714286,  # 4800.50 / 3500
        "reps_with_quota": 3,  # r1, r4, m1 (manager rows count too)
        "reps_meeting_quota": 2,  # r4 1200.50 >= 1000, m1 2000 >= 1500 (r1 600 < 1000)
        "pct_reps_meeting_quota": 66.6666666667,  # 2 / 3 x 100
        "met_quota": None,
    },
    APR: {
        "quota_amount": 2800,  # 1000 + 1000 + 800
        "won_amount": 2300,  # r1 800 + r3 1500 + r4 0
        "attainment": 0.8214285714,  # 2300 / 2800
        "reps_with_quota": 3,  # r1, r3, r4
        "reps_meeting_quota": 1,  # r3 1500 >= 1000
        "pct_reps_meeting_quota": 33.3333333333,  # 1 / 3 x 100
        "met_quota": None,
    },
}


def test_quota_attainment_company_rows(warehouse):
    expect_company_rows(warehouse, "kpi_quota_attainment", QUOTA_ATTAINMENT_COMPANY)


def test_quota_attainment_team_rows(warehouse):
    m = "kpi_quota_attainment"
    # Jan T1: r1 (1000 / 1000, met), r2 (400 / 500)
    expect_row(warehouse, m, JAN, "team", "T1", None, {
        "quota_amount": 1500, "won_amount": 1400,
        "attainment": 0.9333333333,  # 1400 / 1500
        "reps_with_quota": 2, "reps_meeting_quota": 1,
        "pct_reps_meeting_quota": 50.0,  # 1 / 2 x 100
        "met_quota": None,
    })  # fmt: skip
    # Jan T2: r4 (0 / 2000)
    expect_row(warehouse, m, JAN, "team", "T2", None, {
        "quota_amount": 2000, "won_amount": 0, "attainment": 0.0,
        "reps_with_quota": 1, "reps_meeting_quota": 0, "pct_reps_meeting_quota": 0.0,
        "met_quota": None,
    })  # fmt: skip
    # Mar T1: r1 (600 / 1000), m1 (2000 / 1500, met), r2 (300, no quota)
    expect_row(warehouse, m, MAR, "team", "T1", None, {
        "quota_amount": 2500,  # 1000 + 1500 + 0
        "won_amount": 2900,  # 600 + 2000 + 300
        "attainment": 1.16,  # 2900 / 2500
        "reps_with_quota": 2, "reps_meeting_quota": 1,
        "pct_reps_meeting_quota": 50.0, "met_quota": None,
    })  # fmt: skip
    # Mar T2: r4 (1200.50 / 1000, met), r3 (no quota, nothing won)
    expect_row(warehouse, m, MAR, "team", "T2", None, {
        "quota_amount": 1000, "won_amount": 1200.5,
        "attainment": 1.2005,  # 1200.50 / 1000
        "reps_with_quota": 1, "reps_meeting_quota": 1,
        "pct_reps_meeting_quota": 100.0, "met_quota": None,
    })  # fmt: skip
    # Mar NULL team: x9 (700, no quota)
    expect_row(warehouse, m, MAR, "team", None, None, {
        "quota_amount": 0, "won_amount": 700, "attainment": None,  # 700 / 0
        "reps_with_quota": 0, "reps_meeting_quota": 0, "pct_reps_meeting_quota": None,
        "met_quota": None,
    })  # fmt: skip


def test_quota_attainment_rep_rows(warehouse):
    m = "kpi_quota_attainment"
    # r1 Jan: exactly at quota is met
    expect_row(warehouse, m, JAN, "rep", "T1", "r1", {
        "quota_amount": 1000, "won_amount": 1000, "attainment": 1.0,
        "reps_with_quota": 1, "reps_meeting_quota": 1, "pct_reps_meeting_quota": 100.0,
        "met_quota": True,
    })  # fmt: skip
    # r2 Jan: 400 < 500
    expect_row(warehouse, m, JAN, "rep", "T1", "r2", {
        "quota_amount": 500, "won_amount": 400, "attainment": 0.8,  # 400 / 500
        "reps_with_quota": 1, "reps_meeting_quota": 0, "pct_reps_meeting_quota": 0.0,
        "met_quota": False,
    })  # fmt: skip
    # r4 Feb: quota row of 0 is no quota
    expect_row(warehouse, m, FEB, "rep", "T2", "r4", {
        "quota_amount": 0, "won_amount": 0, "attainment": None,
        "reps_with_quota": 0, "reps_meeting_quota": 0, "pct_reps_meeting_quota": None,
        "met_quota": None,
    })  # fmt: skip
    # manager m1 Mar: quota 1500, won o4 2000
    expect_row(warehouse, m, MAR, "rep", "T1", "m1", {
        "quota_amount": 1500, "won_amount": 2000,
        "attainment": 1.3333333333,  # 2000 / 1500
        "reps_with_quota": 1, "reps_meeting_quota": 1, "pct_reps_meeting_quota": 100.0,
        "met_quota": True,
    })  # fmt: skip
    # r3 Mar: active rep without a quota row
    expect_row(warehouse, m, MAR, "rep", "T2", "r3", {
        "quota_amount": 0, "won_amount": 0, "attainment": None,
        "reps_with_quota": 0, "reps_meeting_quota": 0, "pct_reps_meeting_quota": None,
        "met_quota": None,
    })  # fmt: skip
    # unknown owner x9 Mar: o5 700
    expect_row(warehouse, m, MAR, "rep", None, "x9", {
        "quota_amount": 0, "won_amount": 700, "attainment": None,
        "reps_with_quota": 0, "reps_meeting_quota": 0, "pct_reps_meeting_quota": None,
        "met_quota": None,
    })  # fmt: skip
    # terminated r2 Mar: o6 300, no quota
    expect_row(warehouse, m, MAR, "rep", "T1", "r2", {
        "quota_amount": 0, "won_amount": 300, "attainment": None,
        "reps_with_quota": 0, "reps_meeting_quota": 0, "pct_reps_meeting_quota": None,
        "met_quota": None,
    })  # fmt: skip
    # r1 Mar: o17 600 < 1000
    expect_row(warehouse, m, MAR, "rep", "T1", "r1", {
        "quota_amount": 1000, "won_amount": 600, "attainment": 0.6,  # 600 / 1000
        "reps_with_quota": 1, "reps_meeting_quota": 0, "pct_reps_meeting_quota": 0.0,
        "met_quota": False,
    })  # fmt: skip


def test_quota_attainment_row_keys_march(warehouse):
    assert keys(warehouse, "kpi_quota_attainment", MAR) == MARCH_CLOSE_KEYS


# --------------------------------------------------------------------------- 6 stage duration
# Intervals (UTC; days = seconds / 86400), by the month they end in:
#   o1 (r1): prospecting 01-05 10:00 -> 01-05 10:00 = 0 (tie with evaluation: stage_order 1
#            before 3, although 'evaluation' < 'prospecting'); evaluation -> 01-12 10:00 = 7;
#            proposal -> 01-20 22:00 (23:00+01:00) = 8.5
#   o2 (r1): prospecting 01-03 09:00 -> 01-06 21:00 = 3.5; qualification -> 01-25 09:00 = 18.5
#   o4 (m1): prospecting 01-15 11:00 -> 01-25 11:00 = 10; evaluation (tie with proposal,
#            same order 3, 'evaluation' < 'proposal') = 0; proposal -> 01-31 23:00
#            (02-01T00:00+01:00) = 6.5; negotiation -> 03-05 11:00 = 32.5 (Mar)
#   o10 (r1): prospecting 01-20 09:00 -> 01-22 09:00 = 2; qualification -> 02-03 21:00 = 12.5
#            (Feb); proposal -> 02-10 09:00 = 6.5 (Feb); qualification -> 03-02 09:00 = 20
#            (Mar); negotiation still open
#   o11 (r4): prospecting 02-15 09:00 -> 02-20 09:00 = 5 (Feb; 'discovery' is unknown);
#            proposal still open
#   o7 (r3): prospecting 03-12 10:00 -> 03-20 10:00 = 8 (Mar); negotiation -> 04-05 10:00
#            = 16 (Apr); closed_won -> 04-06 not counted; negotiation -> 04-10 10:00 = 4 (Apr)
#   o12 (r3): prospecting 03-20 10:00 -> 03-21 22:00 (17:00-05:00) = 1.5 (Mar);
#            qualification still open
#   o16 (r4): prospecting from 04-01 00:00, still open
#   o99: unknown deal, ignored
# Open at month end (latest row before the next month's first instant, non-closed stage):
#   Jan: o4 negotiation (m1), o10 qualification (r1)
#   Feb: o4 negotiation (m1), o10 qualification (r1), o11 proposal (r4)
#   Mar: o10 negotiation (r1), o7 negotiation (r3), o12 qualification (r3), o11 proposal (r4)
#        (o16's row at 04-01 00:00 is not before April)
#   Apr: o10 negotiation (r1), o11 proposal (r4), o12 qualification (r3), o16 prospecting (r4)

STAGE_ORDER = {
    "prospecting": 1,
    "qualification": 2,
    "evaluation": 3,
    "proposal": 3,
    "negotiation": 4,
}


def stage(name: str, exits: int, total: float, avg, median, open_deals: int) -> dict[str, Any]:
    return {
        "stage_name": name,
        "stage_order": STAGE_ORDER[name],
        "exits": exits,
        "total_days_in_stage": total,
        "avg_days_in_stage": avg,
        "median_days_in_stage": median,
        "open_deals_at_month_end": open_deals,
    }


STAGE_DURATION_COMPANY = {
    JAN: [
        # o1 0, o2 3.5, o4 10, o10 2: total 15.5, avg 15.5 / 4, median (2 + 3.5) / 2
        stage("prospecting", 4, 15.5, 3.875, 2.75, 0),
        # o2 18.5; open o10
        stage("qualification", 1, 18.5, 18.5, 18.5, 1),
        # o1 7, o4 0 (zero-length): avg = median = 7 / 2
        stage("evaluation", 2, 7.0, 3.5, 3.5, 0),
        # o1 8.5, o4 6.5: 15 / 2
        stage("proposal", 2, 15.0, 7.5, 7.5, 0),
        # no exit; open o4
        stage("negotiation", 0, 0.0, None, None, 1),
    ],
    FEB: [
        stage("prospecting", 1, 5.0, 5.0, 5.0, 0),  # o11 5 (o99 ignored)
        stage("qualification", 1, 12.5, 12.5, 12.5, 1),  # o10 12.5; open o10
        stage("evaluation", 0, 0.0, None, None, 0),
        stage("proposal", 1, 6.5, 6.5, 6.5, 1),  # o10 6.5; open o11
        stage("negotiation", 0, 0.0, None, None, 1),  # open o4
    ],
    MAR: [
        stage("prospecting", 2, 9.5, 4.75, 4.75, 0),  # o7 8 + o12 1.5
        stage("qualification", 1, 20.0, 20.0, 20.0, 1),  # o10 20; open o12
        stage("evaluation", 0, 0.0, None, None, 0),
        stage("proposal", 0, 0.0, None, None, 1),  # open o11
        stage("negotiation", 1, 32.5, 32.5, 32.5, 2),  # o4 32.5; open o10, o7
    ],
    APR: [
        stage("prospecting", 0, 0.0, None, None, 1),  # open o16
        stage("qualification", 0, 0.0, None, None, 1),  # open o12
        stage("evaluation", 0, 0.0, None, None, 0),
        stage("proposal", 0, 0.0, None, None, 1),  # open o11
        stage("negotiation", 2, 20.0, 10.0, 10.0, 1),  # o7 16 + 4; open o10
    ],
}


def stage_rows(warehouse, month, level, team_id=None, rep_id=None):
    where = " and ".join(
        [_eq("month", month), _eq("level", level), _eq("team_id", team_id), _eq("rep_id", rep_id)]
    )
    return {r["stage_name"]: r for r in rows(warehouse, "kpi_stage_duration", where)}


def expect_stage_rows(warehouse, month, level, team_id, rep_id, expected):
    """Exactly these stages have a row for this key, with these values."""
    found = stage_rows(warehouse, month, level, team_id, rep_id)
    label = f"kpi_stage_duration {month} {level} team={team_id} rep={rep_id}"
    assert set(found) == {e["stage_name"] for e in expected}, label
    for want in expected:
        assert set(want) == set(MART_COLUMNS["kpi_stage_duration"])
        assert_values(found[want["stage_name"]], want, f"{label} stage={want['stage_name']}")


def test_stage_duration_company_rows(warehouse):
    found = rows(warehouse, "kpi_stage_duration")
    assert sorted({r["month"] for r in found}) == MONTHS
    for month in MONTHS:
        expect_stage_rows(warehouse, month, "company", None, None, STAGE_DURATION_COMPANY[month])
    # every non-closed stage, every month: 5 x 4 rows
    assert len(found) == 20


def test_stage_duration_team_rows(warehouse):
    # Jan: every deal with a January interval is T1's (r1: o1, o2, o10; m1: o4)
    expect_stage_rows(warehouse, JAN, "team", "T1", None, STAGE_DURATION_COMPANY[JAN])
    # Mar T1: o10 qualification 20 (r1); o4 negotiation 32.5 (m1); open o10 negotiation
    expect_stage_rows(warehouse, MAR, "team", "T1", None, [
        stage("qualification", 1, 20.0, 20.0, 20.0, 0),
        stage("negotiation", 1, 32.5, 32.5, 32.5, 1),
    ])  # fmt: skip
    # Mar T2: o7 8 + o12 1.5 (r3); open o12 qualification, o11 proposal, o7 negotiation
    expect_stage_rows(warehouse, MAR, "team", "T2", None, [
        stage("prospecting", 2, 9.5, 4.75, 4.75, 0),
        stage("qualification", 0, 0.0, None, None, 1),
        stage("proposal", 0, 0.0, None, None, 1),
        stage("negotiation", 0, 0.0, None, None, 1),
    ])  # fmt: skip
    # Apr T1: only o10, open in negotiation
    expect_stage_rows(warehouse, APR, "team", "T1", None, [
        stage("negotiation", 0, 0.0, None, None, 1),
    ])  # fmt: skip
    # Apr T2: o7 negotiation 16 + 4; open o16 prospecting, o12 qualification, o11 proposal
    expect_stage_rows(warehouse, APR, "team", "T2", None, [
        stage("prospecting", 0, 0.0, None, None, 1),
        stage("qualification", 0, 0.0, None, None, 1),
        stage("proposal", 0, 0.0, None, None, 1),
        stage("negotiation", 2, 20.0, 10.0, 10.0, 0),
    ])  # fmt: skip


def test_stage_duration_tie_broken_by_stage_order(warehouse):
    # r1 Jan: o1 prospecting 0 (tie at 01-05 10:00: prospecting (order 1) before evaluation
    # (order 3), although 'evaluation' sorts first by name), o2 3.5, o10 2 -> median of
    # (0, 2, 3.5) = 2; o1 evaluation 7 (01-05 10:00 -> 01-12 10:00)
    expect_stage_rows(warehouse, JAN, "rep", "T1", "r1", [
        stage("prospecting", 3, 5.5, 1.8333333333, 2.0, 0),  # (0 + 3.5 + 2) / 3
        stage("qualification", 1, 18.5, 18.5, 18.5, 1),  # o2; open o10
        stage("evaluation", 1, 7.0, 7.0, 7.0, 0),  # o1
        stage("proposal", 1, 8.5, 8.5, 8.5, 0),  # o1
    ])  # fmt: skip


def test_stage_duration_tie_broken_by_stage_name_gives_zero_length_interval(warehouse):
    # manager m1 owns o4: evaluation and proposal (both order 3) entered at 01-25 11:00 UTC
    expect_stage_rows(warehouse, JAN, "rep", "T1", "m1", [
        stage("prospecting", 1, 10.0, 10.0, 10.0, 0),
        stage("evaluation", 1, 0.0, 0.0, 0.0, 0),
        stage("proposal", 1, 6.5, 6.5, 6.5, 0),  # ends 2026-02-01T00:00+01:00 = Jan 31 UTC
        stage("negotiation", 0, 0.0, None, None, 1),  # open at Jan's end (entered Jan 31 23:00)
    ])  # fmt: skip


def test_stage_duration_revisit_gives_two_intervals(warehouse):
    # o10 (r1) is in qualification twice: 12.5 days (exit Feb) and 20 days (exit Mar)
    expect_stage_rows(warehouse, FEB, "rep", "T1", "r1", [
        stage("qualification", 1, 12.5, 12.5, 12.5, 1),  # back in qualification on 02-10
        stage("proposal", 1, 6.5, 6.5, 6.5, 0),
    ])  # fmt: skip
    expect_stage_rows(warehouse, MAR, "rep", "T1", "r1", [
        stage("qualification", 1, 20.0, 20.0, 20.0, 0),
        stage("negotiation", 0, 0.0, None, None, 1),  # open interval: not an exit
    ])  # fmt: skip


def test_stage_duration_closed_stage_interval_not_counted(warehouse):
    # o7 (r3): negotiation 16, closed_won 04-05 -> 04-06 (not counted), negotiation 4
    expect_stage_rows(warehouse, APR, "rep", "T2", "r3", [
        stage("qualification", 0, 0.0, None, None, 1),  # o12 still open
        stage("negotiation", 2, 20.0, 10.0, 10.0, 0),  # (16 + 4) / 2; o7 closed at Apr's end
    ])  # fmt: skip


def test_stage_duration_unknown_stage_row_ignored(warehouse):
    # o11 (r4): prospecting 02-15 -> proposal 02-20 = 5 days; 'discovery' 02-18 is ignored
    expect_stage_rows(warehouse, FEB, "rep", "T2", "r4", [
        stage("prospecting", 1, 5.0, 5.0, 5.0, 0),
        stage("proposal", 0, 0.0, None, None, 1),
    ])  # fmt: skip


def test_stage_duration_row_keys_march(warehouse):
    found = {
        (r["level"], r["team_id"], r["rep_id"], r["stage_name"])
        for r in rows(warehouse, "kpi_stage_duration", _eq("month", MAR))
    }
    assert found == {
        *(("company", None, None, s) for s in STAGES),
        ("team", "T1", None, "qualification"),
        ("team", "T1", None, "negotiation"),
        ("team", "T2", None, "prospecting"),
        ("team", "T2", None, "qualification"),
        ("team", "T2", None, "proposal"),
        ("team", "T2", None, "negotiation"),
        ("rep", "T1", "r1", "qualification"),  # o10 exit
        ("rep", "T1", "r1", "negotiation"),  # o10 open
        ("rep", "T1", "m1", "negotiation"),  # o4 exit
        ("rep", "T2", "r3", "prospecting"),  # o7, o12 exits
        ("rep", "T2", "r3", "qualification"),  # o12 open
        ("rep", "T2", "r3", "negotiation"),  # o7 open
        ("rep", "T2", "r4", "proposal"),  # o11 open
    }


# --------------------------------------------------------------------------- 7 monthly sales

MONTHLY_SALES_COMPANY = {
    JAN: {
        "won_deals": 3,  # o1, o3, o15
        "won_amount": 1400,  # 1000 + 0 + 400
        "quota_amount": 3500,  # r1 1000 + r2 500 + r4 2000
        "attainment": 0.4,  # 1400 / 3500
        "prev_won_amount": None,  # first month
        "mom_growth_pct": None,
    },
    FEB: {
        "won_deals": 0,
        "won_amount": 0,
        "quota_amount": 1500,  # r1 1000 + r2 500 + r4 0
        "attainment": 0.0,  # 0 / 1500
        "prev_won_amount": 1400,
        "mom_growth_pct": -100.0,  # (0 - 1400) / 1400 x 100
    },
    MAR: {
        "won_deals": 5,  # o4, o5, o6, o14, o17
        "won_amount": 4800.50,  # 2000 + 700 + 300 + 1200.50 + 600
        "quota_amount": 3500,  # r1 1000 + r4 1000 + m1 1500
        "attainment": 1.3715714286,  # 4800.50 / 3500
        "prev_won_amount": 0,
        "mom_growth_pct": None,  # previous is 0
    },
    APR: {
        "won_deals": 2,  # o7, o8
        "won_amount": 2300,  # 1500 + 800
        "quota_amount": 2800,  # r1 1000 + r3 1000 + r4 800
        "attainment": 0.8214285714,  # 2300 / 2800
        "prev_won_amount": 4800.50,
        "mom_growth_pct": -52.0883241329,  # (2300 - 4800.50) / 4800.50 x 100
    },
}


def test_monthly_sales_company_rows(warehouse):
    expect_company_rows(warehouse, "kpi_monthly_sales", MONTHLY_SALES_COMPANY)


def test_monthly_sales_team_rows(warehouse):
    m = "kpi_monthly_sales"
    # Feb T1: r1, r2 win nothing; quotas 1000 + 500; Jan T1 won 1400
    expect_row(warehouse, m, FEB, "team", "T1", None, {
        "won_deals": 0, "won_amount": 0, "quota_amount": 1500, "attainment": 0.0,
        "prev_won_amount": 1400, "mom_growth_pct": -100.0,  # (0 - 1400) / 1400 x 100
    })  # fmt: skip
    # Feb T2: r4 quota 0; Jan T2 won 0 (o3 NULL amount)
    expect_row(warehouse, m, FEB, "team", "T2", None, {
        "won_deals": 0, "won_amount": 0, "quota_amount": 0, "attainment": None,  # 0 / 0
        "prev_won_amount": 0, "mom_growth_pct": None,
    })  # fmt: skip
    # Apr T1: r1 o8 800, quota 1000; Mar T1 won 600 + 2000 + 300 = 2900
    expect_row(warehouse, m, APR, "team", "T1", None, {
        "won_deals": 1, "won_amount": 800, "quota_amount": 1000, "attainment": 0.8,
        "prev_won_amount": 2900,
        "mom_growth_pct": -72.4137931034,  # (800 - 2900) / 2900 x 100
    })  # fmt: skip
    # Apr T2: r3 o7 1500 + r4 0, quotas 1000 + 800; Mar T2 won 1200.50
    expect_row(warehouse, m, APR, "team", "T2", None, {
        "won_deals": 1, "won_amount": 1500, "quota_amount": 1800,
        "attainment": 0.8333333333,  # 1500 / 1800
        "prev_won_amount": 1200.5,
        "mom_growth_pct": 24.9479383590,  # (1500 - 1200.50) / 1200.50 x 100
    })  # fmt: skip
    # Mar NULL team: x9 o5 700, no quota, no February row
    expect_row(warehouse, m, MAR, "team", None, None, {
        "won_deals": 1, "won_amount": 700, "quota_amount": 0, "attainment": None,
        "prev_won_amount": None, "mom_growth_pct": None,
    })  # fmt: skip


def test_monthly_sales_rep_rows(warehouse):
    m = "kpi_monthly_sales"
    expect_row(warehouse, m, APR, "rep", "T1", "r1", {
        "won_deals": 1, "won_amount": 800, "quota_amount": 1000, "attainment": 0.8,
        "prev_won_amount": 600,  # o17
        "mom_growth_pct": 33.3333333333,  # (800 - 600) / 600 x 100
    })  # fmt: skip
    expect_row(warehouse, m, MAR, "rep", "T1", "r1", {
        "won_deals": 1, "won_amount": 600, "quota_amount": 1000, "attainment": 0.6,
        "prev_won_amount": 0, "mom_growth_pct": None,  # February: nothing won
    })  # fmt: skip
    # manager m1: o4 2000, quota 1500; no row in February
    expect_row(warehouse, m, MAR, "rep", "T1", "m1", {
        "won_deals": 1, "won_amount": 2000, "quota_amount": 1500,
        "attainment": 1.3333333333,  # 2000 / 1500
        "prev_won_amount": None, "mom_growth_pct": None,
    })  # fmt: skip
    expect_row(warehouse, m, MAR, "rep", None, "x9", {
        "won_deals": 1, "won_amount": 700, "quota_amount": 0, "attainment": None,
        "prev_won_amount": None, "mom_growth_pct": None,
    })  # fmt: skip


def test_monthly_sales_row_keys_march(warehouse):
    assert keys(warehouse, "kpi_monthly_sales", MAR) == MARCH_CLOSE_KEYS


# --------------------------------------------------------------------------- 8 churn
# Customers on a day d: an account with a subscription started_at <= d < ended_at (or no end).
#   2025-12-31: a1 (s1), a2 (s2), a3 (s3), a5 (s5), a9 (s9)                       = 5
#   2026-01-31: a1, a2 (s2 ends 02-01 > 01-31), a3, a5, a6 (s7 from 01-10), a9    = 6
#               (a8: s10 01-05 .. 01-20 is over)
#   2026-02-28: a1, a3, a5, a6, a9 (a2 gone)                                      = 5
#   2026-03-31: a1, a4 (s4 from 03-01), a5, a6, a9 (a3: s3 ends 03-31)            = 5
#   2026-04-30: a1, a2 (s8 from 04-20), a4, a5 (s5 and s6, once), a6, a9          = 6

CHURN_COMPANY = {
    JAN: {
        "customers_at_start": 5,
        "customers_at_end": 6,
        "new_customers": 1,  # a6
        "churned_customers": 0,
        "churn_rate": 0.0,  # 0 / 5
        "net_churn_rate": -0.2,  # (5 - 6) / 5
    },
    FEB: {
        "customers_at_start": 6,
        "customers_at_end": 5,
        "new_customers": 0,
        "churned_customers": 1,  # a2 (s2 ended on 02-01)
        "churn_rate": 0.1666666667,  # 1 / 6
        "net_churn_rate": 0.1666666667,  # (6 - 5) / 6
    },
    MAR: {
        "customers_at_start": 5,
        "customers_at_end": 5,
        "new_customers": 1,  # a4 (s4 started on 03-01)
        "churned_customers": 1,  # a3 (s3 ended on 03-31)
        "churn_rate": 0.2,  # 1 / 5
        "net_churn_rate": 0.0,  # (5 - 5) / 5
    },
    APR: {
        "customers_at_start": 5,
        "customers_at_end": 6,
        "new_customers": 1,  # a2 again (s8)
        "churned_customers": 0,  # a5 stays (s6 overlaps s5)
        "churn_rate": 0.0,  # 0 / 5
        "net_churn_rate": -0.2,  # (5 - 6) / 5
    },
}


def test_churn_company_rows(warehouse):
    expect_company_rows(warehouse, "kpi_churn", CHURN_COMPANY)


def test_churn_has_only_company_rows(warehouse):
    found = rows(warehouse, "kpi_churn", "true")
    assert [(r["month"], r["level"]) for r in found] == [(m, "company") for m in MONTHS]


# --------------------------------------------------------------------------- 9 lead response time
# Minutes from lead created_at to the first activity on the lead at or after it:
#   Jan: L1 30 (act02 10:30+01:00 = 09:30Z; act01 is before L1 existed), L2 60 (act03),
#        L3 0 (created 2026-01-08 = midnight, act04 00:00Z), L4 180 (created
#        12:00+01:00 = 11:00Z, act08 14:00Z), L5 not contacted
#   Feb: L6 90 (created Feb 1 04:30Z, act13 06:00Z), L7 20.5 (act15 15:20:30),
#        L8 2880 (02-27 09:00 -> act18 03-01 09:00)
#   Mar: L9 10 (act19), L10 45 (act21), L11 120 (act22), L12 30 (act24, by r1)
#   Apr: L13 15 (act26), L14 25 (act27), L15 not contacted

LEAD_RESPONSE_COMPANY = {
    JAN: {
        "leads": 5,
        "contacted_leads": 4,
        "total_response_minutes": 270.0,  # 30 + 60 + 0 + 180
        "avg_response_minutes": 67.5,  # 270 / 4
        "median_response_minutes": 45.0,  # (0, 30, 60, 180): (30 + 60) / 2
        "contacted_within_1h": 3,  # L1 30, L2 60, L3 0
        "pct_contacted_within_1h": 60.0,  # 3 / 5 x 100
    },
    FEB: {
        "leads": 3,
        "contacted_leads": 3,
        "total_response_minutes": 2990.5,  # 90 + 20.5 + 2880
        "avg_response_minutes": 996.8333333333,  # 2990.5 / 3
        "median_response_minutes": 90.0,  # (20.5, 90, 2880)
        "contacted_within_1h": 1,  # L7
        "pct_contacted_within_1h": 33.3333333333,  # 1 / 3 x 100
    },
    MAR: {
        "leads": 4,
        "contacted_leads": 4,
        "total_response_minutes": 205.0,  # 10 + 45 + 120 + 30
        "avg_response_minutes": 51.25,  # 205 / 4
        "median_response_minutes": 37.5,  # (10, 30, 45, 120): (30 + 45) / 2
        "contacted_within_1h": 3,  # L9, L10, L12
        "pct_contacted_within_1h": 75.0,  # 3 / 4 x 100
    },
    APR: {
        "leads": 3,
        "contacted_leads": 2,
        "total_response_minutes": 40.0,  # 15 + 25
        "avg_response_minutes": 20.0,  # 40 / 2
        "median_response_minutes": 20.0,  # (15 + 25) / 2
        "contacted_within_1h": 2,
        "pct_contacted_within_1h": 66.6666666667,  # 2 / 3 x 100
    },
}


def test_lead_response_time_company_rows(warehouse):
    expect_company_rows(warehouse, "kpi_lead_response_time", LEAD_RESPONSE_COMPANY)


def test_lead_response_time_team_rows(warehouse):
    m = "kpi_lead_response_time"
    # Jan T1: r1 L1 30, L2 60; r2 L3 0
    expect_row(warehouse, m, JAN, "team", "T1", None, {
        "leads": 3, "contacted_leads": 3, "total_response_minutes": 90.0,  # 30 + 60 + 0
        "avg_response_minutes": 30.0,  # 90 / 3
        "median_response_minutes": 30.0,  # (0, 30, 60)
        "contacted_within_1h": 3, "pct_contacted_within_1h": 100.0,
    })  # fmt: skip
    # Jan T2: r4 L4 180, L5 not contacted
    expect_row(warehouse, m, JAN, "team", "T2", None, {
        "leads": 2, "contacted_leads": 1, "total_response_minutes": 180.0,
        "avg_response_minutes": 180.0, "median_response_minutes": 180.0,
        "contacted_within_1h": 0, "pct_contacted_within_1h": 0.0,  # 0 / 2 x 100
    })  # fmt: skip
    # Feb T1: r1 L7 20.5; r2 L6 90
    expect_row(warehouse, m, FEB, "team", "T1", None, {
        "leads": 2, "contacted_leads": 2, "total_response_minutes": 110.5,  # 20.5 + 90
        "avg_response_minutes": 55.25,  # 110.5 / 2
        "median_response_minutes": 55.25,  # (20.5 + 90) / 2
        "contacted_within_1h": 1, "pct_contacted_within_1h": 50.0,  # 1 / 2 x 100
    })  # fmt: skip
    # Feb T2: r4 L8 2880 (answered in March)
    expect_row(warehouse, m, FEB, "team", "T2", None, {
        "leads": 1, "contacted_leads": 1, "total_response_minutes": 2880.0,
        "avg_response_minutes": 2880.0, "median_response_minutes": 2880.0,
        "contacted_within_1h": 0, "pct_contacted_within_1h": 0.0,
    })  # fmt: skip
    # Mar NULL team: x9 L12 30
    expect_row(warehouse, m, MAR, "team", None, None, {
        "leads": 1, "contacted_leads": 1, "total_response_minutes": 30.0,
        "avg_response_minutes": 30.0, "median_response_minutes": 30.0,
        "contacted_within_1h": 1, "pct_contacted_within_1h": 100.0,
    })  # fmt: skip


def test_lead_response_time_rep_rows(warehouse):
    m = "kpi_lead_response_time"
    # r1 Jan: L1 30 (act01 before the lead is ignored), L2 exactly 60 counts within 1h
    expect_row(warehouse, m, JAN, "rep", "T1", "r1", {
        "leads": 2, "contacted_leads": 2, "total_response_minutes": 90.0,
        "avg_response_minutes": 45.0, "median_response_minutes": 45.0,  # (30 + 60) / 2
        "contacted_within_1h": 2, "pct_contacted_within_1h": 100.0,
    })  # fmt: skip
    # r2 Jan: L3 answered at 0 minutes
    expect_row(warehouse, m, JAN, "rep", "T1", "r2", {
        "leads": 1, "contacted_leads": 1, "total_response_minutes": 0.0,
        "avg_response_minutes": 0.0, "median_response_minutes": 0.0,
        "contacted_within_1h": 1, "pct_contacted_within_1h": 100.0,
    })  # fmt: skip
    # unknown owner x9 Mar: L12, answered by r1
    expect_row(warehouse, m, MAR, "rep", None, "x9", {
        "leads": 1, "contacted_leads": 1, "total_response_minutes": 30.0,
        "avg_response_minutes": 30.0, "median_response_minutes": 30.0,
        "contacted_within_1h": 1, "pct_contacted_within_1h": 100.0,
    })  # fmt: skip
    # r1 Apr: L15 never contacted
    expect_row(warehouse, m, APR, "rep", "T1", "r1", {
        "leads": 1, "contacted_leads": 0, "total_response_minutes": 0.0,
        "avg_response_minutes": None, "median_response_minutes": None,
        "contacted_within_1h": 0, "pct_contacted_within_1h": 0.0,  # 0 / 1 x 100
    })  # fmt: skip
    # r3 Apr: active, no leads: zeros and NULL rates
    expect_row(warehouse, m, APR, "rep", "T2", "r3", {
        "leads": 0, "contacted_leads": 0, "total_response_minutes": 0.0,
        "avg_response_minutes": None, "median_response_minutes": None,
        "contacted_within_1h": 0, "pct_contacted_within_1h": None,
    })  # fmt: skip


def test_lead_response_time_row_keys_march(warehouse):
    assert keys(warehouse, "kpi_lead_response_time", MAR) == MARCH_LEAD_KEYS


# --------------------------------------------------------------------------- 10 sales effort
# Activity month = UTC month of occurred_at; type = lower(trim(activity_type)), else other.
#   Jan: r1 act01 call, act02 ' Email ', act03 CALL, act05 email, act06 demo;
#        r2 act04 email, act09 Email, act10 '\tcall';
#        r4 act07 webinar (other), act08 Meeting, act11 email (02-01T00:30+01:00 = Jan 31)
#   Feb: r1 act12 call (01-31T20:00-05:00 = Feb 1), act14 Call, act15 EMAIL;
#        r2 act13 call; m1 act16 Meeting, act17 'demo '; r4 nothing
#   Mar: r1 act22 call, act24 demo; r3 act19 call, act20 'email\n', act21 email, act25 Demo;
#        r4 act18 call, act23 meeting
#   Apr: r1 act26 call, act27 email, act30 demo; r3 act28 MEETING, act29 lunch (other);
#        x9 act31 call; r4 nothing

SALES_EFFORT_COMPANY = {
    JAN: {
        "calls": 3,  # act01, act03, act10
        "emails": 5,  # act02, act04, act05, act09, act11
        "meetings": 1,  # act08
        "demos": 1,  # act06
        "other_activities": 1,  # act07
        "total_activities": 11,  # 3 + 5 + 1 + 1 + 1
    },
    FEB: {
        "calls": 3,  # act12, act13, act14
        "emails": 1,  # act15
        "meetings": 1,  # act16
        "demos": 1,  # act17
        "other_activities": 0,
        "total_activities": 6,
    },
    MAR: {
        "calls": 3,  # act18, act19, act22
        "emails": 2,  # act20, act21
        "meetings": 1,  # act23
        "demos": 2,  # act24, act25
        "other_activities": 0,
        "total_activities": 8,
    },
    APR: {
        "calls": 2,  # act26, act31
        "emails": 1,  # act27
        "meetings": 1,  # act28
        "demos": 1,  # act30
        "other_activities": 1,  # act29
        "total_activities": 6,
    },
}


def effort(calls, emails, meetings, demos, other):
    return {
        "calls": calls,
        "emails": emails,
        "meetings": meetings,
        "demos": demos,
        "other_activities": other,
        "total_activities": calls + emails + meetings + demos + other,
    }


def test_sales_effort_company_rows(warehouse):
    expect_company_rows(warehouse, "kpi_sales_effort", SALES_EFFORT_COMPANY)


def test_sales_effort_team_rows(warehouse):
    m = "kpi_sales_effort"
    # Jan T1: r1 (2 calls, 2 emails, 1 demo) + r2 (1 call, 2 emails): total 8
    expect_row(warehouse, m, JAN, "team", "T1", None, effort(3, 4, 0, 1, 0))
    # Jan T2: r4 (1 email, 1 meeting, 1 other): total 3
    expect_row(warehouse, m, JAN, "team", "T2", None, effort(0, 1, 1, 0, 1))
    # Feb T2: r4 did nothing: zeros
    expect_row(warehouse, m, FEB, "team", "T2", None, effort(0, 0, 0, 0, 0))
    # Apr T1: r1 (call, email, demo): total 3
    expect_row(warehouse, m, APR, "team", "T1", None, effort(1, 1, 0, 1, 0))
    # Apr T2: r3 (meeting, other) + r4 (nothing): total 2
    expect_row(warehouse, m, APR, "team", "T2", None, effort(0, 0, 1, 0, 1))
    # Apr NULL team: x9 (call): total 1
    expect_row(warehouse, m, APR, "team", None, None, effort(1, 0, 0, 0, 0))


def test_sales_effort_rep_rows(warehouse):
    m = "kpi_sales_effort"
    # manager m1 Feb: meeting, demo
    expect_row(warehouse, m, FEB, "rep", "T1", "m1", effort(0, 0, 1, 1, 0))
    # r4 Feb and Apr: active, no activity
    expect_row(warehouse, m, FEB, "rep", "T2", "r4", effort(0, 0, 0, 0, 0))
    expect_row(warehouse, m, APR, "rep", "T2", "r4", effort(0, 0, 0, 0, 0))
    # unknown owner x9 Apr: act31
    expect_row(warehouse, m, APR, "rep", None, "x9", effort(1, 0, 0, 0, 0))
    # r3 Mar: call, 'email\n', email, Demo
    expect_row(warehouse, m, MAR, "rep", "T2", "r3", effort(1, 2, 0, 1, 0))
    # r1 Jan: act01 (2025-12-31T20:00-05:00) counts in January
    expect_row(warehouse, m, JAN, "rep", "T1", "r1", effort(2, 2, 0, 1, 0))


def test_sales_effort_row_keys_march(warehouse):
    # active r1, r3, r4, all with activities; r2 terminated, m1 and x9 without activities
    assert keys(warehouse, "kpi_sales_effort", MAR) == {
        COMPANY,
        ("team", "T1", None),
        ("team", "T2", None),
        ("rep", "T1", "r1"),
        ("rep", "T2", "r3"),
        ("rep", "T2", "r4"),
    }


def test_sales_effort_row_keys_april(warehouse):
    assert keys(warehouse, "kpi_sales_effort", APR) == {
        COMPANY,
        ("team", "T1", None),
        ("team", "T2", None),
        ("team", None, None),
        ("rep", "T1", "r1"),
        ("rep", "T2", "r3"),
        ("rep", "T2", "r4"),
        ("rep", None, "x9"),
    }


# --------------------------------------------------------------------------- people over time

REP_MARTS = sorted(m for m in MART_COLUMNS if m != "kpi_churn")


@pytest.mark.parametrize("mart", REP_MARTS)
def test_terminated_rep_has_rows_only_while_active_or_owning_counted_rows(warehouse, mart):
    # r2 is active in Jan and Feb (terminated 2026-02-20). In March r2 only owns o6 (won
    # 2026-03-02), counted by the marts of closed/won deals. Nothing in April.
    # In kpi_stage_duration r2 owns no deal with history: no rows at all.
    owns_march = {
        "kpi_win_rate",
        "kpi_avg_deal_size",
        "kpi_days_to_close",
        "kpi_quota_attainment",
        "kpi_monthly_sales",
    }
    if mart == "kpi_stage_duration":
        expected: list[date] = []
    elif mart in owns_march:
        expected = [JAN, FEB, MAR]
    else:
        expected = [JAN, FEB]
    assert rep_months(warehouse, mart, "r2") == expected


@pytest.mark.parametrize("mart", sorted(set(REP_MARTS) - {"kpi_stage_duration"}))
def test_rep_hired_mid_range_has_rows_from_hire_month(warehouse, mart):
    # r3 hired 2026-03-10: active in March and April only
    assert rep_months(warehouse, mart, "r3") == [MAR, APR]


@pytest.mark.parametrize("mart", REP_MARTS)
def test_manager_has_rep_rows_only_where_owning_counted_rows(warehouse, mart):
    # m1 owns o4 (history Jan .. Mar, won in March), activities in February and a
    # March quota; no leads
    expected = {
        "kpi_win_rate": [MAR],
        "kpi_avg_deal_size": [MAR],
        "kpi_days_to_close": [MAR],
        "kpi_quota_attainment": [MAR],
        "kpi_monthly_sales": [MAR],
        "kpi_stage_duration": [JAN, JAN, JAN, JAN, FEB, MAR],  # 4 stages in Jan
        "kpi_lead_conversion": [],
        "kpi_lead_response_time": [],
        "kpi_sales_effort": [FEB],
    }[mart]
    assert rep_months(warehouse, mart, "m1") == expected


# --------------------------------------------------------------------------- roll-up

ADDITIVE = {
    "kpi_win_rate": ["won_deals", "lost_deals", "closed_deals"],
    "kpi_lead_conversion": ["leads", "mqls", "sqls", "customers"],
    "kpi_avg_deal_size": ["won_deals", "won_amount"],
    "kpi_days_to_close": ["won_deals", "total_days_to_close"],
    "kpi_quota_attainment": [
        "quota_amount",
        "won_amount",
        "reps_with_quota",
        "reps_meeting_quota",
    ],
    "kpi_monthly_sales": ["won_deals", "won_amount", "quota_amount"],
    "kpi_lead_response_time": ["leads", "contacted_leads", "total_response_minutes"],
    "kpi_sales_effort": MART_COLUMNS["kpi_sales_effort"],
    "kpi_stage_duration": ["exits", "total_days_in_stage", "open_deals_at_month_end"],
}


@pytest.mark.parametrize("mart", sorted(ADDITIVE))
def test_company_rows_equal_sum_of_team_rows_and_of_rep_rows(warehouse, mart):
    found = rows(warehouse, mart, "true")
    by_stage = mart == "kpi_stage_duration"
    for month in MONTHS:
        for group in STAGES if by_stage else [None]:
            sel = [
                r
                for r in found
                if r["month"] == month and (not by_stage or r["stage_name"] == group)
            ]
            for column in ADDITIVE[mart]:
                sums = {
                    level: sum(float(r[column]) for r in sel if r["level"] == level)
                    for level in ("company", "team", "rep")
                }
                label = f"{mart} {month} {group or ''} {column}"
                assert sums["team"] == pytest.approx(sums["company"]), label
                assert sums["rep"] == pytest.approx(sums["company"]), label
