"""`marts.dim_months` (KPI_SPEC section 5): the calendar and fiscal year and
quarter of every month of the range, for fiscal years starting in January,
February and July. A fiscal year is named by the calendar year in which it
ends."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from runner import Project
from runner.errors import ProjectError
from runner.reporting import Reporter

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "crm_small"
# crm_small covers 2026-01 .. 2026-04; the vars widen the range to 13 months.
RANGE = {"start_month": "2025-12-01", "end_month": "2026-12-01"}


def build_dim_months(work: Path, **settings: Any) -> list[tuple[Any, ...]]:
    project = Project.load(
        ROOT,
        warehouse=work / "w.duckdb",
        raw_dir=FIXTURE,
        target_path=work / "target",
        vars={**RANGE, **settings},
        reporter=Reporter(stream=io.StringIO()),
    )
    project.load_raw()
    project.seed()
    result = project.run(select=["+dim_months"])
    assert result.exit_code == 0, result.summary
    con = duckdb.connect(str(work / "w.duckdb"), read_only=True)
    try:
        return con.execute("select * from marts.dim_months order by month").fetchall()
    finally:
        con.close()


def by_month(rows: list[tuple[Any, ...]]) -> dict[date, tuple[Any, ...]]:
    return {row[0]: row[1:] for row in rows}


def test_default_fiscal_year_is_the_calendar_year(tmp_path: Path) -> None:
    months = by_month(build_dim_months(tmp_path))
    assert len(months) == 13  # 2025-12 .. 2026-12
    # (calendar_year, calendar_quarter, fiscal_year, fiscal_quarter,
    #  fiscal_quarter_start, fiscal_year_start)
    assert months[date(2025, 12, 1)] == (2025, 4, 2025, 4, date(2025, 10, 1), date(2025, 1, 1))
    assert months[date(2026, 1, 1)] == (2026, 1, 2026, 1, date(2026, 1, 1), date(2026, 1, 1))
    assert months[date(2026, 8, 1)] == (2026, 3, 2026, 3, date(2026, 7, 1), date(2026, 1, 1))


def test_fiscal_year_starting_in_february_is_named_by_the_year_it_ends(
    tmp_path: Path,
) -> None:
    months = by_month(build_dim_months(tmp_path, fiscal_year_start_month=2))
    # FY2027 runs 2026-02-01 .. 2027-01-31 (spec section 5); FY2026 ends 2026-01-31.
    assert months[date(2026, 1, 1)] == (2026, 1, 2026, 4, date(2025, 11, 1), date(2025, 2, 1))
    assert months[date(2026, 2, 1)] == (2026, 1, 2027, 1, date(2026, 2, 1), date(2026, 2, 1))
    # April is the third month of Q1 (Feb, Mar, Apr); May opens Q2.
    assert months[date(2026, 4, 1)] == (2026, 2, 2027, 1, date(2026, 2, 1), date(2026, 2, 1))
    assert months[date(2026, 5, 1)] == (2026, 2, 2027, 2, date(2026, 5, 1), date(2026, 2, 1))
    # December 2025 is in Q4 of FY2026 (Nov 2025, Dec 2025, Jan 2026).
    assert months[date(2025, 12, 1)] == (2025, 4, 2026, 4, date(2025, 11, 1), date(2025, 2, 1))
    assert months[date(2026, 12, 1)] == (2026, 4, 2027, 4, date(2026, 11, 1), date(2026, 2, 1))


def test_fiscal_year_starting_in_july(tmp_path: Path) -> None:
    months = by_month(build_dim_months(tmp_path, fiscal_year_start_month=7))
    # FY2026 runs 2025-07-01 .. 2026-06-30, FY2027 from 2026-07-01.
    assert months[date(2025, 12, 1)] == (2025, 4, 2026, 2, date(2025, 10, 1), date(2025, 7, 1))
    assert months[date(2026, 1, 1)] == (2026, 1, 2026, 3, date(2026, 1, 1), date(2025, 7, 1))
    assert months[date(2026, 6, 1)] == (2026, 2, 2026, 4, date(2026, 4, 1), date(2025, 7, 1))
    assert months[date(2026, 7, 1)] == (2026, 3, 2027, 1, date(2026, 7, 1), date(2026, 7, 1))
    assert months[date(2026, 12, 1)] == (2026, 4, 2027, 2, date(2026, 10, 1), date(2026, 7, 1))


@pytest.mark.parametrize("value", [0, 13, "2", 2.5, True])
def test_a_fiscal_start_month_outside_1_to_12_is_a_clear_error(tmp_path: Path, value: Any) -> None:
    with pytest.raises(ProjectError, match="fiscal_year_start_month must be a whole number"):
        Project.load(
            ROOT,
            warehouse=tmp_path / "w.duckdb",
            target_path=tmp_path / "t",
            vars={"fiscal_year_start_month": value},
        )


def test_the_setting_in_tool_kpi_reaches_the_models(make_project, load) -> None:
    root = make_project(
        {
            "pyproject.toml": "[tool.kpi]\nthreads = 1\nfiscal_year_start_month = 4\n",
            "models/a.sql": "select {{ var('fiscal_year_start_month') }} as start_month",
        }
    )
    project = load(root)
    assert project.loaded.vars["fiscal_year_start_month"] == 4


def test_a_setting_given_twice_differently_is_a_clear_error(make_project, load) -> None:
    root = make_project(
        {
            "pyproject.toml": "[tool.kpi]\nfiscal_year_start_month = 4\n"
            "[tool.kpi.vars]\nfiscal_year_start_month = 7\n",
            "models/a.sql": "select 1 as a",
        }
    )
    with pytest.raises(ProjectError, match="fiscal_year_start_month is set twice"):
        load(root)
