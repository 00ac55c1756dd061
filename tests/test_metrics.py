"""`kpi metrics` (KPI_SPEC section 5): every metric at quarter and fiscal-year
grain, by company, team and rep, against sums done by hand on the `crm_small`
export; the command line; and a property test on random exports.

The monthly values summed below are those `tests/test_kpi_values.py` checks
by hand, month by month. crm_small covers 2026-01 .. 2026-04; it is built with
`fiscal_year_start_month = 2`, so FY2026 is January 2026 alone (it runs
2025-02 .. 2026-01) and FY2027 holds February, March and April. Calendar
quarters: 2026-Q1 = January + February + March, 2026-Q2 = April.
"""

from __future__ import annotations

import io
import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_invariants import exports, write_export

from runner import Project
from runner.cli import main
from runner.errors import ProjectError
from runner.metrics import MetricError
from runner.reporting import Reporter

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "crm_small"


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Project:
    work = tmp_path_factory.mktemp("metrics")
    project = Project.load(
        ROOT,
        warehouse=work / "w.duckdb",
        raw_dir=FIXTURE,
        target_path=work / "target",
        vars={"fiscal_year_start_month": 2},
        reporter=Reporter(stream=io.StringIO()),
    )
    result = project.build()
    assert result.exit_code == 0, result.summary
    return project


def metric_row(project: Project, names: list[str], grain: str, by: str, **key: Any) -> dict:
    """The one row of `kpi metrics names --grain grain --by by` matching `key`."""
    result = project.metrics(names, by=by, grain=grain)
    records = [dict(zip(result.columns, row, strict=True)) for row in result.rows]
    found = [r for r in records if all(r.get(k) == v for k, v in key.items())]
    assert len(found) == 1, (key, records)
    return found[0]


def assert_metrics(row: dict, expected: dict[str, float | int | None]) -> None:
    for name, want in expected.items():
        got = row[name]
        if want is None:
            assert got is None, (name, got)
        else:
            assert got is not None and float(got) == pytest.approx(want), (name, got, want)


# ------------------------------------------------------------------ company level

COMPANY_Q1 = {  # 2026-Q1 = Jan + Feb + Mar
    "won_deals": 8,  # 3 + 0 + 5
    "lost_deals": 2,  # 1 + 0 + 1
    "closed_deals": 10,  # 4 + 0 + 6
    "win_rate": 0.8,  # 8 / 10 (not the mean of 0.75, NULL, 0.8333)
    "leads": 12,  # 5 + 3 + 4
    "mqls": 9,  # 4 + 2 + 3
    "sqls": 6,  # 3 + 1 + 2
    "customers": 3,  # 1 + 1 + 1
    "conversion_rate_pct": 25.0,  # 3 / 12 x 100
    "mql_to_sql_rate": 0.6666666667,  # 6 / 9
    "sql_to_customer_rate": 0.5,  # 3 / 6
    "avg_deal_size": 775.0625,  # (1400 + 0 + 4800.50) / 8 = 6200.50 / 8
    "total_days_to_close": 275,  # 52 + 0 + 223
    "avg_days_to_close": 34.375,  # 275 / 8
    "reps_with_quota": 8,  # rep-months: 3 + 2 + 3
    "reps_meeting_quota": 3,  # 1 + 0 + 2
    "pct_reps_meeting_quota": 37.5,  # 3 / 8 x 100
    "won_amount": 6200.5,  # 1400 + 0 + 4800.50
    "quota_amount": 8500,  # 3500 + 1500 + 3500
    "attainment": 0.7294705882,  # 6200.50 / 8500
    "customers_at_start": 5,  # January's at_start
    "customers_at_end": 5,  # March's at_end
    "new_customers": 2,  # 1 + 0 + 1
    "churned_customers": 2,  # 0 + 1 + 1
    "churn_rate": 0.4,  # 2 / 5
    "net_churn_rate": 0.0,  # (5 - 5) / 5
    "contacted_leads": 11,  # 4 + 3 + 4
    "total_response_minutes": 3465.5,  # 270 + 2990.5 + 205
    "avg_response_minutes": 315.0454545455,  # 3465.5 / 11
    "contacted_within_1h": 7,  # 3 + 1 + 3
    "pct_contacted_within_1h": 58.3333333333,  # 7 / 12 leads x 100
    "calls": 9,  # 3 + 3 + 3
    "emails": 8,  # 5 + 1 + 2
    "meetings": 3,  # 1 + 1 + 1
    "demos": 4,  # 1 + 1 + 2
    "other_activities": 1,  # 1 + 0 + 0
    "total_activities": 25,  # 11 + 6 + 8
}
COMPANY_Q2 = {  # 2026-Q2 = April alone: April's values
    "won_deals": 2,
    "lost_deals": 1,
    "closed_deals": 3,
    "win_rate": 0.6666666667,  # 2 / 3
    "leads": 3,
    "mqls": 2,
    "sqls": 1,
    "customers": 0,
    "conversion_rate_pct": 0.0,  # 0 / 3
    "mql_to_sql_rate": 0.5,  # 1 / 2
    "sql_to_customer_rate": 0.0,  # 0 / 1
    "avg_deal_size": 1150.0,  # 2300 / 2
    "avg_days_to_close": 49.5,  # 99 / 2
    "pct_reps_meeting_quota": 33.3333333333,  # 1 / 3 x 100
    "attainment": 0.8214285714,  # 2300 / 2800
    "customers_at_start": 5,
    "customers_at_end": 6,
    "churn_rate": 0.0,  # 0 / 5
    "net_churn_rate": -0.2,  # (5 - 6) / 5
    "avg_response_minutes": 20.0,  # 40 / 2
    "pct_contacted_within_1h": 66.6666666667,  # 2 / 3 x 100
    "total_activities": 6,
}
COMPANY_FY2027 = {  # FY2027 = Feb + Mar + Apr
    "won_deals": 7,  # 0 + 5 + 2
    "lost_deals": 2,  # 0 + 1 + 1
    "closed_deals": 9,  # 0 + 6 + 3
    "win_rate": 0.7777777778,  # 7 / 9
    "leads": 10,  # 3 + 4 + 3
    "mqls": 7,  # 2 + 3 + 2
    "sqls": 4,  # 1 + 2 + 1
    "customers": 2,  # 1 + 1 + 0
    "conversion_rate_pct": 20.0,  # 2 / 10 x 100
    "mql_to_sql_rate": 0.5714285714,  # 4 / 7
    "sql_to_customer_rate": 0.5,  # 2 / 4
    "avg_deal_size": 1014.3571428571,  # (0 + 4800.50 + 2300) / 7 = 7100.50 / 7
    "total_days_to_close": 322,  # 0 + 223 + 99
    "avg_days_to_close": 46.0,  # 322 / 7
    "reps_with_quota": 8,  # 2 + 3 + 3
    "reps_meeting_quota": 3,  # 0 + 2 + 1
    "pct_reps_meeting_quota": 37.5,  # 3 / 8 x 100
    "won_amount": 7100.5,  # 0 + 4800.50 + 2300
    "quota_amount": 7800,  # 1500 + 3500 + 2800
    "attainment": 0.9103205128,  # 7100.50 / 7800
    "customers_at_start": 6,  # February's at_start (January's at_end)
    "customers_at_end": 6,  # April's at_end
    "new_customers": 2,  # 0 + 1 + 1
    "churned_customers": 2,  # 1 + 1 + 0
    "churn_rate": 0.3333333333,  # 2 / 6
    "net_churn_rate": 0.0,  # (6 - 6) / 6
    "contacted_leads": 9,  # 3 + 4 + 2
    "total_response_minutes": 3235.5,  # 2990.5 + 205 + 40
    "avg_response_minutes": 359.5,  # 3235.5 / 9
    "contacted_within_1h": 6,  # 1 + 3 + 2
    "pct_contacted_within_1h": 60.0,  # 6 / 10 leads x 100
    "calls": 8,  # 3 + 3 + 2
    "emails": 4,  # 1 + 2 + 1
    "meetings": 3,  # 1 + 1 + 1
    "demos": 4,  # 1 + 2 + 1
    "other_activities": 1,  # 0 + 0 + 1
    "total_activities": 20,  # 6 + 8 + 6
}
COMPANY_FY2026 = {  # FY2026 holds January 2026 alone: January's values
    "win_rate": 0.75,  # 3 / 4
    "avg_deal_size": 466.6666666667,  # 1400 / 3
    "customers_at_start": 5,
    "customers_at_end": 6,
    "net_churn_rate": -0.2,  # (5 - 6) / 5
    "total_activities": 11,
}

# Stage duration: one row per stage too; open deals are those at the end of
# the period's last month (a stock), exits and days are summed.
STAGES_COMPANY = [
    # grain, period, stage, exits, total days, avg days, open at the end
    # Q1 prospecting: exits 4 + 1 + 2, days 15.5 + 5 + 9.5 = 30, open at March's end 0
    ("quarter", "2026-Q1", "prospecting", 7, 30.0, 30 / 7, 0),
    # Q1 negotiation: exits 0 + 0 + 1, days 32.5, open at March's end 2
    ("quarter", "2026-Q1", "negotiation", 1, 32.5, 32.5, 2),
    # Q2 negotiation = April: 2 exits, 20 days, 1 open
    ("quarter", "2026-Q2", "negotiation", 2, 20.0, 10.0, 1),
    # FY2027 prospecting: exits 1 + 2 + 0, days 5 + 9.5 + 0 = 14.5, open at April's end 1
    ("fiscal_year", "FY2027", "prospecting", 3, 14.5, 14.5 / 3, 1),
    # FY2027 negotiation: exits 0 + 1 + 2, days 0 + 32.5 + 20 = 52.5, open 1
    ("fiscal_year", "FY2027", "negotiation", 3, 52.5, 17.5, 1),
]
STAGE_METRICS = ["exits", "total_days_in_stage", "avg_days_in_stage", "open_deals_at_month_end"]


def every_row_metric(expected: dict[str, Any]) -> list[str]:
    return [n for n in expected if n not in STAGE_METRICS]


@pytest.mark.parametrize(
    ("grain", "period", "expected"),
    [
        ("quarter", "2026-Q1", COMPANY_Q1),
        ("quarter", "2026-Q2", COMPANY_Q2),
        ("fiscal_year", "FY2027", COMPANY_FY2027),
        ("fiscal_year", "FY2026", COMPANY_FY2026),
    ],
)
def test_company_metrics_are_sums_over_the_period(small, grain, period, expected) -> None:
    row = metric_row(small, every_row_metric(expected), grain, "company", period=period)
    assert_metrics(row, expected)


def test_the_company_metrics_cover_every_metric_but_the_stage_and_median_ones(small) -> None:
    stage_or_median = {
        n for n, m in small.loaded.metrics.items() if m.dimensions or m.median is not None
    }
    assert set(small.loaded.metrics) - stage_or_median == set(COMPANY_Q1)
    assert set(COMPANY_Q1) == set(COMPANY_FY2027)


@pytest.mark.parametrize(
    ("grain", "period", "stage", "exits", "days", "avg", "open_"), STAGES_COMPANY
)
def test_stage_metrics_sum_flows_and_take_the_last_stock(
    small, grain, period, stage, exits, days, avg, open_
) -> None:
    row = metric_row(small, STAGE_METRICS, grain, "company", period=period, stage_name=stage)
    assert_metrics(
        row,
        {
            "exits": exits,
            "total_days_in_stage": days,
            "avg_days_in_stage": avg,
            "open_deals_at_month_end": open_,
        },
    )


# ------------------------------------------------------------------ team level

TEAM_T1_Q1 = {  # team T1, 2026-Q1 = Jan + Feb + Mar
    "won_deals": 5,  # 2 + 0 + 3
    "lost_deals": 2,  # 1 + 0 + 1
    "closed_deals": 7,  # 3 + 0 + 4
    "win_rate": 0.7142857143,  # 5 / 7
    "leads": 6,  # 3 + 2 + 1
    "mqls": 4,  # 3 + 1 + 0
    "sqls": 5,  # 3 + 1 + 1
    "customers": 2,  # 1 + 1 + 0
    "conversion_rate_pct": 33.3333333333,  # 2 / 6 x 100
    "mql_to_sql_rate": 1.25,  # 5 / 4 (rates are not capped)
    "sql_to_customer_rate": 0.4,  # 2 / 5
    "avg_deal_size": 860.0,  # (1400 + 0 + 2900) / 5
    "total_days_to_close": 139,  # 33 + 0 + 106
    "avg_days_to_close": 27.8,  # 139 / 5
    "reps_with_quota": 6,  # 2 + 2 + 2
    "reps_meeting_quota": 2,  # 1 + 0 + 1
    "pct_reps_meeting_quota": 33.3333333333,  # 2 / 6 x 100
    "won_amount": 4300,  # 1400 + 0 + 2900
    "quota_amount": 5500,  # 1500 + 1500 + 2500
    "attainment": 0.7818181818,  # 4300 / 5500
    "contacted_leads": 6,  # 3 + 2 + 1
    "total_response_minutes": 320.5,  # 90 + 110.5 + 120
    "avg_response_minutes": 53.4166666667,  # 320.5 / 6
    "contacted_within_1h": 4,  # 3 + 1 + 0
    "pct_contacted_within_1h": 66.6666666667,  # 4 / 6 x 100
    "calls": 7,  # 3 + 3 + 1
    "emails": 5,  # 4 + 1 + 0
    "meetings": 1,  # 0 + 1 + 0
    "demos": 3,  # 1 + 1 + 1
    "other_activities": 0,
    "total_activities": 16,  # 8 + 6 + 2
}


def test_team_metrics_are_sums_over_the_period(small) -> None:
    row = metric_row(small, list(TEAM_T1_Q1), "quarter", "team", period="2026-Q1", team_id="T1")
    assert_metrics(row, TEAM_T1_Q1)


def test_team_stage_metrics_take_zero_open_deals_when_the_last_month_has_no_row(small) -> None:
    # T1 prospecting in Q1: only January has a row (4 exits, 15.5 days); March
    # has none, so no deal of T1 is open in prospecting at March's end.
    row = metric_row(
        small, STAGE_METRICS, "quarter", "team", period="2026-Q1", team_id="T1",
        stage_name="prospecting",
    )  # fmt: skip
    assert_metrics(
        row,
        {
            "exits": 4,
            "total_days_in_stage": 15.5,
            "avg_days_in_stage": 3.875,  # 15.5 / 4
            "open_deals_at_month_end": 0,
        },
    )
    # T1 qualification: exits 1 + 1 + 1, days 18.5 + 12.5 + 20 = 51, none open at March's end
    row = metric_row(
        small, STAGE_METRICS, "quarter", "team", period="2026-Q1", team_id="T1",
        stage_name="qualification",
    )  # fmt: skip
    assert_metrics(
        row,
        {"exits": 3, "total_days_in_stage": 51.0, "avg_days_in_stage": 17.0,
         "open_deals_at_month_end": 0},
    )  # fmt: skip


# ------------------------------------------------------------------ rep level

REP_R1_FY2027 = {  # rep r1, FY2027 = Feb + Mar + Apr
    "won_deals": 2,  # 0 + 1 (o17) + 1 (o8)
    "lost_deals": 1,  # 0 + 1 (o13) + 0
    "closed_deals": 3,
    "win_rate": 0.6666666667,  # 2 / 3
    "leads": 3,  # L7 + L11 + L13..L15 of r1: 1 + 1 + 1
    "mqls": 1,  # 1 + 0 + 0
    "sqls": 2,  # 1 + 1 + 0
    "customers": 1,  # 1 (L7) + 0 + 0
    "conversion_rate_pct": 33.3333333333,  # 1 / 3 x 100
    "mql_to_sql_rate": 2.0,  # 2 / 1
    "sql_to_customer_rate": 0.5,  # 1 / 2
    "avg_deal_size": 700.0,  # (0 + 600 + 800) / 2
    "total_days_to_close": 90,  # 0 + 21 + 69
    "avg_days_to_close": 45.0,  # 90 / 2
    "reps_with_quota": 3,  # quota 1000 in each month
    "reps_meeting_quota": 0,
    "pct_reps_meeting_quota": 0.0,  # 0 / 3
    "won_amount": 1400,  # 0 + 600 + 800
    "quota_amount": 3000,  # 1000 x 3
    "attainment": 0.4666666667,  # 1400 / 3000
    "contacted_leads": 2,  # 1 + 1 + 0
    "total_response_minutes": 140.5,  # 20.5 + 120 + 0
    "avg_response_minutes": 70.25,  # 140.5 / 2
    "contacted_within_1h": 1,  # 1 + 0 + 0
    "pct_contacted_within_1h": 33.3333333333,  # 1 / 3 x 100
    "calls": 4,  # 2 + 1 + 1
    "emails": 2,  # 1 + 0 + 1
    "meetings": 0,
    "demos": 2,  # 0 + 1 + 1
    "other_activities": 0,
    "total_activities": 8,  # 3 + 2 + 3
}


def test_rep_metrics_are_sums_over_the_fiscal_year(small) -> None:
    row = metric_row(small, list(REP_R1_FY2027), "fiscal_year", "rep", period="FY2027", rep_id="r1")
    assert row["team_id"] == "T1"
    assert_metrics(row, REP_R1_FY2027)


def test_rep_stage_metrics_over_the_fiscal_year(small) -> None:
    # r1 qualification: exits 1 (Feb) + 1 (Mar), days 12.5 + 20 = 32.5; no April row: 0 open
    row = metric_row(
        small, STAGE_METRICS, "fiscal_year", "rep", period="FY2027", rep_id="r1",
        stage_name="qualification",
    )  # fmt: skip
    assert_metrics(
        row,
        {"exits": 2, "total_days_in_stage": 32.5, "avg_days_in_stage": 16.25,
         "open_deals_at_month_end": 0},
    )  # fmt: skip
    # r1 negotiation: no exits (avg NULL), 1 open at April's end
    row = metric_row(
        small, STAGE_METRICS, "fiscal_year", "rep", period="FY2027", rep_id="r1",
        stage_name="negotiation",
    )  # fmt: skip
    assert_metrics(
        row,
        {"exits": 0, "total_days_in_stage": 0.0, "avg_days_in_stage": None,
         "open_deals_at_month_end": 1},
    )  # fmt: skip


def test_rep_metrics_by_quarter(small) -> None:
    # r1 in 2026-Q1: won 1 + 0 + 1 = 2 of closed 2 + 0 + 2 = 4; amount 1000 + 0 + 600
    row = metric_row(
        small, ["win_rate", "avg_deal_size", "attainment"], "quarter", "rep",
        period="2026-Q1", rep_id="r1",
    )  # fmt: skip
    assert_metrics(
        row,
        {
            "win_rate": 0.5,  # 2 / 4
            "avg_deal_size": 800.0,  # 1600 / 2
            "attainment": 0.5333333333,  # 1600 / (1000 x 3)
        },
    )


# ------------------------------------------------------------------ grains, range, refusals


def test_month_grain_with_a_range_gives_the_marts_months(small) -> None:
    result = small.metrics(["win_rate", "leads"], grain="month", start="2026-02", end="2026-03")
    assert result.columns == ("period", "period_start", "win_rate", "leads")
    assert [r[:2] for r in result.rows] == [
        ("2026-02", date(2026, 2, 1)),
        ("2026-03", date(2026, 3, 1)),
    ]
    # February: no closed deal (NULL rate), 3 leads; March 5 / 6, 4 leads
    assert result.rows[0][2:] == (None, 3)
    assert result.rows[1][2] == pytest.approx(5 / 6)


def test_a_period_cut_by_the_range_holds_only_its_months_inside(small) -> None:
    # --from 2026-02: Q1 is February + March: won 0 + 5 of closed 0 + 6;
    # churn starts from February's at_start (6) and ends at March's at_end (5)
    row = small.metrics(
        ["win_rate", "customers_at_start", "customers_at_end", "churn_rate"],
        grain="quarter",
        start="2026-02",
        end="2026-03",
    ).rows
    assert len(row) == 1
    assert row[0][2] == pytest.approx(5 / 6)
    assert row[0][3:5] == (6, 5)
    assert row[0][5] == pytest.approx(2 / 6)  # churned 1 + 1 over 6 at start


def test_year_grain_and_fiscal_quarter_labels(small) -> None:
    result = small.metrics(["total_activities"], grain="year")
    assert result.rows == (("2026", date(2026, 1, 1), 31),)  # 11 + 6 + 8 + 6
    result = small.metrics(["total_activities"], grain="fiscal_quarter")
    # fiscal year from February: Q4 of FY2026 = Nov .. Jan, Q1 of FY2027 = Feb .. Apr
    assert result.rows == (
        ("FY2026-Q4", date(2025, 11, 1), 11),
        ("FY2027-Q1", date(2026, 2, 1), 20),  # 6 + 8 + 6
    )


def test_medians_exist_at_month_grain_only(small) -> None:
    result = small.metrics(["median_response_minutes"], grain="month")
    assert [r[2] for r in result.rows] == [45.0, 90.0, 37.5, 20.0]  # the mart's medians
    with pytest.raises(MetricError, match="median, which cannot be recomputed from monthly sums"):
        small.metrics(["median_response_minutes"], grain="quarter")


def test_churn_exists_by_company_only(small) -> None:
    with pytest.raises(MetricError, match=r"churn_rate \(kpi_churn\) exists by company only"):
        small.metrics(["churn_rate"], by="team")


def test_an_unknown_metric_lists_the_valid_names(small) -> None:
    with pytest.raises(MetricError) as info:
        small.metrics(["win_rat"])
    assert "unknown metric(s) win_rat. The metrics are: attainment," in str(info.value)
    assert "win_rate" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": "2026-13"}, "--from must be a month written YYYY-MM"),
        ({"end": "2026-1"}, "--to must be a month written YYYY-MM"),
        ({"start": "2026-04", "end": "2026-01"}, "--from 2026-04 is after --to 2026-01"),
        ({"grain": "week"}, "--grain must be one of"),
    ],
)
def test_bad_arguments_are_clear_errors(small, kwargs, message) -> None:
    with pytest.raises(MetricError, match=message):
        small.metrics(["win_rate"], **kwargs)


def test_metrics_of_marts_broken_down_differently_are_refused(small) -> None:
    with pytest.raises(MetricError, match="not broken down the same way"):
        small.metrics(["exits", "win_rate"])


# ------------------------------------------------------------------ the command line


def cli(small: Project, *args: str) -> Any:
    settings_ = small.settings
    return CliRunner().invoke(
        main,
        [
            "metrics",
            *args,
            "--warehouse",
            str(settings_.warehouse),
            "--target-path",
            str(settings_.target_path),
            "--vars",
            "{fiscal_year_start_month: 2}",
        ],
    )


def test_cli_prints_a_table_rounded_by_format_on_stdout(small) -> None:
    result = cli(small, "win_rate", "avg_deal_size", "--by", "team", "--grain", "quarter")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["period", "|", "period_start", "|", "team_id", "|", "win_rate",
                                "|", "avg_deal_size"]  # fmt: skip
    # T1 in Q1: 5 / 7 = 0.7142857 -> 0.7143; 4300 / 5 = 860.0
    assert "2026-Q1 | 2026-01-01   | T1      | 0.7143   | 860.0" in lines


def test_cli_csv_and_json_keep_every_digit(small) -> None:
    result = cli(small, "win_rate", "--grain", "fiscal_year", "--output", "csv")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "period,period_start,win_rate",
        "FY2026,2025-02-01,0.75",  # 3 / 4 (FY2026 began 2025-02-01)
        f"FY2027,2026-02-01,{7 / 9!r}",  # 7 / 9
    ]
    result = cli(small, "won_amount", "--grain", "year", "--output", "json")
    assert json.loads(result.stdout) == [
        {"period": "2026", "period_start": "2026-01-01", "won_amount": "8500.5000"}
    ]  # 1400 + 0 + 4800.50 + 2300


def test_cli_sql_prints_the_query_that_gives_the_rows(small) -> None:
    result = cli(small, "churn_rate", "--grain", "quarter", "--sql")
    assert result.exit_code == 0, result.output
    sql = result.stdout
    assert sql.startswith("with\n") and '"marts"."kpi_churn"' in sql
    con = duckdb.connect(str(small.settings.warehouse), read_only=True)
    try:
        rows = con.execute(sql).fetchall()
    finally:
        con.close()
    assert rows == list(small.metrics(["churn_rate"], grain="quarter").rows)


def test_cli_unknown_metric_exits_2_listing_the_names_on_stderr(small) -> None:
    result = cli(small, "win_rat")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "unknown metric(s) win_rat. The metrics are:" in result.stderr


def test_cli_median_above_month_exits_2(small) -> None:
    result = cli(small, "median_days_in_stage", "--grain", "fiscal_quarter")
    assert result.exit_code == 2
    assert "cannot be recomputed from monthly sums" in result.stderr


# ------------------------------------------------------------------ property test


def fiscal_period_start(month: date, start_month: int, grain: str) -> date:
    """The first month of `month`'s period, computed here independently of
    marts.dim_months."""
    if grain == "month":
        return month
    if grain == "quarter":
        return date(month.year, 3 * ((month.month - 1) // 3) + 1, 1)
    if grain == "year":
        return date(month.year, 1, 1)
    offset = (month.month - start_month) % 12  # months since the fiscal year began
    year = month.year - (1 if month.month < start_month else 0)
    if grain == "fiscal_year":
        return date(year, start_month, 1)
    first = start_month + 3 * (offset // 3)
    return date(year + (first - 1) // 12, (first - 1) % 12 + 1, 1)


_TERM = re.compile(r"\b(first|last)\((\w+)\)|\b([a-z_]\w*)\b")


def evaluate(expression: str, rows: list[dict[str, Any]], first: date, last: date) -> float:
    """A measure over the mart rows of one period, in Python: columns summed,
    first()/last() the value in the period's first/last month of the range (0
    when the group has no row then)."""

    def term(match: re.Match[str]) -> str:
        position, column = match.group(1), match.group(2) or match.group(3)
        if position:
            wanted = first if position == "first" else last
            picked = [r[column] for r in rows if r["month"] == wanted]
        else:
            picked = [r[column] for r in rows]
        return repr(float(sum(float(v) for v in picked)))

    return float(eval(_TERM.sub(term, expression)))


@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    versions=exports(),
    start_month=st.integers(1, 12),
    grain=st.sampled_from(["quarter", "fiscal_quarter", "year", "fiscal_year"]),
    by=st.sampled_from(["company", "team", "rep"]),
)
def test_metrics_are_the_marts_by_month_and_summed_ratios_above(
    tmp_path_factory, versions, start_month, grain, by
) -> None:
    work = tmp_path_factory.mktemp("metrics_prop")
    write_export(work / "export", versions["B"])
    project = Project.load(
        ROOT,
        warehouse=work / "w.duckdb",
        raw_dir=work / "export",
        target_path=work / "target",
        vars={"fiscal_year_start_month": start_month},
        reporter=Reporter(stream=io.StringIO()),
    )
    project.load_raw()
    project.seed()
    assert project.run().exit_code == 0
    con = duckdb.connect(str(work / "w.duckdb"), read_only=True)
    bounds: dict[date, tuple[date, date]] = {}  # period -> its first and last month in range
    range_months = con.execute("select month from intermediate.int_months_reported").fetchall()
    for (month,) in range_months:
        period = fiscal_period_start(month, start_month, grain)
        first, last = bounds.get(period, (month, month))
        bounds[period] = (min(first, month), max(last, month))
    by_mart: dict[str, list] = {}
    for metric in project.loaded.metrics.values():
        if by in metric.levels:
            by_mart.setdefault(metric.mart, []).append(metric)
    try:
        for mart, metrics in by_mart.items():
            cur = con.execute(f"select * from marts.{mart} where level = ?", [by])
            names = [d[0] for d in cur.description]
            mart_rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
            keys = {"company": [], "team": ["team_id"], "rep": ["team_id", "rep_id"]}[by]
            keys = keys + list(metrics[0].dimensions)
            # month grain: every metric is the mart's own column
            result = project.metrics([m.name for m in metrics], by=by, grain="month")
            got = {(row[1], *row[2 : 2 + len(keys)]): row[2 + len(keys) :] for row in result.rows}
            want = {
                (r["month"], *[r[k] for k in keys]): tuple(r[m.name] for m in metrics)
                for r in mart_rows
            }
            assert set(got) == set(want), mart
            for key, values in got.items():
                for metric, value, expected in zip(metrics, values, want[key], strict=True):
                    assert _close(value, expected), (mart, metric.name, key, value, expected)
            # a longer grain: summed numerator / summed denominator, in Python
            summable = [m for m in metrics if m.median is None]
            result = project.metrics([m.name for m in summable], by=by, grain=grain)
            groups: dict[tuple, list[dict[str, Any]]] = {}
            for r in mart_rows:
                period = fiscal_period_start(r["month"], start_month, grain)
                groups.setdefault((period, *[r[k] for k in keys]), []).append(r)
            got = {(row[1], *row[2 : 2 + len(keys)]): row[2 + len(keys) :] for row in result.rows}
            assert set(got) == set(groups), mart
            for key, rows in groups.items():
                first, last = bounds[key[0]]
                for metric, value in zip(summable, got[key], strict=True):
                    if metric.value is not None:
                        expected = evaluate(metric.value, rows, first, last)
                    else:
                        denominator = evaluate(metric.denominator or "", rows, first, last)
                        expected = (
                            None
                            if denominator == 0
                            else evaluate(metric.numerator or "", rows, first, last)
                            / denominator
                            * metric.multiplier
                        )
                    assert _close(value, expected), (mart, metric.name, key, value, expected)
    finally:
        con.close()


def _close(value: Any, expected: Any) -> bool:
    if expected is None or value is None:
        return value is None and expected is None
    return float(value) == pytest.approx(float(expected), rel=1e-9, abs=1e-9)


# ------------------------------------------------------------------ declarations


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        ("value: nope", "metric 'm': value: 'nope' is not a column of the mart"),
        ("value: sum(a)", "only first\\(\\) and last\\(\\) may be called"),
        ("value: a\n    median: a", "give exactly one of value, median, or numerator"),
        ("numerator: a", "give exactly one of value, median, or numerator"),
        ("value: a\n    format: furlongs", "format must be one of count, money"),
        ("value: a\n    unit: x", "unknown key\\(s\\) unit"),
    ],
)
def test_a_bad_metric_declaration_names_its_file_and_what_is_wrong(
    make_project, load, declaration, message
) -> None:
    fmt = "" if "format:" in declaration else "\n    format: count"
    yml = (
        "version: 2\nmodels:\n  - name: a\n    description: A.\n    columns:\n"
        "      - name: a\n      - name: month\n"
        f"metrics:\n  - name: m\n    mart: a\n    {declaration}{fmt}\n"
    )
    root = make_project(
        {"models/a.sql": "select 1 as a, date '2026-01-01' as month", "models/a.yml": yml}
    )
    with pytest.raises(MetricError, match=message) as info:
        load(root)
    assert "models/a.yml:" in str(info.value)


def test_a_metric_declared_twice_is_an_error(make_project, load) -> None:
    metric = "  - name: m\n    mart: a\n    value: a\n    format: count\n"
    root = make_project(
        {
            "models/a.sql": "select 1 as a",
            "models/a.yml": "models:\n  - name: a\n    columns:\n      - name: a\n"
            f"metrics:\n{metric}",
            "models/b.yml": f"metrics:\n{metric}",
        }
    )
    with pytest.raises(Exception, match="metric 'm' is declared twice"):
        load(root)


def test_metrics_on_a_warehouse_without_the_marts_say_to_build_first(tmp_path) -> None:
    duckdb.connect(str(tmp_path / "w.duckdb")).close()  # an empty warehouse
    project = Project.load(ROOT, warehouse=tmp_path / "w.duckdb", target_path=tmp_path / "t")
    with pytest.raises(ProjectError, match=r"lacks a table the metrics read \(Catalog Error"):
        project.metrics(["win_rate"])
