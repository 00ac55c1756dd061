"""runner/report.py without a browser: what the page embeds, the last complete
month, and the errors a reader gets before any build."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import duckdb
from click.testing import CliRunner

from runner.cli import main
from runner.engines.duckdb import DuckDBAdapter
from runner.project import Project
from runner.report import KPIS, last_complete_month, report_data


def test_the_ten_kpis_have_a_numerator_a_unit_and_a_mart() -> None:
    assert len(KPIS) == 10
    assert len({k.mart for k in KPIS}) == 10
    assert {k.unit for k in KPIS} <= {"pct", "currency", "days", "minutes", "count"}


def test_the_last_month_is_complete_only_once_the_data_reaches_its_end() -> None:
    months = ["2026-01-01", "2026-02-01", "2026-03-01"]
    # an export taken mid-March: February is the last complete month
    assert last_complete_month(months, date(2026, 3, 14), date(2026, 3, 14)) == "2026-02-01"
    # an export whose data reach the end of March, read in May
    assert last_complete_month(months, date(2026, 3, 31), date(2026, 5, 2)) == "2026-03-01"
    # a date in the future in the data does not make the current month complete
    assert last_complete_month(months, date(2030, 1, 1), date(2026, 3, 14)) == "2026-02-01"
    assert last_complete_month(months, None, date(2026, 1, 2)) is None


def test_the_page_embeds_sums_that_add_up_to_the_marts(demo_build, tmp_path: Path) -> None:
    project, warehouse = demo_build
    info = project.report(tmp_path / "r.html")
    text = info.path.read_text("utf-8")
    assert "<script src" not in text and "http://" not in text.replace("http://www.w3.org", "")
    found = re.search(r'<script type="application/json" id="kpi-data">(.*?)</script>', text)
    assert found
    data = json.loads(found.group(1))
    assert len(data["kpis"]) == 10 and data["last_complete_month"] == "2026-02-01"
    win = next(k for k in data["kpis"] if k["mart"] == "kpi_win_rate")
    company = [r for r in win["rows"] if r[1] == "company"]
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        won, closed = con.execute(
            "select sum(won_deals), sum(closed_deals) from marts.kpi_win_rate "
            "where level = 'company'"
        ).fetchone()
    finally:
        con.close()
    assert (sum(r[4] for r in company), sum(r[5] for r in company)) == (won, closed)
    # monthly sales carry the quota, drawn as a dashed line against the won amount
    sales = next(k for k in data["kpis"] if k["mart"] == "kpi_monthly_sales")
    assert sales["reference"] == "quota_amount"
    assert all(r[6] is not None for r in sales["rows"])


def test_report_data_reads_the_published_file_schema(demo_build, tmp_path: Path) -> None:
    from runner.publish import publish_marts

    _, warehouse = demo_build
    copy = tmp_path / "w.duckdb"
    copy.write_bytes(warehouse.read_bytes())
    con = duckdb.connect(str(copy))
    try:
        publish_marts(DuckDBAdapter(con), tmp_path / "marts.duckdb")
    finally:
        con.close()
    published = duckdb.connect(str(tmp_path / "marts.duckdb"), read_only=True)
    try:
        data = report_data(published, schema="main")
    finally:
        published.close()
    assert len(data["months"]) == 14


def test_report_before_any_build_says_to_build_first(make_project, runner_env) -> None:
    root = make_project({"models/a.sql": "select 1 as id"})
    result = CliRunner().invoke(
        main, ["report", "--project-dir", str(root), "--warehouse", str(root / "w.duckdb")]
    )
    assert result.exit_code == 2
    assert "Run `kpi build` first." in result.stderr
    assert "Traceback" not in result.output


def test_report_on_a_warehouse_without_marts_says_to_build_first(make_project, load) -> None:
    root = make_project({"models/a.sql": "select 1 as id"})
    project: Project = load(root)
    assert project.build().exit_code == 0
    result = CliRunner().invoke(
        main, ["report", "--project-dir", str(root), "--warehouse", str(root / "w.duckdb")]
    )
    assert result.exit_code == 2
    assert "no marts to report on" in result.stderr and "kpi build" in result.stderr
