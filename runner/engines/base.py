"""The engine adapter: the one place that writes DDL for the warehouse.

Everything the runner does to the warehouse's catalog (create a schema,
build a table or view, replace it, drop or rename it, ask whether a relation
exists and what its columns are) goes through an `EngineAdapter`, as
SQLMesh's `core/engine_adapter/base.py` does for its engines. The rest of the
runner speaks of relations and `select` statements; the adapter decides the
statements that carry them out on its engine. Queries (selects) run on the
cursor the adapter hands out (`execute`, `fetchall`, `fetchone`).

The base class holds the engine-neutral SQL (quoted identifiers, `create or
replace`); an engine subclasses it, names its `dialect`, says whether it
`supports_transactions`, and overrides what its engine spells otherwise.
`runner/engines/duckdb.py` is the DuckDB one. An engine without transactions
(Spark) says so with `supports_transactions = False`: `transaction()` then
runs its block without one, and callers that need all-or-nothing (a model
and its error tests) build into a staging relation and swap it in instead.

    adapter = DuckDBAdapter(duckdb.connect())
    adapter.create_schema("marts")
    rows = adapter.create_table_as(Relation("marts", "t"), "select 1 as id")
    adapter.relation_kind(Relation("marts", "t"))   # RelationKind.TABLE
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from runner.nodes import Relation, quote_identifier


class RelationKind(StrEnum):
    """What a relation in the warehouse is."""

    TABLE = "table"
    VIEW = "view"


def strip_statement(sql: str) -> str:
    """The query without trailing whitespace and semicolons."""
    return sql.rstrip().rstrip(";").rstrip()


@dataclass
class Transaction:
    """An open transaction; `rollback()` asks for it to end rolled back
    instead of committed (without an exception)."""

    active: bool = True
    rolled_back: bool = False

    def rollback(self) -> None:
        self.rolled_back = True


class EngineAdapter:
    """One connection (or one thread's cursor) to a warehouse engine."""

    dialect: ClassVar[str] = ""
    supports_transactions: ClassVar[bool] = True
    # the engine's base error class: what a failed statement raises
    Error: ClassVar[type[Exception]] = Exception

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    # -- statements ------------------------------------------------------------

    def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> Any:
        """Run one statement; the engine's cursor, to read a query's result."""
        raise NotImplementedError

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        for row in rows:
            self.execute(sql, row)

    def fetchall(self, sql: str, parameters: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.execute(sql, parameters).fetchall()]

    def fetchone(self, sql: str, parameters: Sequence[Any] | None = None) -> tuple[Any, ...] | None:
        row = self.execute(sql, parameters).fetchone()
        return tuple(row) if row is not None else None

    def cursor(self) -> EngineAdapter:
        """An adapter on a new cursor of the same database, for a worker thread."""
        raise NotImplementedError

    def interrupt(self) -> None:
        """Stop the statement running on this cursor (on Ctrl-C)."""

    def close(self) -> None:
        self.connection.close()

    # -- transactions ------------------------------------------------------------

    def begin(self) -> None:
        self.execute("begin transaction")

    def commit(self) -> None:
        self.execute("commit")

    def rollback(self) -> None:
        self.execute("rollback")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Run the block in one transaction: committed when it ends, rolled
        back when it raises or calls `rollback()` on what it was given. On an
        engine without transactions the block simply runs."""
        if not self.supports_transactions:
            yield Transaction(active=False)
            return
        self.begin()
        handle = Transaction()
        try:
            yield handle
            if handle.rolled_back:
                self.rollback()
            else:
                self.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                self.rollback()
            raise

    def abandon_transaction(self) -> None:
        """Roll back whatever this cursor left open (after a crash), so that
        the next unit on it can begin its own transaction."""
        if self.supports_transactions:
            with contextlib.suppress(Exception):
                self.rollback()

    # -- the catalog ---------------------------------------------------------------

    def relations(
        self, schemas: Iterable[str] | None = None
    ) -> dict[tuple[str, str], RelationKind]:
        """`{(schema, name): kind}` of the relations that exist (in `schemas`,
        or all), names lowercased."""
        raise NotImplementedError

    def relation_kind(self, relation: Relation) -> RelationKind | None:
        """What `relation` is now (as this cursor's transaction sees it), or None."""
        raise NotImplementedError

    def catalog_columns(
        self, schemas: Iterable[str] | None = None
    ) -> dict[tuple[str, str], list[tuple[str, str]]]:
        """`{(schema, name): [(column, type), ...]}` of every relation (in
        `schemas`, or all), in column order; names as the catalog stores them."""
        raise NotImplementedError

    def columns(self, relation: Relation) -> list[tuple[str, str]]:
        """`[(column, type), ...]` of `relation` in order (empty when it does not exist)."""
        key = (relation.schema.lower(), relation.identifier.lower())
        for (schema, name), columns in self.catalog_columns([relation.schema]).items():
            if (schema.lower(), name.lower()) == key:
                return columns
        return []

    # -- DDL ---------------------------------------------------------------------------

    def create_schema(self, name: str) -> None:
        """Create the schema unless it exists."""
        self.execute(f"create schema if not exists {quote_identifier(name)}")

    def create_table(
        self, relation: Relation, columns: Mapping[str, str], *, if_not_exists: bool = True
    ) -> None:
        """An empty table of `columns` (`{name: SQL type}`)."""
        body = ", ".join(f"{quote_identifier(n)} {t}" for n, t in columns.items())
        exists = "if not exists " if if_not_exists else ""
        self.execute(f"create table {exists}{relation} ({body})")

    def add_column(self, relation: Relation, name: str, sql_type: str) -> None:
        """Add a column unless the table has it."""
        if name.lower() not in {c.lower() for c, _ in self.columns(relation)}:
            self.execute(f"alter table {relation} add column {quote_identifier(name)} {sql_type}")

    def create_view(self, relation: Relation, select: str) -> None:
        """(Re)create `relation` as a view of `select` (dropping a table of that name)."""
        self._drop_other_kind(relation, RelationKind.VIEW)
        self.execute(f"create or replace view {relation} as\n{strip_statement(select)}\n")

    def create_table_as(self, relation: Relation, select: str, *, replace: bool = True) -> int:
        """(Re)create `relation` as a table of `select`'s rows (dropping a view
        of that name); the number of rows written."""
        if replace:
            self._drop_other_kind(relation, RelationKind.TABLE)
        verb = "create or replace table" if replace else "create table"
        self.execute(f"{verb} {relation} as\n{strip_statement(select)}\n")
        return self.row_count(relation)

    def insert_by_name(self, relation: Relation, select: str) -> int:
        """Append `select`'s rows, matching columns by name; the rows written."""
        raise NotImplementedError

    def delete_insert(
        self,
        relation: Relation,
        select: str,
        unique_key: Sequence[str],
        valid_keys: str | None = None,
    ) -> int:
        """Replace the rows whose `unique_key` appears in `select`'s rows, and
        drop the rows whose key is not in `valid_keys` (a relation with the key
        columns); NULL keys match NULL keys. The rows inserted."""
        raise NotImplementedError

    def drop_relation(
        self, relation: Relation, kind: RelationKind | None = None, *, if_exists: bool = True
    ) -> None:
        """Drop `relation` (of `kind`, else whatever it is now)."""
        kind = kind or self.relation_kind(relation)
        if kind is None:
            return
        exists = "if exists " if if_exists else ""
        self.execute(f"drop {kind.value} {exists}{relation}")

    def rename_relation(self, relation: Relation, new_name: str) -> None:
        """Rename `relation` to `new_name` in its schema."""
        kind = self.relation_kind(relation) or RelationKind.TABLE
        self.execute(f"alter {kind.value} {relation} rename to {quote_identifier(new_name)}")

    # -- files ----------------------------------------------------------------------------

    def write_parquet(self, select: str, path: str) -> None:
        """Write `select`'s rows to a Parquet file (outside any transaction's reach)."""
        raise NotImplementedError

    def parquet_select(self, path: str) -> str:
        """A query that reads a Parquet file."""
        raise NotImplementedError

    def csv_select(self, path: str, column_types: Mapping[str, str]) -> str:
        """A query that reads a CSV file with a header row (`column_types` by name)."""
        raise NotImplementedError

    # -- helpers ----------------------------------------------------------------------

    def row_count(self, relation: Relation) -> int:
        row = self.fetchone(f"select count(*) from {relation}")
        return int(row[0]) if row else 0

    def _drop_other_kind(self, relation: Relation, kind: RelationKind) -> None:
        """Drop `relation` when it exists as the other kind (a view that becomes
        a table, or the reverse): `create or replace` only replaces the same kind."""
        existing = self.relation_kind(relation)
        if existing is not None and existing != kind:
            self.drop_relation(relation, existing, if_exists=False)
