"""runner/engines/: the engine adapter's methods on an in-memory DuckDB, and
the rule that only the adapter (and the state-table owner) writes DDL."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import duckdb
import pytest

from runner.engines.base import EngineAdapter, RelationKind
from runner.engines.duckdb import DuckDBAdapter
from runner.nodes import Relation

T = Relation("s", "t")


def rows(engine: DuckDBAdapter, sql: str = "select * from s.t order by all") -> list[tuple]:
    return engine.fetchall(sql)


@pytest.fixture
def s(engine: DuckDBAdapter) -> DuckDBAdapter:
    """The adapter, with a schema `s`."""
    engine.create_schema("s")
    return engine


def test_the_duckdb_adapter_says_what_it_is(engine: DuckDBAdapter) -> None:
    assert engine.dialect == "duckdb"
    assert engine.supports_transactions
    assert issubclass(engine.Error, Exception)


def test_create_schema_twice_is_harmless(engine: DuckDBAdapter) -> None:
    engine.create_schema("Marts")
    engine.create_schema("Marts")
    assert engine.fetchone("select count(*) from duckdb_schemas() where schema_name = 'Marts'") == (
        1,
    )


def test_relation_kind_is_table_view_or_none_whatever_the_case(s: DuckDBAdapter) -> None:
    assert s.relation_kind(T) is None
    s.create_table_as(T, "select 1 as id")
    s.create_view(Relation("s", "v"), "select * from s.t")
    assert s.relation_kind(Relation("S", "T")) == RelationKind.TABLE
    assert s.relation_kind(Relation("s", "v")) == RelationKind.VIEW


def test_relations_lists_every_relation_or_those_of_some_schemas(s: DuckDBAdapter) -> None:
    s.create_schema("Other")
    s.create_table_as(T, "select 1 as id")
    s.create_view(Relation("Other", "V"), "select 1 as id")
    assert s.relations() == {("s", "t"): RelationKind.TABLE, ("other", "v"): RelationKind.VIEW}
    assert s.relations(["OTHER"]) == {("other", "v"): RelationKind.VIEW}
    assert s.relations([]) == {}


def test_columns_in_order_with_their_types(s: DuckDBAdapter) -> None:
    s.create_table_as(T, "select 'a' as name, 1::bigint as id, 1.5::decimal(6,2) as rate")
    assert s.columns(Relation("S", "T")) == [
        ("name", "VARCHAR"),
        ("id", "BIGINT"),
        ("rate", "DECIMAL(6,2)"),
    ]
    assert s.columns(Relation("s", "missing")) == []
    assert s.catalog_columns(["s"]) == {("s", "t"): s.columns(T)}


def test_create_table_as_returns_its_rows_and_replaces(s: DuckDBAdapter) -> None:
    assert s.create_table_as(T, "select * from range(3) r(id);\n") == 3
    assert s.create_table_as(T, "select 9 as id") == 1
    assert rows(s) == [(9,)]
    with pytest.raises(duckdb.CatalogException):
        s.create_table_as(T, "select 1 as id", replace=False)


def test_a_view_becomes_a_table_and_back(s: DuckDBAdapter) -> None:
    s.create_view(T, "select 1 as id")
    assert s.create_table_as(T, "select 2 as id") == 1
    assert s.relation_kind(T) == RelationKind.TABLE
    s.create_view(T, "select 3 as id")
    assert (s.relation_kind(T), rows(s)) == (RelationKind.VIEW, [(3,)])


def test_create_table_and_add_column_only_once(s: DuckDBAdapter) -> None:
    s.create_table(T, {"id": "bigint"})
    s.create_table(T, {"other": "varchar"})  # exists: unchanged
    s.add_column(T, "loaded_at", "timestamp")
    s.add_column(T, "LOADED_AT", "timestamp")
    assert [c for c, _ in s.columns(T)] == ["id", "loaded_at"]


def test_insert_by_name_matches_columns_by_name(s: DuckDBAdapter) -> None:
    s.create_table_as(T, "select 1 as id, 'a' as name")
    assert s.insert_by_name(T, "select 'b' as name, 2 as id") == 1
    assert rows(s) == [(1, "a"), (2, "b")]


def test_delete_insert_replaces_keys_and_drops_keys_out_of_range(s: DuckDBAdapter) -> None:
    s.create_table_as(T, "select * from (values (1, 'old'), (2, 'old'), (3, 'old')) v(k, v)")
    s.create_table_as(Relation("s", "valid"), "select * from (values (1), (2), (4)) v(k)")
    written = s.delete_insert(
        T, "select * from (values (2, 'new'), (4, 'new')) v(k, v)", ("k",), "s.valid"
    )
    assert written == 2
    assert rows(s) == [(1, "old"), (2, "new"), (4, "new")]
    assert s.fetchone("select count(*) from duckdb_tables() where temporary") == (0,)


def test_drop_relation_drops_what_it_is_and_ignores_what_is_not(s: DuckDBAdapter) -> None:
    s.create_view(T, "select 1 as id")
    s.drop_relation(T)
    assert s.relation_kind(T) is None
    s.drop_relation(T)  # nothing to drop
    s.create_table_as(T, "select 1 as id")
    s.drop_relation(T, RelationKind.TABLE)
    assert s.relations(["s"]) == {}


def test_rename_relation_keeps_rows_and_kind(s: DuckDBAdapter) -> None:
    s.create_table_as(T, "select 1 as id")
    s.rename_relation(T, "t_new")
    assert s.relations(["s"]) == {("s", "t_new"): RelationKind.TABLE}
    s.create_view(T, "select 2 as id")
    s.rename_relation(T, "v_new")
    assert s.relation_kind(Relation("s", "v_new")) == RelationKind.VIEW


def test_transaction_commits_at_the_end(s: DuckDBAdapter) -> None:
    with s.transaction() as transaction:
        assert transaction.active
        s.create_table_as(T, "select 1 as id")
    assert rows(s) == [(1,)]


def test_transaction_rolls_back_when_the_block_raises(s: DuckDBAdapter) -> None:
    s.create_table_as(T, "select 1 as id")
    with pytest.raises(duckdb.ConversionException), s.transaction():
        s.create_table_as(T, "select 2 as id")
        s.create_table_as(T, "select 'x'::int as id")
    assert rows(s) == [(1,)]
    s.create_table_as(Relation("s", "after"), "select 1 as id")  # no transaction left open


def test_transaction_rolls_back_when_asked(s: DuckDBAdapter) -> None:
    s.create_table_as(T, "select 1 as id")
    with s.transaction() as transaction:
        s.create_table_as(T, "select 2 as id")
        transaction.rollback()
    assert rows(s) == [(1,)]


def test_an_engine_without_transactions_runs_the_block_as_it_is() -> None:
    class NoTransactions(EngineAdapter):
        supports_transactions = False

        def execute(self, sql, parameters=None):
            self.connection.append(sql)

    adapter = NoTransactions([])
    with adapter.transaction() as transaction:
        adapter.execute("select 1")
    assert not transaction.active
    adapter.abandon_transaction()
    assert adapter.connection == ["select 1"]


def test_a_cursor_is_an_adapter_on_the_same_database(s: DuckDBAdapter) -> None:
    cursor = s.cursor()
    assert isinstance(cursor, DuckDBAdapter) and cursor.connection is not s.connection
    cursor.create_table_as(T, "select 1 as id")
    assert rows(s) == [(1,)]
    cursor.close()


def test_parquet_out_and_back(s: DuckDBAdapter, tmp_path: Path) -> None:
    file = tmp_path / "rows.parquet"
    s.write_parquet("select * from range(2) r(id);", str(file))
    assert s.create_table_as(T, s.parquet_select(str(file))) == 2


def test_csv_select_reads_a_header_and_the_given_types(s: DuckDBAdapter, tmp_path: Path) -> None:
    file = tmp_path / "it's.csv"
    file.write_text("code,rate\n007,1\n")
    s.create_table_as(T, s.csv_select(str(file), {"code": "varchar", "rate": "decimal(6,2)"}))
    assert s.columns(T) == [("code", "VARCHAR"), ("rate", "DECIMAL(6,2)")]
    assert rows(s, "select code from s.t") == [("007",)]


def test_temporary_tables_and_views(engine: DuckDBAdapter) -> None:
    engine.create_temp_table_as("batch", "select 1 as id")
    engine.create_temp_view("batch_view", "select * from batch")
    assert engine.fetchall("select * from batch_view") == [(1,)]
    engine.execute("drop view batch_view")
    engine.drop_temp("batch", if_exists=False)
    engine.drop_temp("batch")
    assert engine.fetchone("select count(*) from duckdb_tables() where temporary") == (0,)


def test_a_table_in_an_attached_file(s: DuckDBAdapter, tmp_path: Path) -> None:
    s.create_table_as(T, "select * from range(4) r(id)")
    s.attach(tmp_path / "other.duckdb", "other")
    assert s.create_table_in("other", "copy", "select * from s.t where id > ?", [1]) == 2
    s.detach("other")
    with duckdb.connect(str(tmp_path / "other.duckdb")) as other:
        assert other.execute("select count(*) from main.copy").fetchall() == [(2,)]


# -- who writes DDL ---------------------------------------------------------------------

RUNNER = Path(__file__).resolve().parent.parent / "runner"
# The adapter writes DDL; the state-table owner defines its tables' columns and
# reads and writes their rows. The CRM export generator (runner/crm/) is a
# simulation that works in its own in-memory DuckDB, never on the warehouse.
ALLOWED = ("engines/", "state_tables.py", "crm/")
DDL = re.compile(
    r"\b(create\s+(or\s+replace\s+|temp\s+|temporary\s+)?(schema|table|view)"
    r"|create\s+or\s+replace|drop\s+(table|view|schema)|alter\s+(table|view)"
    r"|information_schema|duckdb_(tables|views|columns|schemas)\s*\(|attach\s|detach\s)"
    r"|(?<!\w)_kpi(?!\w)",
    re.IGNORECASE,
)


def ddl_in(source: str) -> list[tuple[int, str]]:
    """`(line, text)` of each string literal in `source` (docstrings left out)
    that holds DDL, a catalog query, or names the `_kpi` schema."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and DDL.search(node.value)
        ):
            found.append((node.lineno, node.value.strip()[:60]))
    return sorted(found)


def test_the_scan_finds_ddl_in_code_but_not_in_docstrings() -> None:
    source = '''
def f(cur, relation, verb):
    """Say what `create or replace table` does; `_kpi.node_state` is named here."""
    cur.execute(f"create or replace table {relation} as select 1")
    cur.execute("select * from information_schema.tables")
    cur.execute(f"{verb} table {relation}")  # unseen: the scan reads literals
    cur.execute('select * from "_kpi"."node_state"')
    return "__kpi_batch__"
'''
    assert [line for line, _ in ddl_in(source)] == [4, 5, 7]


def test_only_the_engine_adapter_and_the_state_tables_write_ddl() -> None:
    offenders = []
    for path in sorted(RUNNER.rglob("*.py")):
        relative = path.relative_to(RUNNER).as_posix()
        if relative.startswith(ALLOWED):
            continue
        offenders += [
            f"runner/{relative}:{line}: {text}" for line, text in ddl_in(path.read_text())
        ]
    assert offenders == [], (
        "DDL, catalog queries and the `_kpi` schema belong to runner/engines/ and "
        "runner/state_tables.py:\n" + "\n".join(offenders)
    )
