"""What the warehouse remembers between builds, for incremental work.

`_kpi.node_state` holds, per relation the runner built and per passed test,
the newest raw load whose rows it holds ("seen"; `last_seen_load_id()` in a
model reads it), a digest of the definitions it was built from ("logic"), and
when it was last rebuilt in full (the tables and their SQL are
`state_tables.py`'s; this module decides what the rows mean). The
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
from datetime import datetime
from typing import TYPE_CHECKING

from runner import state_tables
from runner.caches import content_key
from runner.graph import Graph
from runner.nodes import Node, SourceTable
from runner.state_tables import NodeState

if TYPE_CHECKING:
    from runner.engines.base import EngineAdapter

# Materializations whose relation holds rows as of its last build.
BUILT_AS_OF_LAST_BUILD = frozenset({"table", "incremental"})
# Materializations the runner creates a relation for (and records in node_state).
RELATIONS = frozenset({"view", "table", "incremental", "seed"})


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
    adapter: EngineAdapter,
    nodes: Mapping[str, Node],
    sources: Mapping[str, SourceTable],
    logic: Mapping[str, str],
    graph: Graph,
    state: Mapping[str, NodeState] | None = None,
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
    if state is None:  # `state`: of another warehouse (Spark's), else the adapter's own
        state = state_tables.read_node_states(adapter)
    changes = state_tables.raw_changes(adapter)
    last_delete, last_update = changes.last_delete, changes.last_update
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
