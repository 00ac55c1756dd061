"""Checks on compiled SQL before anything runs.

`syntax_error` asks DuckDB's own parser (the authority on what DuckDB runs)
and locates an error by line and column of the compiled SQL.
`undeclared_reads` asks sqlglot which tables a query reads, so that a model
reading a warehouse table without `ref`/`source` gets a warning. sqlglot is
imported only when a query is not in the on-disk cache of earlier answers.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner import caches
from runner.state_tables import META_SCHEMA

if TYPE_CHECKING:
    import duckdb

    from runner.engines.base import EngineAdapter

_LINE_CARET = re.compile(r"LINE (\d+): (.*)\n(\s*)\^", re.MULTILINE)
_TABLE_FUNCTIONS = frozenset(
    {"read_csv", "read_parquet", "read_json", "range", "generate_series", "unnest"}
)


def syntax_error(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[str, int, int] | None:
    """`(message, line, column)` of the first syntax error, or None.

    A model must be exactly one statement; that is checked here too.
    """
    import duckdb

    try:
        statements = con.extract_statements(sql)
    except duckdb.ParserException as exc:
        message = str(exc).split("\n", 1)[0].removeprefix("Parser Error: ")
        line, column = _locate(con, sql, str(exc))
        return message, line, column
    if len(statements) != 1:
        return (
            f"expected exactly one SQL statement, found {len(statements)}",
            1,
            1,
        )
    return None


def _locate(con: duckdb.DuckDBPyConnection, sql: str, message: str) -> tuple[int, int]:
    try:
        row = con.execute("select json_serialize_sql(?)", [sql]).fetchone()
        info = json.loads(row[0]) if row else {}
        if "position" in info:
            return position_to_line_column(sql, int(info["position"]))
    except Exception:  # noqa: BLE001 - fall back to the message
        pass
    match = _LINE_CARET.search(message)
    if match:
        return int(match.group(1)), len(match.group(3)) - len(f"LINE {match.group(1)}: ") + 1
    return 1, 1


def position_to_line_column(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


class SqlCache:
    """What is known of each compiled query, keyed by its hash, kept on disk:
    whether DuckDB parsed it, and which tables sqlglot says it reads."""

    FORMAT = 3

    def __init__(self, path: Path) -> None:
        self.path = path
        self.changed = False
        self.parsed: set[str] = set()
        self.reads: dict[str, list[list[str]]] = {}
        self._memory: duckdb.DuckDBPyConnection | None = None
        data = caches.read_json(path, self.FORMAT)
        with contextlib.suppress(KeyError, TypeError):
            if data is not None:
                self.parsed = set(data["parsed"])
                self.reads = dict(data["reads"])

    @staticmethod
    def key(sql: str) -> str:
        return caches.content_key(sql)

    def syntax_error(self, adapter: EngineAdapter | None, sql: str) -> tuple[str, int, int] | None:
        """`syntax_error`, asked of DuckDB only for a query not seen parsing
        before: of the warehouse's connection when it is DuckDB, else of an
        in-memory DuckDB."""
        key = self.key(sql)
        if key in self.parsed:
            return None
        con = adapter.connection if adapter is not None and adapter.dialect == "duckdb" else None
        if con is None:
            if self._memory is None:
                import duckdb

                self._memory = duckdb.connect()
            con = self._memory
        error = syntax_error(con, sql)
        if error is None:
            self.parsed.add(key)
            self.changed = True
        return error

    def tables_read(self, sql: str) -> list[tuple[str, str]]:
        """`[(schema, table)]` read by `sql` (schema '' if unqualified); [] when
        sqlglot cannot parse it (DuckDB, the authority, did)."""
        key = self.key(sql)
        if key not in self.reads:
            self.reads[key] = [list(t) for t in _tables_read(sql)]
            self.changed = True
        return [(s, t) for s, t in self.reads[key]]

    def save(self) -> None:
        if self.changed:
            document = {"format": self.FORMAT, "parsed": sorted(self.parsed), "reads": self.reads}
            caches.write_json(self.path, document)


def _tables_read(sql: str) -> list[tuple[str, str]]:
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.SqlglotError:
        return []
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    found: dict[tuple[str, str], None] = {}
    for table in tree.find_all(exp.Table):
        name = table.name
        if not name or not isinstance(table.this, exp.Identifier):
            continue
        schema = table.db or ""
        if not schema and name.lower() in ctes:
            continue
        if name.lower() in _TABLE_FUNCTIONS:
            continue
        found[(schema, name)] = None
    return list(found)


def undeclared_reads(reads: Iterable[tuple[str, str]], declared: Iterable[Any]) -> list[str]:
    """Tables in `reads` that are not among the declared relations (the
    runner's own state in the `_kpi` schema, which `last_seen_load_id()`
    reads, is not a dependency)."""
    known = {(r.schema.lower(), r.identifier.lower()) for r in declared}
    known_names = {name for _, name in known}
    undeclared = []
    for schema, name in reads:
        key = (schema.lower(), name.lower())
        if schema.lower() == META_SCHEMA or (schema and key in known):
            continue
        if not schema and name.lower() in known_names:
            continue
        undeclared.append(f"{schema}.{name}" if schema else name)
    return undeclared
