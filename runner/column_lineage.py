"""Column-level lineage: which columns of which tables each output column of a
query is computed from, and, across a project, down to the raw columns.

A query is qualified with sqlglot (`optimizer.qualify`: every column gets its
table, `select *` is expanded from the schema) and its scopes are walked: a
column read from a CTE or a derived table is followed into it, a column of a
union into every branch (by position, or by name for DuckDB's `union by
name`), a scalar subquery into its select. Window specifications count (a
running total comes from what it sums and what it is ordered by); filters
and join conditions do not (they choose rows, they make no value), except
for a `count(*)`, which is made of nothing but the rows: it comes from the
`where` and `having` columns of its query and of the queries it reads.

    >>> schema = {"raw": {"orders": {"id": "int", "amount": "double"}}}
    >>> sql = "with o as (select * from raw.orders) select id, amount * 2 as twice from o"
    >>> sorted(query_lineage(sql, schema)["twice"])
    [('raw.orders', 'amount')]

Across models, `project_lineage` turns each model's lineage into edges
between nodes, and `trace` follows them down to the sources.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Schema = Mapping[str, Mapping[str, Mapping[str, str]]]  # schema -> table -> column -> type
ColumnRef = tuple[str, str]  # (table or node, column)


class LineageError(Exception):
    """A query that sqlglot cannot qualify or walk."""


def query_lineage(sql: str, schema: Schema, dialect: str = "duckdb") -> dict[str, set[ColumnRef]]:
    """`{output column: {("schema.table", column), ...}}` for one query."""
    import sqlglot
    from sqlglot.errors import SqlglotError
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.optimizer.scope import build_scope

    try:
        expression = sqlglot.parse_one(sql, read=dialect)
        expression = qualify(
            expression,
            schema=_plain(schema),
            dialect=dialect,
            validate_qualify_columns=False,
            identify=False,
            quote_identifiers=False,
        )
        root = build_scope(expression)
    except (SqlglotError, ValueError, KeyError) as exc:
        raise LineageError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
    if root is None:
        raise LineageError("not a query")
    walker = _Walker()
    return {name: walker.column(root, name) for name in walker.outputs(root)}


def _plain(schema: Schema) -> dict[str, object]:
    """sqlglot wants lower-case names for unquoted identifiers."""
    return {
        s.lower(): {
            t.lower(): {c.lower(): ty for c, ty in cols.items()} for t, cols in tables.items()
        }
        for s, tables in schema.items()
    }


@dataclass
class _Walker:
    """Follows columns through the scopes of one query, remembering answers."""

    memo: dict[tuple[int, str], set[ColumnRef]] = field(default_factory=dict)
    rows_memo: dict[int, set[ColumnRef]] = field(default_factory=dict)

    def outputs(self, scope: Any) -> list[str]:
        from sqlglot import exp

        expression = scope.expression
        if isinstance(expression, exp.SetOperation):
            left, right = scope.set_operation_scopes[0], scope.set_operation_scopes[-1]
            names = self.outputs(left)
            if expression.args.get("by_name"):
                names += [n for n in self.outputs(right) if n not in names]
            return names
        if isinstance(expression, exp.Select):
            return [s.alias_or_name for s in expression.selects if not isinstance(s, exp.Star)]
        return []

    def column(self, scope: Any, name: str) -> set[ColumnRef]:
        key = (id(scope), name)
        if key not in self.memo:
            self.memo[key] = set()  # a recursive CTE ends here
            self.memo[key] = self._column(scope, name)
        return self.memo[key]

    def _column(self, scope: Any, name: str) -> set[ColumnRef]:
        from sqlglot import exp

        expression = scope.expression
        if isinstance(expression, exp.SetOperation):
            return self._set_operation(scope, name, bool(expression.args.get("by_name")))
        if not isinstance(expression, exp.Select):
            return set()
        for projection in expression.selects:
            if not isinstance(projection, exp.Star) and projection.alias_or_name == name:
                return self._expression(scope, projection)
        if any(isinstance(s, exp.Star) or s.is_star for s in expression.selects):
            # `select *` from a table the schema does not know: pass the name through
            found: set[ColumnRef] = set()
            for source in scope.sources.values():
                found |= self._from_source(source, name)
            return found
        return set()

    def _set_operation(self, scope: Any, name: str, by_name: bool) -> set[ColumnRef]:
        found: set[ColumnRef] = set()
        branches = scope.set_operation_scopes
        if by_name:
            for branch in branches:
                if name in self.outputs(branch):
                    found |= self.column(branch, name)
            return found
        names = self.outputs(branches[0])
        if name not in names:
            return found
        index = names.index(name)
        for branch in branches:
            branch_names = self.outputs(branch)
            if index < len(branch_names):
                found |= self.column(branch, branch_names[index])
        return found

    def _expression(self, scope: Any, projection: Any) -> set[ColumnRef]:
        from sqlglot import exp

        found: set[ColumnRef] = set()
        subqueries = {id(s.expression): s for s in scope.subquery_scopes}
        for node in projection.walk(prune=lambda n: isinstance(n, exp.Query)):
            if isinstance(node, exp.Query) and node is not projection:
                child = subqueries.get(id(node)) or subqueries.get(id(node.this))
                if child is not None:
                    for output in self.outputs(child):
                        found |= self.column(child, output)
            elif isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
                found |= self._read(scope, node.table, node.name)
            elif isinstance(node, exp.Count) and isinstance(node.this, exp.Star):
                found |= self.rows(scope)
            elif isinstance(node, exp.Window) and isinstance(
                node.args.get("alias"), exp.Identifier
            ):
                found |= self._named_window(scope, node.args["alias"].name)
        return found

    def _named_window(self, scope: Any, name: str) -> set[ColumnRef]:
        """`over w` with `window w as (partition by a order by b)`: a and b."""
        from sqlglot import exp

        found: set[ColumnRef] = set()
        for window in scope.expression.args.get("windows") or ():
            if window.name == name:
                for column in window.find_all(exp.Column):
                    found |= self._read(scope, column.table, column.name)
        return found

    def rows(self, scope: Any) -> set[ColumnRef]:
        """The columns that decide which rows a scope yields: its `where` and
        `having`, and those of every query it reads."""
        from sqlglot import exp

        key = id(scope)
        if key in self.rows_memo:
            return self.rows_memo[key]
        self.rows_memo[key] = found = set()
        for branch in scope.set_operation_scopes:
            found |= self.rows(branch)
        for clause in ("where", "having"):
            condition = scope.expression.args.get(clause)
            if condition is None:
                continue
            for column in condition.find_all(exp.Column):
                found |= self._read(scope, column.table, column.name)
        for source in scope.sources.values():
            if not isinstance(source, exp.Table) and hasattr(source, "expression"):
                found |= self.rows(source)
        return found

    def _read(self, scope: Any, table: str, name: str) -> set[ColumnRef]:
        if not table:
            if len(scope.sources) != 1:
                return set()  # a lateral alias or an unknown column
            table = next(iter(scope.sources))
        source = scope.sources.get(table)
        return self._from_source(source, name) if source is not None else set()

    def _from_source(self, source: Any, name: str) -> set[ColumnRef]:
        from sqlglot import exp

        if isinstance(source, exp.Table):
            if not source.name:
                return set()  # a table function
            relation = f"{source.db}.{source.name}" if source.db else source.name
            return {(relation.lower(), name.lower())}
        if hasattr(source, "expression"):  # a scope: CTE, derived table, union
            return self.column(source, name)
        return set()


# -- across a project --------------------------------------------------------------


@dataclass(frozen=True)
class ProjectLineage:
    """Direct column edges between nodes: `edges[node][column]` lists the
    `(node, column)` pairs it is computed from; `errors[node]` says why a
    model has no lineage."""

    edges: dict[str, dict[str, list[ColumnRef]]]
    errors: dict[str, str]
    cache: dict[str, Any] = field(default_factory=dict)


def project_lineage(
    queries: Mapping[str, str],
    relations: Mapping[str, str],
    schema: Schema,
    dialect: str = "duckdb",
    cache: dict[str, Any] | None = None,
) -> ProjectLineage:
    """Lineage of every query in `queries` (node id -> compiled SQL).

    `relations` maps `schema.table` (lower case) to the node or source id
    that builds it. `cache` (key -> lineage, from an earlier answer's
    `cache`) skips queries seen before with the same SQL and schema.
    """
    import hashlib
    import json

    schema_key = hashlib.sha256(json.dumps(_plain(schema), sort_keys=True).encode()).hexdigest()
    edges: dict[str, dict[str, list[ColumnRef]]] = {}
    errors: dict[str, str] = {}
    used: dict[str, Any] = {}
    for uid, sql in sorted(queries.items()):
        key = hashlib.sha256(f"{schema_key}\n{dialect}\n{sql}".encode()).hexdigest()
        if cache is not None and key in cache:
            lineage = {c: {(r[0], r[1]) for r in refs} for c, refs in cache[key].items()}
        else:
            try:
                lineage = query_lineage(sql, schema, dialect)
            except LineageError as exc:
                errors[uid] = str(exc)
                continue
        used[key] = {c: sorted(refs) for c, refs in lineage.items()}
        edges[uid] = {
            column: sorted((relations.get(t, t), c) for t, c in refs)
            for column, refs in lineage.items()
        }
    return ProjectLineage(edges, errors, used)


def trace(
    edges: Mapping[str, Mapping[str, Iterable[ColumnRef]]], node: str, column: str
) -> dict[str, list[str]]:
    """Every `(node, column)` upstream of one column, grouped by node; the
    nodes with no edges of their own (sources, seeds) are where it ends.

    >>> edges = {"m": {"x": [("s", "a"), ("i", "y")]}, "i": {"y": [("s", "b")]}}
    >>> trace(edges, "m", "x")
    {'s': ['a', 'b'], 'i': ['y']}
    """
    found: dict[str, set[str]] = {}
    queue = deque([(node, column)])
    seen = {(node, column)}
    while queue:
        current = queue.popleft()
        for parent in edges.get(current[0], {}).get(current[1], ()):
            parent = (parent[0], parent[1])
            if parent in seen:
                continue
            seen.add(parent)
            found.setdefault(parent[0], set()).add(parent[1])
            queue.append(parent)
    return {name: sorted(columns) for name, columns in found.items()}
