"""The SQL each materialization runs, on a cursor inside a transaction.

Every function here runs inside the caller's transaction, so a failure
leaves the previous version of the relation exactly as it was. They return
the number of rows written, or None for a view.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from runner.nodes import Relation, quote_identifier, quote_literal

if TYPE_CHECKING:
    import duckdb


def strip_statement(sql: str) -> str:
    """The query without trailing whitespace and semicolons."""
    return sql.rstrip().rstrip(";").rstrip()


def existing_kind(cur: duckdb.DuckDBPyConnection, relation: Relation) -> str | None:
    """'BASE TABLE', 'VIEW' or None: what `relation` is now (as this transaction sees it)."""
    row = cur.execute(
        "select table_type from information_schema.tables "
        "where lower(table_schema) = lower(?) and lower(table_name) = lower(?)",
        [relation.schema, relation.identifier],
    ).fetchone()
    return str(row[0]) if row else None


def drop_other_kind(cur: duckdb.DuckDBPyConnection, relation: Relation, kind: str) -> None:
    """Drop `relation` when it exists as the other kind (a view that becomes a table,
    or the reverse): DuckDB's `create or replace` only replaces the same kind."""
    existing = existing_kind(cur, relation)
    if existing is None or existing == kind:
        return
    cur.execute(f"drop {'view' if existing == 'VIEW' else 'table'} {relation}")


def build_view(cur: duckdb.DuckDBPyConnection, relation: Relation, sql: str) -> None:
    drop_other_kind(cur, relation, "VIEW")
    cur.execute(f"create or replace view {relation} as\n{strip_statement(sql)}\n")


def build_table(cur: duckdb.DuckDBPyConnection, relation: Relation, sql: str) -> int:
    drop_other_kind(cur, relation, "BASE TABLE")
    row = cur.execute(f"create or replace table {relation} as\n{strip_statement(sql)}\n").fetchone()
    return int(row[0]) if row else 0


def append_rows(cur: duckdb.DuckDBPyConnection, relation: Relation, sql: str) -> int:
    row = cur.execute(f"insert into {relation} by name\n{strip_statement(sql)}\n").fetchone()
    return int(row[0]) if row else 0


def delete_insert(
    cur: duckdb.DuckDBPyConnection,
    relation: Relation,
    sql: str,
    unique_key: tuple[str, ...],
    valid_keys: str | None = None,
) -> int:
    """Replace the rows whose `unique_key` appears in the new batch, and drop
    the rows whose key is no longer in `valid_keys` (a relation with the key
    columns, e.g. the months of the reporting range, which may shrink).

    NULL keys match NULL keys (`is not distinct from`), so a batch row with a
    NULL team replaces the old row with a NULL team.
    """
    batch = quote_identifier(f"__kpi_batch__{relation.identifier}")
    cur.execute(f"create or replace temp table {batch} as\n{strip_statement(sql)}\n")
    match = " and ".join(
        f"{relation}.{quote_identifier(k)} is not distinct from {batch}.{quote_identifier(k)}"
        for k in unique_key
    )
    keys = ", ".join(quote_identifier(k) for k in unique_key)
    cur.execute(
        f"delete from {relation} where exists ("
        f"select 1 from (select distinct {keys} from {batch}) as {batch} where {match})"
    )
    if valid_keys:
        in_range = " and ".join(
            f"{relation}.{quote_identifier(k)} is not distinct from valid.{quote_identifier(k)}"
            for k in unique_key
        )
        cur.execute(
            f"delete from {relation} where not exists ("
            f"select 1 from {valid_keys} as valid where {in_range})"
        )
    row = cur.execute(f"insert into {relation} by name select * from {batch}").fetchone()
    cur.execute(f"drop table {batch}")
    return int(row[0]) if row else 0


def load_csv_table(
    cur: duckdb.DuckDBPyConnection,
    relation: Relation,
    csv_path: Path,
    column_types: Mapping[str, str],
) -> int:
    """(Re)create `relation` from a CSV file with a header row."""
    options = ["header = true"]
    if column_types:
        types = ", ".join(
            f"{quote_literal(name)}: {quote_literal(kind)}" for name, kind in column_types.items()
        )
        options.append(f"types = {{{types}}}")
    sql = f"select * from read_csv({quote_literal(str(csv_path))}, {', '.join(options)})"
    return build_table(cur, relation, sql)
