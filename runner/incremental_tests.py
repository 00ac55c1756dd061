"""Data tests that check only the rows that changed since they last passed.

A relation that exposes a `_load_id` column promises that it is the newest
raw load among everything the row was built from: staging views pass the raw
column through, incremental models compute it. On such a relation a row that
changed carries a `_load_id` newer than any earlier build, so a test that
passed at load T only needs to look at rows with `_load_id > T`:

- row-local tests (`not_null`, `accepted_values`, `accepted_range`,
  `expression_is_true`) check the new rows;
- `relationships` checks the new child rows, while its parent is a raw table
  that lost no rows since T;
- `unique` and `unique_combination_of_columns` compare the new rows' keys
  with every row.

The promise only holds along a lineage of views and incremental models that
were neither rebuilt in full nor changed since T (seeds may be upstream: their
rows change only with their checksum, which is part of that lineage's
digest), so anything else (a plain table upstream, a changed model or seed, a
test the project wrote itself) runs in full. The digest of a test's lineage is
kept with its watermark in `_kpi.node_state`. A test that can never check
new rows only (its relation has no `_load_id`, or it is a `relationships`
test whose parent is not a raw table) is left to `up_to_date`, which runs it
unless nothing it reads changed since a clean pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runner import state_tables
from runner.build_state import rebuilt_since
from runner.caches import content_key
from runner.graph import Graph
from runner.nodes import Node, SourceTable
from runner.up_to_date import raw_changed_after

if TYPE_CHECKING:
    from runner.engines.base import EngineAdapter

LOAD_ID = "_load_id"
ROW_LOCAL = frozenset({"not_null", "accepted_values", "accepted_range", "expression_is_true"})
KEYED = frozenset({"unique", "unique_combination_of_columns"})
SUPPORTED = ROW_LOCAL | KEYED | {"relationships"}


@dataclass(frozen=True)
class TestPlan:
    """Which tests run on new rows only, and the lineage digest of every test
    that may (recorded when it passes)."""

    new_rows_only: frozenset[str]
    digests: Mapping[str, str]
    # of new_rows_only: no raw table upstream changed since they passed
    nothing_new: frozenset[str] = frozenset()
    # other tests with the same inputs as at a pass with no failing row (see
    # `up_to_date`), and the tests whose digest is recorded only on such a pass
    unchanged: frozenset[str] = frozenset()
    clean_only: frozenset[str] = frozenset()

    def passes_unrun(self, test_id: str) -> bool:
        """Whether the test's result is known without running it: a pass."""
        return test_id in self.nothing_new or test_id in self.unchanged


def builtin_tests(macro_sources: Mapping[str, str]) -> frozenset[str]:
    """The supported generic tests that the project does not redefine."""
    return frozenset(
        name
        for name in SUPPORTED
        if not any(
            re.search(rf"{{%-?\s*(test\s+{name}|macro\s+test_{name})\b", text)
            for text in macro_sources.values()
        )
    )


def watermark_sql(test_id: str) -> str:
    """SQL for the load at which `test_id` last passed (0 if never)."""
    return state_tables.last_seen_load_id_sql(test_id)


def plan_tests(
    adapter: EngineAdapter,
    nodes: Mapping[str, Node],
    sources: Mapping[str, SourceTable],
    tests: list[Node],
    logic: Callable[[Node], str],
    versions: Mapping[str, str],
    rebuilt_in_full: frozenset[str],
    builtin_tests: frozenset[str],
    graph: Graph,
    changes: Mapping[str, int] | None = None,
) -> TestPlan:
    """Decide, for each test of this run, whether it may check new rows only.

    `logic(node)` is a digest of a test's definition; `versions` says which
    definitions each relation's rows come from after this run (see
    `build_state.versions_after_run`); `rebuilt_in_full` are
    the incremental models that rebuild in full this run; `builtin_tests` the
    generic tests whose SQL is the runner's own; `changes` the newest load
    that changed each raw table (see `state_tables.last_changes`), to find
    the tests with no new rows to check.
    """
    candidates = [
        t
        for t in tests
        if t.test_metadata is not None
        and t.test_metadata["name"] in SUPPORTED
        and t.test_metadata["name"] in builtin_tests
    ]
    if not candidates:
        return TestPlan(frozenset(), {})
    existing, with_load_id = _relations_with_load_id(adapter)
    state = state_tables.read_node_states(adapter)
    lost_rows = state_tables.raw_changes(adapter).last_delete
    digests: dict[str, str] = {}
    chosen: set[str] = set()
    nothing_new: set[str] = set()
    for test in candidates:
        tested = str(test.test_metadata["attached_node"])  # type: ignore[index]
        lineage = _lineage(tested, nodes, graph)
        if lineage is None:
            continue  # a plain table (or a seed) upstream: no promise about _load_id
        relation = sources[tested].relation if tested in sources else nodes[tested].relation
        name = relation.display.lower()
        if name in existing and name not in with_load_id:
            continue  # never on new rows (the relation has no `_load_id`)
        if test.test_metadata["name"] == "relationships" and not _parent_is_a_source(  # type: ignore[index]
            test, tested, sources
        ):
            continue  # never on new rows
        digest = content_key(logic(test), versions.get(tested, "source"))
        digests[test.unique_id] = digest
        if name not in with_load_id:
            continue
        passed = state.get(test.unique_id)
        if passed is None or passed.logic != digest:
            continue
        watermark = passed.load_id
        incremental_models = [
            uid for uid in lineage if nodes[uid].config.materialized == "incremental"
        ]
        if any(uid in rebuilt_in_full for uid in incremental_models):
            continue
        if any(rebuilt_since(state.get(uid), passed.built_at) for uid in incremental_models):
            continue  # rebuilt in full since the test last passed
        if test.test_metadata["name"] == "relationships" and not _parent_kept_rows(  # type: ignore[index]
            test, tested, sources, lost_rows, watermark
        ):
            continue
        chosen.add(test.unique_id)
        if changes and not raw_changed_after(tested, sources, graph, changes, watermark):
            nothing_new.add(test.unique_id)
    return TestPlan(frozenset(chosen), digests, frozenset(nothing_new))


def _lineage(tested: str, nodes: Mapping[str, Node], graph: Graph) -> list[str] | None:
    """The models a relation is built from (itself included), or None when one
    of them is neither a view, an incremental model nor a seed.

    A seed's rows change only with its file, and its checksum is part of the
    version of every relation built from it (so of the test's digest): a
    test below a seed that changed runs on all rows."""
    if tested not in nodes:
        return []  # a raw source
    models = sorted({tested, *graph.ancestors(tested)} & set(nodes))
    for uid in models:
        node = nodes[uid]
        if node.is_seed:
            continue
        if node.config.materialized not in ("view", "incremental", "ephemeral"):
            return None
    return models


def _parent_is_a_source(test: Node, tested: str, sources: Mapping[str, SourceTable]) -> bool:
    parents = [d for d in test.depends_on if d != tested]
    return len(parents) == 1 and parents[0] in sources


def _parent_kept_rows(
    test: Node,
    tested: str,
    sources: Mapping[str, SourceTable],
    lost_rows: Mapping[str, int],
    watermark: int,
) -> bool:
    parents = [d for d in test.depends_on if d != tested]
    if len(parents) != 1 or parents[0] not in sources:
        return False
    relation = sources[parents[0]].relation.display.lower()
    return lost_rows.get(relation, 0) <= watermark


def _relations_with_load_id(adapter: EngineAdapter) -> tuple[set[str], set[str]]:
    """Every relation in the warehouse, and those with a `_load_id` column."""
    catalog = adapter.catalog_columns()
    return {f"{schema}.{table}".lower() for schema, table in catalog}, {
        f"{schema}.{table}".lower()
        for (schema, table), columns in catalog.items()
        if any(name == LOAD_ID for name, _ in columns)
    }
