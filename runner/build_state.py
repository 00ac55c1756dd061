"""What the warehouse remembers between builds, for incremental work.

`_kpi.node_state` holds, per relation the runner built and per passed test,
the newest raw load whose rows it holds ("seen"; `last_seen_load_id()` in a
model reads it), a digest of the definitions it was built from ("logic"), and
when it was last rebuilt in full. The
loader's `_kpi.table_changes` says, per raw table and load, how many rows
were inserted, updated and deleted. An incremental model can only add and
replace rows, so when a raw table upstream of it lost rows since its last
build, it is rebuilt in full instead.

What a node has seen is never more than what its inputs held when it ran: a
raw table holds every load; a view sees what its inputs see; a table or an
incremental model holds what it had seen when it was last built. So a
partial build (`-s kpi_sales_effort` while `int_activities_aggregated` is not
rebuilt) records the older load of the stale input, and the next build folds
in the rows it missed.

The same holds for definitions: what matters is what the warehouse holds,
not what the project says now. A view is its own SQL over whatever its
inputs hold; a table, an incremental model or a seed holds rows made from
its own definition and the definitions upstream as they were when it was
built. `versions_after_run` follows that through the graph, so an
incremental model is rebuilt in full as soon as anything it was built from
was built from other definitions, even when a partial build left a stale
view in between for a while.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from runner.caches import content_key
from runner.graph import Graph
from runner.nodes import Node, Relation, SourceTable, quote_identifier
from runner.warehouse import META_SCHEMA

if TYPE_CHECKING:
    import duckdb

NODE_STATE = Relation(META_SCHEMA, "node_state")
TABLE_CHANGES = Relation(META_SCHEMA, "table_changes")


# Materializations whose relation holds rows as of its last build.
BUILT_AS_OF_LAST_BUILD = frozenset({"table", "incremental"})
# Materializations the runner creates a relation for (and records in node_state).
RELATIONS = frozenset({"view", "table", "incremental", "seed"})


@dataclass(frozen=True)
class NodeState:
    """What `_kpi.node_state` remembers of one node."""

    load_id: int  # the newest raw load whose rows it holds (a test: checked)
    logic: str  # a view: its own definition; else what its rows were built from
    full_load_id: int  # the load it was last rebuilt in full at
    built_at: datetime | None  # when it was last built (a test: last passed)
    full_built_at: datetime | None  # when it was last rebuilt in full


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"create schema if not exists {quote_identifier(META_SCHEMA)}")
    con.execute(
        f"create table if not exists {NODE_STATE} (unique_id varchar, load_id bigint, "
        "logic varchar, full_load_id bigint, built_at timestamp, full_built_at timestamp)"
    )
    con.execute(f"alter table {NODE_STATE} add column if not exists full_built_at timestamp")
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


def read_state(con: duckdb.DuckDBPyConnection) -> dict[str, NodeState]:
    """Every node's remembered state (empty before the first incremental build)."""
    import duckdb

    try:
        rows = con.execute(
            f"select unique_id, load_id, logic, full_load_id, built_at, full_built_at "
            f"from {NODE_STATE}"
        ).fetchall()
    except (duckdb.CatalogException, duckdb.BinderException):
        return {}
    return {
        uid: NodeState(int(load or 0), str(logic or ""), int(full or 0), built, full_built)
        for uid, load, logic, full, built, full_built in rows
    }


def seen_after_run(
    nodes: Mapping[str, Node],
    graph: Graph,
    building: Collection[str],
    state: Mapping[str, NodeState],
    current_load: int,
) -> dict[str, int]:
    """The load each node will have seen once this run built `building`.

    A raw source holds `current_load`; a seed constrains nothing; a node built
    in this run (or a view, which reads its inputs live) sees the oldest of its
    parents; a table or incremental model not built now keeps what it saw at
    its last build (0 when unknown, which only makes the next run redo more).
    """
    seen: dict[str, int] = {}
    for uid in graph.topological_order():
        node = nodes.get(uid)
        if node is None:
            seen[uid] = current_load
            continue
        if node.is_seed:
            seen[uid] = current_load
            continue
        kept = node.config.materialized in BUILT_AS_OF_LAST_BUILD and not node.is_test
        if kept and uid not in building:
            remembered = state.get(uid)
            seen[uid] = remembered.load_id if remembered else 0
            continue
        seen[uid] = min((seen[p] for p in node.depends_on if p in seen), default=current_load)
    return seen


def versions_after_run(
    nodes: Mapping[str, Node],
    graph: Graph,
    building: Collection[str],
    state: Mapping[str, NodeState],
    definition: Mapping[str, str],
) -> tuple[dict[str, str], dict[str, str]]:
    """(version, logic to record) of every relation, once this run built
    `building`.

    `definition` is each model's and seed's own definition digest now. A
    node's version is a digest of the definitions its rows come from, as the
    warehouse will hold them: a view (or an ephemeral model, inlined where it
    is used) is its definition over its parents' versions; a table,
    incremental model or seed built now is its definition over its parents'
    versions, one not built now keeps the version it was built with. What is
    recorded for a view is its own definition (its rows are always live).
    """
    versions: dict[str, str] = {}
    record: dict[str, str] = {}
    for uid in graph.topological_order():
        node = nodes.get(uid)
        if node is None:
            versions[uid] = "source"
            continue
        if node.is_test:
            continue
        parents = [(p, versions.get(p, "")) for p in sorted(node.depends_on)]
        built_now = uid in building or node.config.materialized == "ephemeral"
        remembered = state.get(uid)
        if node.config.materialized == "view" or node.config.materialized == "ephemeral":
            own = definition[uid] if built_now else (remembered.logic if remembered else "?")
            versions[uid] = content_key(own, parents)
            if uid in building:
                record[uid] = definition[uid]
        elif built_now:
            versions[uid] = record[uid] = content_key(definition[uid], parents)
        else:
            versions[uid] = remembered.logic if remembered else "?"
    return versions, record


def full_rebuilds(
    con: duckdb.DuckDBPyConnection,
    nodes: Mapping[str, Node],
    sources: Mapping[str, SourceTable],
    logic: Mapping[str, str],
    graph: Graph,
) -> dict[str, str]:
    """Incremental models that must rebuild in full this run, with the reason.

    `logic` maps each incremental model to its version after this run (see
    `versions_after_run`). A model rebuilds in full when that differs from
    the version it was last built with, when a raw table upstream lost rows
    after the load it last saw, when one of its `append_only` sources had rows updated, or when an
    incremental model upstream is, or was since, rebuilt in full (a full
    rebuild may change rows without giving them a newer `_load_id`).
    """
    if not logic:
        return {}
    state = read_state(con)
    changes = con.execute(
        f"select relation, max(load_id) filter (where deleted_rows > 0), "
        f"max(load_id) filter (where updated_rows > 0) from {TABLE_CHANGES} group by 1"
    ).fetchall()
    last_delete = {r.lower(): d for r, d, _ in changes if d is not None}
    last_update = {r.lower(): u for r, _, u in changes if u is not None}
    reasons: dict[str, str] = {}
    for uid in [u for u in graph.topological_order() if u in logic]:
        digest = logic[uid]
        if uid not in state:
            continue  # never built incrementally: is_incremental() is false anyway
        watermark, built_logic = state[uid].load_id, state[uid].logic
        rebuilt = [
            a
            for a in sorted(graph.ancestors(uid))
            if a in nodes
            and nodes[a].config.materialized == "incremental"
            and (a in reasons or rebuilt_since(state.get(a), state[uid].built_at))
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


def rebuilt_since(ancestor: NodeState | None, built_at: datetime | None) -> bool:
    """Whether `ancestor` was rebuilt in full after `built_at` (a full rebuild
    may change rows without giving them a newer `_load_id`)."""
    if ancestor is None or ancestor.full_built_at is None:
        return False
    return built_at is None or ancestor.full_built_at > built_at


def record_build(
    cur: duckdb.DuckDBPyConnection, unique_id: str, load_id: int, logic: str, full: bool
) -> None:
    """Remember, inside the build's transaction, the load a node has now seen,
    and (`full`) that it was rebuilt in full now."""
    row = cur.execute(
        f"delete from {NODE_STATE} where unique_id = ? returning full_load_id, full_built_at",
        [unique_id],
    ).fetchone()
    insert = f"insert into {NODE_STATE} values (?, ?, ?, ?, now()::timestamp, "
    if full or row is None or row[1] is None:
        cur.execute(insert + "now()::timestamp)", [unique_id, load_id, logic, load_id])
    else:
        cur.execute(insert + "?)", [unique_id, load_id, logic, row[0], row[1]])


def record_passes(
    con: duckdb.DuckDBPyConnection, passed: Mapping[str, str], seen: Mapping[str, int]
) -> None:
    """Remember the tests that passed, with their lineage digest and the load
    their rows were checked up to, in one transaction at the end of a run."""
    if not passed:
        return
    ids = sorted(passed)
    con.execute("begin transaction")
    con.execute(f"delete from {NODE_STATE} where unique_id in (select unnest(?))", [ids])
    # one statement for all rows: executemany would run one insert per row
    con.execute(
        f"insert into {NODE_STATE} select unnest(?), unnest(?), unnest(?), 0, "
        "now()::timestamp, null",
        [ids, [seen[uid] for uid in ids], [passed[uid] for uid in ids]],
    )
    con.execute("commit")
