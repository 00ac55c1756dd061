"""Checks on compiled SQL before anything runs.

`syntax_error` asks DuckDB's own parser (the authority on what DuckDB runs)
and locates an error by line and column of the compiled SQL.
`undeclared_reads` asks sqlglot which tables a query reads, so that a model
reading a warehouse table without `ref`/`source` gets a warning. sqlglot is
imported only when a query is not in the on-disk cache of earlier answers.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

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
            offset = int(info["position"])
            before = sql[:offset]
            return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1
    except Exception:  # noqa: BLE001 - fall back to the message
        pass
    match = _LINE_CARET.search(message)
    if match:
        return int(match.group(1)), len(match.group(3)) - len(f"LINE {match.group(1)}: ") + 1
    return 1, 1


def position_to_line_column(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


class ReadsCache:
    """Which tables each query reads, keyed by the query's hash, kept on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.changed = False
        try:
            self.entries: dict[str, list[list[str]]] = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            self.entries = {}

    def tables_read(self, sql: str) -> list[tuple[str, str]] | None:
        """`[(schema, table)]` read by `sql` (schema '' if unqualified)."""
        key = hashlib.sha256(sql.encode("utf-8")).hexdigest()
        if key not in self.entries:
            self.entries[key] = [list(t) for t in _tables_read(sql)] if _parses(sql) else []
            self.changed = True
        return [(s, t) for s, t in self.entries[key]]

    def save(self) -> None:
        if self.changed:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.entries), encoding="utf-8")


def _parses(sql: str) -> bool:
    import sqlglot

    try:
        sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.SqlglotError:
        return False
    return True


def _tables_read(sql: str) -> list[tuple[str, str]]:
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="duckdb")
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
    """Tables in `reads` that are not among the declared relations."""
    known = {(r.schema.lower(), r.identifier.lower()) for r in declared}
    known_names = {name for _, name in known}
    undeclared = []
    for schema, name in reads:
        key = (schema.lower(), name.lower())
        if schema and key in known:
            continue
        if not schema and name.lower() in known_names:
            continue
        undeclared.append(f"{schema}.{name}" if schema else name)
    return undeclared
