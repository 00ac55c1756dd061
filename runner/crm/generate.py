"""Deterministic, realistic CRM exports: the input of `kpi build`.

`generate_export` writes one file per table of the raw CRM contract (KPI_SPEC
section 1), `<table>.csv` or `<table>.parquet`, holding exactly the contract's
columns. The data is clean (every key unique, every reference valid, no row the
loader rejects) but shaped like a real sales organisation, so that every KPI has
something to measure.

The work is split by job: `export_contract` (which tables and columns, from
the sources yml), `draws` (hash-based randomness and SQL helpers),
`simulation` (the sales organisation of a base export), `append` (moving an
export forward) and `files` (writing and reading the files).
"""

from __future__ import annotations

import tempfile
from datetime import date, datetime
from pathlib import Path

import duckdb

from runner.crm.append import append_export
from runner.crm.export_contract import CONTRACT, FORMATS
from runner.crm.files import remove_stale_files, table_path, write_table
from runner.crm.simulation import Period, add_months, build_base_export, plan_scale
from runner.errors import ProjectError
from runner.nodes import quote_literal

# DuckDB spills to a temporary directory beyond this (1M deals peak at about 2 GB).
MEMORY_LIMIT = "2GB"


def generate_export(
    out_dir: Path,
    *,
    seed: int = 42,
    opportunities: int = 3000,
    file_format: str = "csv",
    start: date = date(2025, 1, 1),
    months: int = 14,
    append: bool = False,
) -> dict[str, int]:
    """Write a CRM export into out_dir; return rows written per table.

    Without `append`, writes `<table>.<ext>` for every contract table (removing
    part files of an earlier export of the same tables). With `append`, extends
    the export already in out_dir (see the module docstring); the counts are
    then the rows of the rewritten snapshot files and of the new part files.
    """
    out_dir = Path(out_dir)
    check_arguments(seed, opportunities, file_format, start, months)
    with tempfile.TemporaryDirectory(prefix="crm-export-") as spill, duckdb.connect() as con:
        con.execute(f"""
            SET TimeZone = 'UTC';
            SET enable_progress_bar = false;
            SET memory_limit = '{MEMORY_LIMIT}';
            SET temp_directory = {quote_literal(spill)};
        """)
        if append:
            return append_export(con, out_dir, seed, file_format)
        out_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_files(out_dir, file_format)
        period = Period(datetime.combine(start, datetime.min.time()), add_months(start, months))
        build_base_export(con, plan_scale(opportunities), period, seed)
        return {
            table: write_table(con, f"out_{table}", table, table_path(out_dir, table, file_format))
            for table in CONTRACT
        }


def check_arguments(
    seed: int, opportunities: int, file_format: str, start: date, months: int
) -> None:
    """Refuse arguments that cannot make an export, naming the one to change."""
    problem = None
    if file_format not in FORMATS:
        problem = f"file_format must be one of {', '.join(FORMATS)}, not {file_format!r}."
    elif opportunities < 10:
        problem = f"opportunities must be at least 10, not {opportunities}."
    elif months < 3:
        problem = f"months must be at least 3, not {months}."
    elif start.day != 1:
        problem = f"start must be the first day of a month, not {start:%Y-%m-%d}."
    elif not isinstance(seed, int):
        problem = f"seed must be an integer, not {seed!r}."
    if problem:
        raise ProjectError(f"cannot generate an export: {problem}")
