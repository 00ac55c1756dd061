"""What each materialization does, in terms of the engine adapter.

Every function here runs inside the caller's transaction (on an engine that
has them), so a failure leaves the previous version of the relation exactly
as it was. They return the number of rows written, or None for a view. The
statements themselves are the adapter's (`runner/engines/`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from runner.engines.base import RelationKind, strip_statement
from runner.nodes import Relation

if TYPE_CHECKING:
    from runner.engines.base import EngineAdapter

__all__ = [
    "append_rows",
    "build_table",
    "build_view",
    "delete_insert",
    "existing_kind",
    "load_csv_table",
    "strip_statement",
]


def existing_kind(adapter: EngineAdapter, relation: Relation) -> RelationKind | None:
    """What `relation` is now (as this transaction sees it), or None."""
    return adapter.relation_kind(relation)


def build_view(adapter: EngineAdapter, relation: Relation, sql: str) -> None:
    adapter.create_view(relation, sql)


def build_table(adapter: EngineAdapter, relation: Relation, sql: str) -> int:
    return adapter.create_table_as(relation, sql)


def append_rows(adapter: EngineAdapter, relation: Relation, sql: str) -> int:
    return adapter.insert_by_name(relation, sql)


def delete_insert(
    adapter: EngineAdapter,
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
    return adapter.delete_insert(relation, sql, unique_key, valid_keys)


def load_csv_table(
    adapter: EngineAdapter,
    relation: Relation,
    csv_path: Path,
    column_types: Mapping[str, str],
) -> int:
    """(Re)create `relation` from a CSV file with a header row."""
    return build_table(adapter, relation, adapter.csv_select(str(csv_path), column_types))
