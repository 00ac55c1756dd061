"""Defaults change nothing (KPI_SPEC section 5): the demo built with every
reporting setting written out at its default gives, table by table, the same
columns, types and values as the demo built with no setting at all. (That
these are today's numbers is what `tests/test_kpi_values.py` and the README
examples check.)"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import duckdb

from runner.project import Project
from runner.reporting import Reporter

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS = {"timezone": "UTC", "fiscal_year_start_month": 1, "reporting_currency": None}


def tables(warehouse: Path) -> dict[str, tuple[list[Any], list[tuple[Any, ...]]]]:
    """Every table and view of the models' schemas: its columns with their
    types, and its rows in a fixed order."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        names = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('staging', 'intermediate', 'marts') order by all"
        ).fetchall()
        out = {}
        for schema, name in names:
            columns = con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [schema, name],
            ).fetchall()
            rows = con.execute(f'select * from "{schema}"."{name}" order by all').fetchall()
            out[f"{schema}.{name}"] = (columns, rows)
        return out
    finally:
        con.close()


def test_explicit_defaults_build_the_same_tables_as_no_setting(demo_build, tmp_path) -> None:
    _, plain = demo_build
    project = Project.load(
        ROOT,
        warehouse=tmp_path / "w.duckdb",
        target_path=tmp_path / "target",
        vars=DEFAULTS,
        reporter=Reporter(stream=io.StringIO()),
    )
    result = project.build()
    assert result.exit_code == 0, result.summary
    expected, actual = tables(plain), tables(tmp_path / "w.duckdb")
    assert len(expected) > 30 and "marts.kpi_win_rate" in expected
    assert sorted(actual) == sorted(expected)
    different = [name for name in expected if actual[name] != expected[name]]
    assert different == []
