"""runner/engines/duckdb.py: how a writer's checkpoints treat deleted rows.

An incremental build deletes the rows it replaces; DuckDB's checkpoint would
rewrite the thinned row groups build after build. A writer defers that
vacuum until some table's deleted rows reach `VACUUM_SHARE` of what it
stores (docs/incremental.md, "Deleted rows")."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from runner.engines.duckdb import VACUUM_SHARE, DuckDBAdapter

ROWS = 300_000  # three row groups: a table of one has nothing to merge


def stored_and_live(warehouse: Path, table: str = "t") -> tuple[int, int]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        stored = con.execute(
            "select estimated_size from duckdb_tables() where table_name = ?", [table]
        ).fetchone()
        live = con.execute(f"select count(*) from {table}").fetchone()
        assert stored is not None and live is not None
        return stored[0], live[0]
    finally:
        con.close()


def vacuum_tasks(adapter: DuckDBAdapter) -> int:
    row = adapter.execute("select current_setting('max_vacuum_tasks')").fetchone()
    assert row is not None
    return int(row[0])


def deleted(warehouse: Path, where: str, settings: dict[str, str] | None = None) -> int:
    """Delete the rows `where` holds and checkpoint; the writer's vacuum tasks."""
    con = DuckDBAdapter.open(warehouse, settings=settings)
    try:
        tasks = vacuum_tasks(con)
        con.execute(f"delete from t where {where}")
        con.execute("checkpoint")
        return tasks
    finally:
        con.close()


def table(warehouse: Path, rows: int = ROWS) -> None:
    con = DuckDBAdapter.open(warehouse)
    try:
        con.execute(f"create table t as select range as id, 'x' || range as v from range({rows})")
    finally:
        con.close()


# 70% of the 5th and 6th row groups of a 1M-row table (122,880 rows each):
# 172,032 rows, 17% of the table. DuckDB's own vacuum merges those two row
# groups into one at the checkpoint.
THINNED = "id between 491520 and 737279 and id % 10 < 7"


def test_deleted_rows_are_kept_while_they_are_a_small_share(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    table(warehouse, 1_000_000)
    assert deleted(warehouse, THINNED) == 0
    assert stored_and_live(warehouse) == (1_000_000, 827_968)


def test_duckdbs_own_vacuum_would_have_merged_them(tmp_path: Path) -> None:
    """The setting the writer keeps is what saves the rewriting: the same
    deletes under DuckDB's default are vacuumed at once."""
    warehouse = tmp_path / "w.duckdb"
    table(warehouse, 1_000_000)
    assert deleted(warehouse, THINNED, settings={"max_vacuum_tasks": "100"}) == 100
    assert stored_and_live(warehouse) == (827_968, 827_968)


def test_a_table_past_the_share_is_vacuumed_by_the_next_writer(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    table(warehouse)
    # half deleted: this writer opened before the deletes, so it keeps them
    assert deleted(warehouse, "id % 2 = 0") == 0
    stored, live = stored_and_live(warehouse)
    assert stored - live >= VACUUM_SHARE * stored
    # the next writer sees them and lets DuckDB's checkpoint merge the row groups
    con = DuckDBAdapter.open(warehouse)
    try:
        assert vacuum_tasks(con) > 0
        con.execute("insert into t values (-1, 'new')")
        con.execute("checkpoint")
    finally:
        con.close()
    stored, live = stored_and_live(warehouse)
    assert live == ROWS // 2 + 1
    assert stored - live < VACUUM_SHARE * stored, (stored, live)


@pytest.mark.parametrize("name", ["max_vacuum_tasks", "MAX_VACUUM_TASKS"])
def test_the_projects_own_max_vacuum_tasks_wins(tmp_path: Path, name: str) -> None:
    warehouse = tmp_path / "w.duckdb"
    table(warehouse)
    assert deleted(warehouse, "id % 10 = 0", settings={name: "7"}) == 7


def test_readers_and_small_tables_leave_the_setting_alone(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    con = DuckDBAdapter.open(warehouse)
    try:
        # one row group, most of it deleted: nothing a vacuum could merge
        con.execute("create table small as select range as id from range(1000)")
        con.execute("delete from small where id >= 100")
    finally:
        con.close()
    con = DuckDBAdapter.open(warehouse)
    try:
        assert vacuum_tasks(con) == 0
    finally:
        con.close()
    reader = DuckDBAdapter.open(warehouse, read_only=True)
    try:
        assert vacuum_tasks(reader) == 100  # DuckDB's default
    finally:
        reader.close()
