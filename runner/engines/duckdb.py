"""The DuckDB engine adapter.

Wraps a DuckDB connection, or one thread's cursor of it (`cursor()`).
Opening the warehouse file (its lock file, DuckDB's file lock, the UTC
session) stays in `runner/warehouse.py`; `DuckDBAdapter.open` wraps it.

The raw loader reads the export with DuckDB's own readers (`read_csv`,
`read_parquet`) and validates it in temporary tables before it writes the
typed raw tables: producing those tables is the loader's job, so it runs on
DuckDB whatever the target, and the temporary-table methods here
(`create_temp_table_as`, `create_temp_view`, `drop_temp`) are DuckDB's only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import duckdb

from runner.engines.base import EngineAdapter, RelationKind, strip_statement
from runner.nodes import Relation, quote_identifier, quote_literal

_KINDS = {"BASE TABLE": RelationKind.TABLE, "VIEW": RelationKind.VIEW}


# a table's deleted rows are reclaimed once they are this share of the rows
# it stores (PostgreSQL's autovacuum_vacuum_scale_factor is the same 0.2)
VACUUM_SHARE = 0.2


class DuckDBAdapter(EngineAdapter):
    """DuckDB: transactions, `create or replace`, `insert ... by name`."""

    dialect: ClassVar[str] = "duckdb"
    supports_transactions: ClassVar[bool] = True
    Error: ClassVar[type[Exception]] = duckdb.Error

    connection: duckdb.DuckDBPyConnection

    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        super().__init__(connection)

    @classmethod
    def open(
        cls,
        warehouse: Path,
        *,
        read_only: bool = False,
        settings: Mapping[str, Any] | None = None,
        wait_seconds: float = 0.0,
    ) -> DuckDBAdapter:
        """Open the warehouse file (see `warehouse.connect`)."""
        from runner.warehouse import connect

        adapter = cls(
            connect(warehouse, read_only=read_only, settings=settings, wait_seconds=wait_seconds)
        )
        # DuckDB's setting names are case-insensitive
        if not read_only and "max_vacuum_tasks" not in {k.lower() for k in settings or {}}:
            adapter.defer_vacuum()
        return adapter

    def defer_vacuum(self) -> bool:
        """Keep this connection's checkpoints from vacuuming deleted rows while
        no table stores `VACUUM_SHARE` or more of them; True if they are kept.

        An incremental build deletes the rows it replaces (`delete+insert`),
        and DuckDB's checkpoint then rewrites the row groups those deletes
        thinned, build after build: at 1M deals about a seventh of a refresh
        (docs/incremental.md, "Deleted rows"). Deferred, a table keeps its
        deleted rows (every scan skips them) until some table's share reaches
        the threshold; that writer's checkpoints then vacuum by DuckDB's own
        rules. Only tables of more than one row group count: a smaller one
        has nothing to merge. `open` leaves a `max_vacuum_tasks` set in the
        project's DuckDB settings alone.
        """
        with contextlib.suppress(duckdb.Error):
            tables = self.connection.execute(
                "select schema_name, table_name, estimated_size from duckdb_tables() "
                "where database_name = current_database() and not temporary "
                "and estimated_size > 122880"
            ).fetchall()
            for schema, table, stored in tables:
                row = self.connection.execute(
                    f"select count(*) from {Relation(schema, table)}"
                ).fetchone()
                live = row[0] if row else stored
                if stored - live >= VACUUM_SHARE * stored:
                    return False
            self.connection.execute("set global max_vacuum_tasks = 0")
            return True
        return False

    def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> Any:
        return self.connection.execute(sql, parameters)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.connection.executemany(sql, list(rows))

    def cursor(self) -> DuckDBAdapter:
        return DuckDBAdapter(self.connection.cursor())

    def interrupt(self) -> None:
        self.connection.interrupt()

    # -- the catalog ---------------------------------------------------------------

    def relations(
        self, schemas: Iterable[str] | None = None
    ) -> dict[tuple[str, str], RelationKind]:
        sql = (
            "select table_schema, table_name, table_type from information_schema.tables "
            "where table_catalog = current_database()"
        )
        rows = self._in_schemas(sql, "table_schema", schemas)
        return {(s.lower(), n.lower()): _KINDS.get(t, RelationKind.TABLE) for s, n, t in rows}

    def relation_kind(self, relation: Relation) -> RelationKind | None:
        row = self.fetchone(
            "select table_type from information_schema.tables "
            "where table_catalog = current_database() "
            "and lower(table_schema) = lower(?) and lower(table_name) = lower(?)",
            [relation.schema, relation.identifier],
        )
        return _KINDS.get(str(row[0]), RelationKind.TABLE) if row else None

    def catalog_columns(
        self, schemas: Iterable[str] | None = None
    ) -> dict[tuple[str, str], list[tuple[str, str]]]:
        sql = (
            "select table_schema, table_name, column_name, data_type "
            "from information_schema.columns where table_catalog = current_database()"
        )
        rows = self._in_schemas(
            sql, "table_schema", schemas, "order by table_schema, table_name, ordinal_position"
        )
        out: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for schema, table, column, kind in rows:
            out.setdefault((schema, table), []).append((column, kind))
        return out

    def _in_schemas(
        self, sql: str, column: str, schemas: Iterable[str] | None, tail: str = ""
    ) -> list[tuple[Any, ...]]:
        if schemas is None:
            return self.fetchall(f"{sql} {tail}")
        wanted = sorted({s.lower() for s in schemas})
        return self.fetchall(f"{sql} and lower({column}) in (select unnest(?)) {tail}", [wanted])

    # -- DDL ---------------------------------------------------------------------------

    def add_column(self, relation: Relation, name: str, sql_type: str) -> None:
        self.execute(
            f"alter table {relation} add column if not exists {quote_identifier(name)} {sql_type}"
        )

    def drop_columns(self, relation: Relation, names: Sequence[str]) -> None:
        """Drop columns of a table: DuckDB rewrites none of its data."""
        for name in names:
            self.execute(f"alter table {relation} drop column {quote_identifier(name)}")

    def create_table_as(self, relation: Relation, select: str, *, replace: bool = True) -> int:
        if replace:
            self._drop_other_kind(relation, RelationKind.TABLE)
        verb = "create or replace table" if replace else "create table"
        row = self.execute(f"{verb} {relation} as\n{strip_statement(select)}\n").fetchone()
        return int(row[0]) if row else 0

    def insert_by_name(self, relation: Relation, select: str) -> int:
        sql = f"insert into {relation} by name\n{strip_statement(select)}\n"
        row = self.execute(sql).fetchone()
        return int(row[0]) if row else 0

    def delete_insert(
        self,
        relation: Relation,
        select: str,
        unique_key: Sequence[str],
        valid_keys: str | None = None,
    ) -> int:
        batch = f"__kpi_batch__{relation.identifier}"
        quoted = quote_identifier(batch)
        self.create_temp_table_as(batch, select)
        match = " and ".join(
            f"{relation}.{quote_identifier(k)} is not distinct from {quoted}.{quote_identifier(k)}"
            for k in unique_key
        )
        keys = ", ".join(quote_identifier(k) for k in unique_key)
        self.execute(
            f"delete from {relation} where exists ("
            f"select 1 from (select distinct {keys} from {quoted}) as {quoted} where {match})"
        )
        if valid_keys:
            in_range = " and ".join(
                f"{relation}.{quote_identifier(k)} is not distinct from valid.{quote_identifier(k)}"
                for k in unique_key
            )
            self.execute(
                f"delete from {relation} where not exists ("
                f"select 1 from {valid_keys} as valid where {in_range})"
            )
        row = self.execute(f"insert into {relation} by name select * from {quoted}").fetchone()
        self.drop_temp(batch, if_exists=False)
        return int(row[0]) if row else 0

    # -- temporary relations (the loader's validation, the incremental batch) -----------

    def create_temp_table_as(self, name: str, select: str, *, replace: bool = True) -> None:
        verb = "create or replace temp table" if replace else "create temp table"
        self.execute(f"{verb} {quote_identifier(name)} as\n{strip_statement(select)}\n")

    def create_temp_view(self, name: str, select: str) -> None:
        self.execute(f"create temp view {quote_identifier(name)} as {strip_statement(select)}")

    def drop_temp(self, name: str, *, if_exists: bool = True) -> None:
        exists = "if exists " if if_exists else ""
        self.execute(f"drop table {exists}{quote_identifier(name)}")

    # -- other databases -----------------------------------------------------------------

    def attach(self, path: Path, alias: str) -> None:
        """Attach another DuckDB file (created when missing) as `alias`."""
        self.execute(f"attach {quote_literal(str(path))} as {quote_identifier(alias)}")

    def detach(self, alias: str) -> None:
        self.execute(f"detach {quote_identifier(alias)}")

    def create_table_in(
        self, alias: str, name: str, select: str, parameters: Sequence[Any] | None = None
    ) -> int:
        """A table `name` in the `main` schema of the attached database `alias`;
        its row count."""
        target = f"{quote_identifier(alias)}.main.{quote_identifier(name)}"
        self.execute(f"create table {target} as {strip_statement(select)}", parameters or None)
        row = self.fetchone(f"select count(*) from {target}")
        return int(row[0]) if row else 0

    # -- files ----------------------------------------------------------------------------

    def write_parquet(self, select: str, path: str) -> None:
        self.execute(
            f"copy (\n{strip_statement(select)}\n) to {quote_literal(path)} (format parquet)"
        )

    def parquet_select(self, path: str) -> str:
        return f"select * from read_parquet({quote_literal(path)})"

    def csv_select(self, path: str, column_types: Mapping[str, str]) -> str:
        options = ["header = true"]
        if column_types:
            types = ", ".join(
                f"{quote_literal(name)}: {quote_literal(kind)}"
                for name, kind in column_types.items()
            )
            options.append(f"types = {{{types}}}")
        return f"select * from read_csv({quote_literal(path)}, {', '.join(options)})"
