"""What the warehouse remembers between builds, for incremental work.

`_kpi.node_state` holds, per incremental model, the newest raw load it had
seen when it was last built (`last_seen_load_id()` in a model reads it). The
loader's `_kpi.table_changes` says, per raw table and load, how many rows
changed and how many disappeared. An incremental model can only add and
replace rows, so when a raw table upstream of it lost rows since its last
build, it is rebuilt in full instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from runner.graph import Graph
from runner.nodes import Node, Relation, SourceTable, quote_identifier
from runner.warehouse import META_SCHEMA

if TYPE_CHECKING:
    import duckdb

NODE_STATE = Relation(META_SCHEMA, "node_state")
TABLE_CHANGES = Relation(META_SCHEMA, "table_changes")


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"create schema if not exists {quote_identifier(META_SCHEMA)}")
    con.execute(
        f"create table if not exists {NODE_STATE} "
        "(unique_id varchar, load_id bigint, built_at timestamp)"
    )
    con.execute(
        f"create table if not exists {TABLE_CHANGES} (load_id bigint, relation varchar, "
        "action varchar, changed_rows bigint, deleted_rows bigint, loaded_at timestamp)"
    )


def current_load_id(con: duckdb.DuckDBPyConnection) -> int:
    """The newest raw load in the warehouse (0 when nothing was loaded)."""
    import duckdb

    try:
        row = con.execute(f"select coalesce(max(load_id), 0) from {TABLE_CHANGES}").fetchone()
    except duckdb.CatalogException:
        return 0
    return int(row[0]) if row else 0


def full_rebuilds(
    con: duckdb.DuckDBPyConnection,
    nodes: Mapping[str, Node],
    sources: Mapping[str, SourceTable],
    candidates: Iterable[str],
) -> dict[str, str]:
    """Incremental models that must rebuild in full, with the reason: a raw
    table upstream lost rows after the load the model last saw."""
    candidates = [uid for uid in candidates if nodes[uid].config.materialized == "incremental"]
    if not candidates:
        return {}
    seen = dict(
        con.execute(f"select unique_id, max(load_id) from {NODE_STATE} group by 1").fetchall()
    )
    losses = con.execute(
        f"select relation, max(load_id) from {TABLE_CHANGES} where deleted_rows > 0 group by 1"
    ).fetchall()
    last_loss = {relation.lower(): int(load_id) for relation, load_id in losses}
    if not last_loss:
        return {}
    graph = Graph({**{uid: n.depends_on for uid, n in nodes.items()}, **{s: () for s in sources}})
    reasons = {}
    for uid in candidates:
        watermark = int(seen.get(uid) or 0)
        for ancestor in sorted(graph.ancestors(uid)):
            source = sources.get(ancestor)
            if source is None:
                continue
            loss = last_loss.get(source.relation.display.lower())
            if loss is not None and loss > watermark:
                reasons[uid] = f"{source.relation.display} lost rows in load {loss}"
                break
    return reasons


def record_build(cur: duckdb.DuckDBPyConnection, unique_id: str, load_id: int) -> None:
    """Remember, inside the build's transaction, the load a node has now seen."""
    cur.execute(f"delete from {NODE_STATE} where unique_id = ?", [unique_id])
    cur.execute(f"insert into {NODE_STATE} values (?, ?, now()::timestamp)", [unique_id, load_id])
