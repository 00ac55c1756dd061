"""Export files: where each table goes, how its values are written and read back.

A table is written sorted by its key (`SORT_KEYS`) to a file beside its
destination, then renamed into place. CSV holds the contract's text forms
(timestamps `YYYY-MM-DD HH:MM:SS` UTC, booleans `true`/`false`, money to the
cent: the simulated amounts are whole cents, within the contract's 4
decimals); Parquet holds each column in the contract's DuckDB type.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb

from runner.crm.draws import sql_list
from runner.crm.export_contract import CONTRACT, EVENT_TABLES, FORMATS, SORT_KEYS
from runner.errors import ProjectError
from runner.nodes import quote_literal
from runner.raw_contract import SQL_TYPES

# Money is simulated in whole cents; as text it is written to the cent.
CENTS = "DECIMAL(18,2)"

# Timestamp columns of which CSV writes a small share as `...T...Z` or `...+01:00`.
OFFSET_COLUMNS = {
    ("leads", "created_at"): "lead_id",
    ("opportunities", "created_at"): "opportunity_id",
    ("activities", "occurred_at"): "activity_id",
}


def table_path(out_dir: Path, table: str, file_format: str, part: int | None = None) -> Path:
    suffix = f".append-{part:04d}" if part else ""
    return out_dir / f"{table}{suffix}.{file_format}"


def remove_stale_files(out_dir: Path, file_format: str) -> None:
    """Remove part files and other-format files of the contract tables."""
    other = [ext for ext in FORMATS if ext != file_format]
    for table in CONTRACT:
        stale = [out_dir / f"{table}.{ext}" for ext in other]
        for ext in FORMATS:
            stale.extend(out_dir.glob(f"{table}.append-*.{ext}"))
        for path in stale:
            path.unlink(missing_ok=True)


def write_table(con: duckdb.DuckDBPyConnection, relation: str, table: str, path: Path) -> int:
    """Write one relation as a contract file, sorted by its key; return the row count.

    The file is written next to its destination and renamed into place.
    """
    file_format = path.suffix.lstrip(".")
    render = render_csv_column if file_format == "csv" else render_parquet_column
    columns = ", ".join(render(table, column, kind) for column, kind in CONTRACT[table])
    order = ", ".join(f"src.{column}" for column in SORT_KEYS[table])
    options = "FORMAT csv, HEADER true, DELIMITER ','" if file_format == "csv" else "FORMAT parquet"
    temporary = path.with_name(f".{path.name}.tmp")
    query = f"SELECT {columns} FROM {relation} AS src ORDER BY {order}"
    count = con.execute(f"COPY ({query}) TO {quote_literal(str(temporary))} ({options})").fetchone()
    os.replace(temporary, path)
    return int(count[0]) if count else 0


def render_csv_column(table: str, column: str, kind: str) -> str:
    """Text as the contract writes it (timestamps `YYYY-MM-DD HH:MM:SS` UTC)."""
    value = f"src.{column}"
    if (table, column) in OFFSET_COLUMNS:
        rendered = f"ts_text({value}, src.{OFFSET_COLUMNS[table, column]})"
    elif kind == "timestamp":
        rendered = f"strftime({value}, '%Y-%m-%d %H:%M:%S')"
    elif kind == "date":
        rendered = f"strftime({value}, '%Y-%m-%d')"
    elif kind == "bool":
        rendered = f"CASE WHEN {value} THEN 'true' WHEN NOT {value} THEN 'false' END"
    elif kind == "money":
        rendered = f"CAST({value} AS {CENTS})::VARCHAR"
    else:
        rendered = f"CAST({value} AS {SQL_TYPES[kind]})::VARCHAR"
    return f"{rendered} AS {column}"


def render_parquet_column(table: str, column: str, kind: str) -> str:
    return f"CAST(src.{column} AS {SQL_TYPES[kind]}) AS {column}"


def next_part_number(out_dir: Path, file_format: str) -> int:
    numbers = [0]
    for table in EVENT_TABLES:
        for path in out_dir.glob(f"{table}.append-*.{file_format}"):
            match = re.fullmatch(rf"{table}\.append-(\d+)\.{file_format}", path.name)
            if match:
                numbers.append(int(match.group(1)))
    return max(numbers) + 1


def table_files(out_dir: Path, table: str, file_format: str) -> list[Path]:
    """The base file of a table and, for event tables, its part files in order."""
    base = table_path(out_dir, table, file_format)
    if not base.is_file():
        raise ProjectError(
            "cannot append: the export has no such file.",
            path=base,
            hint="Append to a folder that kpi generate wrote, in the same --format.",
        )
    parts = sorted(out_dir.glob(f"{table}.append-*.{file_format}")) if table in EVENT_TABLES else []
    return [base, *parts]


def read_export(con: duckdb.DuckDBPyConnection, out_dir: Path, file_format: str) -> None:
    """Read every table of the export into `cur_<table>`, typed by the contract."""
    for table, columns in CONTRACT.items():
        files = sql_list(str(path) for path in table_files(out_dir, table, file_format))
        if file_format == "csv":
            source = (
                f"read_csv({files}, header = true, all_varchar = true, delim = ',',"
                " quote = '\"', escape = '\"', union_by_name = true)"
            )
        else:
            source = f"read_parquet({files}, union_by_name = true)"
        typed = ", ".join(typed_column(column, kind) for column, kind in columns)
        con.execute(f"CREATE TABLE cur_{table} AS SELECT {typed} FROM {source}")


def typed_column(column: str, kind: str) -> str:
    if kind == "timestamp":
        return f"CAST(CAST({column} AS TIMESTAMPTZ) AS TIMESTAMP) AS {column}"
    return f"CAST({column} AS {SQL_TYPES[kind]}) AS {column}"
