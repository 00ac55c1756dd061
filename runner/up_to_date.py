"""Work a build can prove has nothing to do: relations whose inputs have not
changed since they were built, and new-rows tests with no new rows.

The loader records, per load and raw table, how many rows it inserted,
updated and deleted (`_kpi.table_changes`); a load that changed nothing in a
table leaves every row of it with its old `_load_id`. So the newest load
that changed each raw table bounds every `_load_id` in it, and, through the
lineage promise (a row's `_load_id` is the newest load among everything it
was built from), in every relation built from it.

- A table or incremental model is *up to date* when it was built from the
  same definitions as now (its recorded version, which covers every model
  and seed upstream), it had seen every load that changed a raw table
  upstream of it, and no incremental model upstream is or was since rebuilt
  in full: rebuilding it would write the rows it holds. It is kept as it is;
  its tests still run.
- A view is *up to date* when the warehouse holds it as a view created from
  the definition it has now: DuckDB binds a view's SQL to its inputs at every
  read (a column added upstream shows through), so creating it again would
  change nothing. Its tests still run, as for a table.
- A test that checks new rows only (see `incremental_tests`) has *nothing
  new* when no raw table upstream of the tested relation changed after the
  load it last passed at: its query would select no rows, so it passes with
  0 failures without running.
- Any other test is *unchanged* when it last passed with no failing row,
  on the same definitions (its own, and those of everything it reads), and
  no raw table upstream of it changed after the load it passed at: it reads
  the rows it read then, so it passes again without running.

A raw table the loader does not fill (no row in `_kpi.table_changes`) is
never assumed unchanged, and a relation or an unchanged test whose SQL, or
the SQL of a model upstream, reads the clock or a random number (`now()`,
`current_date`, `random()`, ...) is always rebuilt or run: its rows may
change with no new load.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping

from runner.build_state import rebuilt_since
from runner.caches import content_key
from runner.graph import Graph
from runner.nodes import Node, SourceTable
from runner.state_tables import NodeState

KEPT_MATERIALIZATIONS = frozenset({"table", "incremental"})
# SQL whose rows may change while its inputs do not
VOLATILE = re.compile(
    r"\b(now|today|current_date|current_time|current_timestamp|localtime|localtimestamp"
    r"|get_current_time|get_current_timestamp|transaction_timestamp|random|setseed"
    r"|uuid|gen_random_uuid|uuidv4|uuidv7)\b",
    re.IGNORECASE,
)


def raw_changed_after(
    uid: str,
    sources: Mapping[str, SourceTable],
    graph: Graph,
    changes: Mapping[str, int],
    load_id: int,
) -> bool:
    """Whether a raw table `uid` is, or is built from, changed after `load_id`
    (or is one the loader does not fill, so that nothing is known of it)."""
    lineage = {uid, *graph.ancestors(uid)} if uid not in sources else {uid}
    for ancestor in lineage:
        source = sources.get(ancestor)
        if source is None:
            continue
        changed = changes.get(source.relation.display.lower())
        if changed is None or changed > load_id:
            return True
    return False


def inputs_unchanged(
    uid: str,
    since: NodeState,
    nodes: Mapping[str, Node],
    sources: Mapping[str, SourceTable],
    graph: Graph,
    state: Mapping[str, NodeState],
    rebuilds: Collection[str],
    changes: Mapping[str, int],
) -> bool:
    """Whether nothing `uid` reads changed since `since` (its last build or
    pass): every ancestor is known, no incremental model upstream is or was
    since rebuilt in full, and no raw table upstream changed after the load
    `uid` had seen."""
    ancestors = graph.ancestors(uid)
    if any(a not in nodes and a not in sources for a in ancestors):
        return False
    if any(
        a in rebuilds or rebuilt_since(state.get(a), since.built_at)
        for a in ancestors
        if a in nodes and nodes[a].config.materialized == "incremental"
    ):
        return False
    return not raw_changed_after(uid, sources, graph, changes, since.load_id)


def kept_relations(
    nodes: Mapping[str, Node],
    sources: Mapping[str, SourceTable],
    graph: Graph,
    building: Collection[str],
    state: Mapping[str, NodeState],
    versions: Mapping[str, str],
    rebuilds: Collection[str],
    existing_tables: Collection[tuple[str, str]],
    changes: Mapping[str, int],
) -> frozenset[str]:
    """The tables and incremental models of `building` that are up to date.

    `versions` is each relation's version after this run (see
    `build_state.versions_after_run`); `rebuilds` the incremental models
    rebuilt in full this run; `existing_tables` the warehouse's base tables,
    as lowercased (schema, name).
    """
    if not changes:
        return frozenset()
    kept = set()
    for uid in building:
        node = nodes.get(uid)
        if node is None or node.is_test or node.is_seed:
            continue
        if node.config.materialized not in KEPT_MATERIALIZATIONS or uid in rebuilds:
            continue
        relation = node.relation
        if (relation.schema.lower(), relation.identifier.lower()) not in existing_tables:
            continue
        built = state.get(uid)
        if built is None or built.built_at is None or built.logic != versions.get(uid):
            continue
        if inputs_unchanged(uid, built, nodes, sources, graph, state, rebuilds, changes):
            kept.add(uid)
    return frozenset(kept)


def kept_views(
    nodes: Mapping[str, Node],
    building: Collection[str],
    state: Mapping[str, NodeState],
    record: Mapping[str, str],
    views: Collection[tuple[str, str]],
) -> frozenset[str]:
    """The views of `building` that are up to date: the warehouse holds them
    as views (`views`: lowercased (schema, name)) and they were last created
    from the definition they are created from now (`record`, see
    `build_state.versions_after_run`: a view records its own definition)."""
    kept = set()
    for uid in building:
        node = nodes.get(uid)
        if node is None or node.is_test or node.config.materialized != "view":
            continue
        relation = node.relation
        if (relation.schema.lower(), relation.identifier.lower()) not in views:
            continue
        built = state.get(uid)
        if built is not None and built.built_at is not None and built.logic == record.get(uid):
            kept.add(uid)
    return frozenset(kept)


def deterministic(
    uids: frozenset[str],
    nodes: Mapping[str, Node],
    graph: Graph,
    sql_of: Callable[[Node], str],
) -> frozenset[str]:
    """The relations or tests of `uids` whose own compiled SQL (`sql_of`) and
    that of every model upstream read neither the clock nor a random number."""
    volatile: dict[str, bool] = {}

    def reads_clock(uid: str) -> bool:
        if uid not in volatile:
            node = nodes[uid]
            volatile[uid] = not node.is_seed and bool(VOLATILE.search(sql_of(node)))
        return volatile[uid]

    return frozenset(
        uid
        for uid in uids
        if not any(reads_clock(a) for a in sorted({uid, *graph.ancestors(uid)}) if a in nodes)
    )


def test_digest(test: Node, logic: str, versions: Mapping[str, str]) -> str:
    """What a test's result depends on: its own definition (`logic`) and the
    version of every relation it reads."""
    return content_key(logic, [(d, versions.get(d, "source")) for d in sorted(test.depends_on)])


def unchanged_tests(
    tests: Collection[Node],
    nodes: Mapping[str, Node],
    sources: Mapping[str, SourceTable],
    graph: Graph,
    state: Mapping[str, NodeState],
    digests: Mapping[str, str],
    rebuilds: Collection[str],
    changes: Mapping[str, int],
) -> frozenset[str]:
    """The `tests` that last passed with no failing row on their `digests`
    (see `test_digest`; such a pass is what `_kpi.node_state` holds for
    them) with nothing upstream changed since."""
    if not changes:
        return frozenset()
    unchanged = set()
    for test in tests:
        passed = state.get(test.unique_id)
        if passed is None or passed.built_at is None:
            continue
        if passed.logic != digests.get(test.unique_id):
            continue
        if inputs_unchanged(
            test.unique_id, passed, nodes, sources, graph, state, rebuilds, changes
        ):
            unchanged.add(test.unique_id)
    return frozenset(unchanged)
