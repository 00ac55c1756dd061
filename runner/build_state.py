"""What the warehouse remembers between builds, for incremental work.

`_kpi.node_state` holds, per incremental model, the newest raw load it had
seen when it was last built (`last_seen_load_id()` in a model reads it). The
loader's `_kpi.table_changes` says, per raw table and load, how many rows
were inserted, updated and deleted. An incremental model can only add and
replace rows, so when a raw table upstream of it lost rows since its last
build, it is rebuilt in full instead.
"""

from __future__ import annotations

from collections.abc import Mapping
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
        f"create table if not exists {NODE_STATE} (unique_id varchar, load_id bigint, "
        "logic varchar, full_load_id bigint, built_at timestamp)"
    )
    con.execute(
        f"create table if not exists {TABLE_CHANGES} (load_id bigint, relation varchar, "
        "action varchar, inserted_rows bigint, updated_rows bigint, deleted_rows bigint, "
        "loaded_at timestamp)"
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
    logic: Mapping[str, str],
) -> dict[str, str]:
    """Incremental models that must rebuild in full this run, with the reason.

    `logic` maps each incremental model to a digest of its code, config, vars
    and macros. A model rebuilds in full when that changed since its last
    build, when a raw table upstream lost rows after the load it last saw,
    when one of its `append_only` sources had rows updated, or when an
    incremental model upstream is, or was since, rebuilt in full (a full
    rebuild may change rows without giving them a newer `_load_id`).
    """
    if not logic:
        return {}
    state = {
        uid: (int(load_id or 0), digest, int(full_load_id or 0))
        for uid, load_id, digest, full_load_id in con.execute(
            f"select unique_id, load_id, logic, full_load_id from {NODE_STATE}"
        ).fetchall()
    }
    changes = con.execute(
        f"select relation, max(load_id) filter (where deleted_rows > 0), "
        f"max(load_id) filter (where updated_rows > 0) from {TABLE_CHANGES} group by 1"
    ).fetchall()
    last_delete = {r.lower(): d for r, d, _ in changes if d is not None}
    last_update = {r.lower(): u for r, _, u in changes if u is not None}
    graph = Graph({**{uid: n.depends_on for uid, n in nodes.items()}, **{s: () for s in sources}})
    reasons: dict[str, str] = {}
    for uid in [u for u in graph.topological_order() if u in logic]:
        digest = logic[uid]
        if uid not in state:
            continue  # never built incrementally: is_incremental() is false anyway
        watermark, built_logic, _ = state[uid]
        rebuilt = [
            a
            for a in sorted(graph.ancestors(uid))
            if a in nodes
            and nodes[a].config.materialized == "incremental"
            and (a in reasons or (a in state and state[a][2] > watermark))
        ]
        if rebuilt:
            reasons[uid] = f"{nodes[rebuilt[0]].name} upstream is rebuilt in full"
            continue
        if built_logic != digest:
            reasons[uid] = "its SQL, config or inputs' definitions changed since its last build"
            continue
        append_only = {f"source.{name}" for name in nodes[uid].config.append_only}
        for ancestor in sorted(graph.ancestors(uid)):
            source = sources.get(ancestor)
            if source is None:
                continue
            relation = source.relation.display.lower()
            if last_delete.get(relation, 0) > watermark:
                reasons[uid] = f"{source.relation.display} lost rows since its last build"
                break
            if ancestor in append_only and last_update.get(relation, 0) > watermark:
                reasons[uid] = (
                    f"{source.relation.display} had rows updated since its last build "
                    "(the model is configured append_only on it)"
                )
                break
    return reasons


def record_build(
    cur: duckdb.DuckDBPyConnection, unique_id: str, load_id: int, logic: str, full: bool
) -> None:
    """Remember, inside the build's transaction, what a node has now seen, and
    (`full`) that it was rebuilt in full at this load."""
    row = cur.execute(
        f"select max(full_load_id) from {NODE_STATE} where unique_id = ?", [unique_id]
    ).fetchone()
    full_load_id = load_id if full or not row or row[0] is None else int(row[0])
    cur.execute(f"delete from {NODE_STATE} where unique_id = ?", [unique_id])
    cur.execute(
        f"insert into {NODE_STATE} values (?, ?, ?, ?, now()::timestamp)",
        [unique_id, load_id, logic, full_load_id],
    )


def record_passes(con: duckdb.DuckDBPyConnection, passed: Mapping[str, str], load_id: int) -> None:
    """Remember the tests that passed at `load_id`, with their lineage digest,
    in one transaction at the end of a run."""
    if not passed:
        return
    ids = sorted(passed)
    con.execute("begin transaction")
    con.execute(f"delete from {NODE_STATE} where unique_id in (select unnest(?))", [ids])
    con.executemany(
        f"insert into {NODE_STATE} values (?, ?, ?, 0, now()::timestamp)",
        [[uid, load_id, passed[uid]] for uid in ids],
    )
    con.execute("commit")
