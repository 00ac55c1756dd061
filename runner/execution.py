"""Executing planned units on the warehouse, in dependency order, in parallel.

One runner per kind of unit, as dbt-core's task runners: `RelationRunner`
builds a model (`SeedRunner` a seed) and runs the tests attached to it,
`TestRunner` runs a standalone test. Each returns `NodeResult`s and prints
nothing; the `Executor` schedules units, hands each one a cursor of its own
thread, and passes the results to the reporter.

A unit with tests runs in one transaction (`EngineAdapter.transaction`):
build the relation, run its tests, then commit, or roll back when an
error-severity test failed, so that a table is only ever replaced by a
version that passed its tests (write, audit, publish).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner import build_state, data_tests, materializations, state_tables
from runner.compiling import CompiledNode
from runner.data_tests import TestOutcome
from runner.errors import first_line
from runner.nodes import Materialization, Node, Relation
from runner.planning import Unit
from runner.reporting import Reporter
from runner.results import NodeResult, NodeStatus
from runner.scheduler import run_graph

if TYPE_CHECKING:
    from runner.build import BuildPlan, RunOptions
    from runner.engines.base import EngineAdapter


@dataclass(frozen=True)
class RunContext:
    """What every runner reads: the plan, the options, where files go, and
    where to send a warning."""

    plan: BuildPlan
    options: RunOptions
    project_dir: Path
    failures_dir: Path
    warn: Callable[[str], None]
    # (unique_id, load, logic, full) of the kept relations whose state is
    # recorded after the run, in one transaction (`state_tables.record_kept`)
    kept_records: list[tuple[str, int, str, bool]] = field(default_factory=list)

    def wants_store(self, test: Node) -> bool:
        return self.options.store_failures or test.config.store_failures

    def sql(self, node: Node) -> str:
        """The SQL a table, an incremental model or a test runs: compiled, with
        the loads they had seen bound as numbers (a view keeps its compiled SQL,
        which is read whenever the view is)."""
        return state_tables.bind_last_seen(
            self.plan.compiled[node.unique_id].sql, self.plan.incremental.states
        )

    def runs(self, test: Node) -> bool:
        """Whether a test's query runs: not when its result is known (no new rows
        to check, or the inputs of a clean pass; see `up_to_date`) and its
        failing rows need not be stored."""
        return not self.plan.incremental.tests.passes_unrun(test.unique_id) or self.wants_store(
            test
        )

    def run_test(self, cur: EngineAdapter, test: Node, failures: int | None = None) -> TestOutcome:
        """Run a test's query (`failures`: its count, from a fused query), or
        judge its 0 failing rows without running it."""
        if not self.runs(test):
            return TestOutcome(data_tests.judge(test.config, 0, test.path), 0)
        return data_tests.run_test(cur, self.sql(test), test.config, test.path, failures)


class NodeRunner:
    """Runs one unit on a cursor and returns a result for each of its nodes,
    the unit's own node first."""

    def __init__(self, context: RunContext, unit: Unit) -> None:
        self.context = context
        self.unit = unit

    def run(self, cur: EngineAdapter) -> list[NodeResult]:
        raise NotImplementedError

    def result(
        self,
        node: Node,
        status: NodeStatus,
        message: str,
        seconds: float,
        wall: float,
        **details: Any,
    ) -> NodeResult:
        return self.context.plan.result(node, status, message, seconds, wall, **details)

    def crashed(self, exc: BaseException) -> list[NodeResult]:
        """The results of a unit that raised something unexpected (a bug)."""
        wall = time.time()
        head = self.result(
            self.unit.node,
            NodeStatus.ERROR,
            f"internal error: {exc!r}",
            0.0,
            wall,
            detail="internal error:\n" + traceback.format_exc(),
            internal=True,
        )
        because = f"{self.unit.node.name} failed"
        return [head, *(self.skipped(t, because, wall) for t in self.unit.tests)]

    def skipped(self, node: Node, reason: str, wall: float) -> NodeResult:
        return self.result(node, NodeStatus.SKIPPED, reason, 0.0, wall)

    def test_result(
        self, test: Node, outcome: TestOutcome, seconds: float, wall: float
    ) -> NodeResult:
        return self.context.plan.test_result(test, outcome, seconds, wall)


class _FusedTestsFailed(Exception):
    """The fused count of a unit's tests raised: the unit runs again, each test
    on its own, so that the test that cannot run is the one named."""


class RelationRunner(NodeRunner):
    """Builds a model's relation and audits it with its tests, in one transaction.

    The tests that run are counted by one fused query (`data_tests.fused_count_sql`),
    and a failing test's rows are then sampled on their own. When the fused
    query raises, the transaction has aborted, so the unit is rolled back and
    run again with one query per test."""

    def run(self, cur: EngineAdapter) -> list[NodeResult]:
        if self._nothing_to_run():
            kept = self._kept(cur)
            if kept is not None:
                return kept
        try:
            return self._run(cur, fuse=True)
        except _FusedTestsFailed:
            return self._run(cur, fuse=False)

    def _nothing_to_run(self) -> bool:
        """Whether the relation is kept as it is and no query of its tests runs
        (their results are known: see `up_to_date`)."""
        plan = self.context.plan
        return self.unit.node.unique_id in plan.incremental.kept and not any(
            self.context.runs(t) for t in self.unit.tests
        )

    def _kept(self, cur: EngineAdapter) -> list[NodeResult] | None:
        """The results of a unit with nothing to run: no transaction; its
        state is recorded with the other kept relations' after the run. None
        when a test is judged to block on 0 failing rows (a threshold such as
        `error_if: '< 1'`): the unit then runs the usual way."""
        node = self.unit.node
        plan = self.context.plan
        wall, start = time.time(), time.perf_counter()
        tests = [(t, self.context.run_test(cur, t)) for t in self.unit.tests]
        if any(outcome.blocks for _, outcome in tests):
            return None
        self.context.kept_records.append(
            (
                node.unique_id,
                plan.incremental.seen.get(node.unique_id, 0),
                plan.incremental.logic.get(node.unique_id, ""),
                not plan.compiled[node.unique_id].is_incremental,
            )
        )
        seconds = time.perf_counter() - start
        head = self.result(
            node, NodeStatus.SUCCESS, "up to date", seconds, wall, action="up to date"
        )
        return [head, *(self.test_result(t, o, 0.0, wall) for t, o in tests)]

    def _fused_counts(self, cur: EngineAdapter) -> dict[str, int]:
        """The failure count of every test that runs, by one query (two or more)."""
        tests = [t for t in self.unit.tests if self.context.runs(t)]
        if len(tests) < 2:
            return {}
        queries = [data_tests.test_query(self.context.sql(t), t.config) for t in tests]
        # a view's rows are shared by its tests only when each reads them all:
        # DuckDB would compute the whole view for the CTE before a test's
        # `_load_id` filter, which otherwise reaches the raw tables' scans
        node = self.unit.node
        compiled = self.context.plan.compiled
        on_all_rows = not any(compiled[t.unique_id].is_incremental for t in tests)
        is_view = node.config.materialized == Materialization.VIEW
        view = str(node.relation) if is_view and on_all_rows else None
        try:
            rows = cur.execute(data_tests.fused_count_sql(queries, view)).fetchall()
        except cur.Error as exc:
            raise _FusedTestsFailed from exc
        return {tests[int(i)].unique_id: int(n) for i, n in rows}

    def _run(self, cur: EngineAdapter, *, fuse: bool) -> list[NodeResult]:
        node = self.unit.node
        compiled = self.context.plan.compiled[node.unique_id]
        wall, start = time.time(), time.perf_counter()
        outcomes: list[tuple[Node, TestOutcome, float]] = []
        exported: list[tuple[Node, Path]] = []
        try:
            with cur.transaction() as transaction:
                if node.unique_id in self.context.plan.incremental.kept:
                    action, rows = "up to date", None
                else:
                    action, rows = self.materialize(cur, compiled)
                if node.config.materialized in build_state.RELATIONS or node.is_seed:
                    state_tables.record_build(
                        cur,
                        node.unique_id,
                        self.context.plan.incremental.seen.get(node.unique_id, 0),
                        self.context.plan.incremental.logic.get(node.unique_id, ""),
                        full=not compiled.is_incremental,
                    )
                t0 = time.perf_counter()
                counts = self._fused_counts(cur) if fuse else {}
                # the fused query's time is shared by the tests it counted
                shared = (time.perf_counter() - t0) / len(counts) if counts else 0.0
                for test in self.unit.tests:
                    t0 = time.perf_counter()
                    failures = counts.get(test.unique_id)
                    outcome = self.context.run_test(cur, test, failures)
                    seconds = time.perf_counter() - t0 + (shared if failures is not None else 0)
                    outcomes.append((test, outcome, seconds))
                    if outcome.status == NodeStatus.ERROR:
                        # a failed statement aborts the transaction: nothing
                        # more runs in it and it can only roll back.
                        break
                    exported += self._export_failures(cur, test)
                # a failed error-severity test, or a test that could not run at all
                blocking = [t for t, o, _ in outcomes if o.blocks]
                if blocking:
                    transaction.rollback()
        except cur.Error as exc:
            seconds = time.perf_counter() - start
            head = self.result(
                node, NodeStatus.ERROR, first_line(exc), seconds, wall, detail=str(exc).strip()
            )
            because = f"{node.name} failed"
            return [head, *(self.skipped(t, because, wall) for t in self.unit.tests)]
        self._import_failures(cur, exported)
        seconds = time.perf_counter() - start
        if blocking:
            head = self.result(
                node,
                NodeStatus.ERROR,
                self._not_published(compiled, blocking),
                seconds,
                wall,
                rows=rows,
                action=action,
                blocked_by=tuple(t.name for t in blocking),
            )
        else:
            head = self.result(
                node, NodeStatus.SUCCESS, action, seconds, wall, rows=rows, action=action
            )
        results = [head]
        results += [self.test_result(t, o, s, wall) for t, o, s in outcomes]
        for test in self.unit.tests[len(outcomes) :]:
            reason = f"not run: {outcomes[-1][0].name} errored and aborted the transaction"
            results.append(self.skipped(test, reason, wall))
        return results

    def materialize(self, cur: EngineAdapter, compiled: CompiledNode) -> tuple[str, int | None]:
        """Build the relation; the action taken (`created view`) and the rows written."""
        node = compiled.node
        relation = node.relation
        kind = node.config.materialized
        if kind == Materialization.VIEW:
            materializations.build_view(cur, relation, compiled.sql)
            return "created view", None
        sql = self.context.sql(node)
        if kind == Materialization.INCREMENTAL and compiled.is_incremental:
            if node.config.incremental_strategy == "delete+insert":
                rows = materializations.delete_insert(
                    cur, relation, sql, node.config.unique_key, node.config.valid_keys
                )
                return "merged into", rows
            return "inserted into", materializations.append_rows(cur, relation, sql)
        return "created table", materializations.build_table(cur, relation, sql)

    @staticmethod
    def _not_published(compiled: CompiledNode, blocking: list[Node]) -> str:
        names = ", ".join(t.name for t in blocking)
        message = f"not published: a blocking test failed ({names}); the previous version is kept"
        node = compiled.node
        if node.config.materialized == Materialization.INCREMENTAL and compiled.is_incremental:
            message += (
                f". If rows built by earlier runs are wrong, `kpi build --full-refresh "
                f"-s {node.name}` rebuilds it from scratch"
            )
        return message

    def _export_failures(self, cur: EngineAdapter, test: Node) -> list[tuple[Node, Path]]:
        """Copy a test's failing rows out of the unit's transaction (to Parquet), so
        that they are kept whether the unit commits or rolls back."""
        if not self.context.wants_store(test):
            return []
        file = self.context.failures_dir / f"{test.name}.parquet"
        data_tests.export_failures(cur, self.context.sql(test), file)
        return [(test, file)]

    def _import_failures(self, cur: EngineAdapter, exported: list[tuple[Node, Path]]) -> None:
        """Load exported failing rows into the audit schema, after the transaction."""
        for test, file in exported:
            try:
                data_tests.import_failures(cur, audit_relation(test), file)
            except cur.Error as exc:
                self.context.warn(
                    f"the failing rows of {test.name} were not stored: {first_line(exc)}"
                )


class SeedRunner(RelationRunner):
    """Loads a seed's CSV file into its table, unless the file and its column
    types are unchanged since the last load."""

    def materialize(self, cur: EngineAdapter, compiled: CompiledNode) -> tuple[str, int | None]:
        node = compiled.node
        relation = node.relation
        if not self.context.options.full_refresh:
            loaded = state_tables.seed_checksum(cur, relation)
            if loaded == seed_checksum(node) and cur.relation_kind(relation) is not None:
                return "unchanged seed", None
        rows = materializations.load_csv_table(
            cur, relation, self.context.project_dir / node.path, node.config.column_types
        )
        state_tables.record_seed(cur, relation, seed_checksum(node))
        return "loaded seed", rows


class TestRunner(NodeRunner):
    """Runs a standalone test (outside any model's transaction)."""

    def run(self, cur: EngineAdapter) -> list[NodeResult]:
        test = self.unit.node
        wall, start = time.time(), time.perf_counter()
        outcome = self.context.run_test(cur, test)
        if self.context.wants_store(test) and outcome.status != NodeStatus.ERROR:
            try:
                data_tests.store_failures(cur, audit_relation(test), self.context.sql(test))
            except cur.Error as exc:
                self.context.warn(
                    f"the failing rows of {test.name} were not stored: {first_line(exc)}"
                )
        return [self.test_result(test, outcome, time.perf_counter() - start, wall)]


def runner_for(context: RunContext, unit: Unit) -> NodeRunner:
    """The runner of a unit's kind of node."""
    if unit.node.is_test:
        return TestRunner(context, unit)
    if unit.node.is_seed:
        return SeedRunner(context, unit)
    return RelationRunner(context, unit)


class Executor:
    """Runs planned units on one warehouse, one cursor per thread."""

    def __init__(
        self,
        adapter: EngineAdapter,
        plan: BuildPlan,
        options: RunOptions,
        reporter: Reporter,
        *,
        threads: int,
        project_dir: Path,
        failures_dir: Path,
        seconds: Mapping[str, float] | None = None,
    ) -> None:
        self.adapter = adapter
        self.seconds = seconds or {}
        self.reporter = reporter
        self.threads = threads
        self.context = RunContext(plan, options, project_dir, failures_dir, reporter.warning)
        self.results: dict[str, NodeResult] = {}
        self.passed_tests: set[str] = set()  # tests that passed on committed data
        self._local = threading.local()
        self._cursors: list[EngineAdapter] = []
        self._lock = threading.Lock()
        self._units: Mapping[str, Unit] = plan.units

    def execute(self) -> list[NodeResult]:
        units = self._units
        if any(u.node.is_seed for u in units.values()):
            state_tables.ensure(self.adapter, state_tables.SEED_STATE)
        self._ensure_audit_schemas(units)
        try:
            run_graph(
                self.context.plan.parents,
                self._run_unit,
                threads=self.threads,
                on_skip=self._skip_unit,
                fail_fast=self.context.options.fail_fast,
                seconds=self.seconds,
            )
            state_tables.record_kept(self.adapter, self.context.kept_records)
        finally:
            for cur in self._cursors:
                with contextlib.suppress(Exception):
                    cur.close()
        return list(self.results.values())

    def interrupt(self) -> None:
        """Stop the queries that are running now (on Ctrl-C)."""
        for cur in list(self._cursors):
            with contextlib.suppress(Exception):
                cur.interrupt()

    def _cursor(self) -> EngineAdapter:
        cur: EngineAdapter | None = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self.adapter.cursor()
            self._local.cursor = cur
            with self._lock:
                self._cursors.append(cur)
        return cur

    def _ensure_audit_schemas(self, units: Mapping[str, Unit]) -> None:
        """Create the schemas that stored failures go to, before any transaction
        starts: two transactions that both create one schema conflict."""
        schemas = {
            test.config.schema
            for unit in units.values()
            for test in unit.nodes
            if test.is_test and self.context.wants_store(test)
        }
        for schema in sorted(schemas):
            self.adapter.create_schema(schema)

    def _run_unit(self, key: str) -> bool:
        unit = self._units[key]
        runner = runner_for(self.context, unit)
        try:
            results = runner.run(self._cursor())
        except Exception as exc:  # noqa: BLE001 - a bug must not hang the pool
            self._abandon_transaction()
            results = runner.crashed(exc)
        self._finish(unit, results)
        return not results[0].status.failed

    def _abandon_transaction(self) -> None:
        """Roll back whatever this thread's cursor left open, so that the next
        unit on it can begin its own transaction."""
        self._cursor().abandon_transaction()

    def _skip_unit(self, key: str, because: str) -> None:
        unit = self._units[key]
        reason = (
            f"skipped because {self._units[because].node.name} failed"
            if because in self._units
            else "skipped (--fail-fast)"
        )
        runner = runner_for(self.context, unit)
        wall = time.time()
        self._finish(unit, [runner.skipped(node, reason, wall) for node in unit.nodes])

    def _finish(self, unit: Unit, results: list[NodeResult]) -> None:
        head = results[0]
        committed = head.status in (NodeStatus.SUCCESS, NodeStatus.PASS)
        with self._lock:
            for result in results:
                self.results[result.unique_id] = result
            if committed:
                self.passed_tests.update(
                    r.unique_id
                    for r in results
                    if r.resource_type == "test" and r.status == NodeStatus.PASS
                )
        self.reporter.report(results)


def audit_relation(test: Node) -> Relation:
    """Where a test's failing rows are stored."""
    return Relation(test.config.schema, test.name)


def seed_checksum(node: Node) -> str:
    """What decides whether a seed is reloaded: its CSV file and its column types."""
    if not node.config.column_types:
        return node.checksum
    types = json.dumps(sorted(node.config.column_types.items()))
    return hashlib.sha256(f"{node.checksum}\n{types}".encode()).hexdigest()
