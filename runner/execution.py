"""Executing selected nodes on the warehouse, in dependency order, in parallel.

Work is planned as *units*: a model or seed together with the data tests
that audit it (in `build`), or a standalone test. A unit runs in one DuckDB
transaction: build the relation, run its tests, then commit, or roll back
when an error-severity test failed, so that a table is only ever replaced by
a version that passed its tests (write, audit, publish).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from runner import build_state, data_tests, materializations
from runner.compiling import CompiledNode
from runner.data_tests import TestOutcome
from runner.graph import Graph
from runner.nodes import Node, Relation, quote_identifier
from runner.reporting import Reporter, format_rows, thousands
from runner.scheduler import run_graph
from runner.warehouse import META_SCHEMA

if TYPE_CHECKING:
    import duckdb

SEED_STATE = Relation(META_SCHEMA, "seed_state")


@dataclass
class NodeResult:
    """What happened to one node; `status` is dbt's word for it."""

    unique_id: str
    name: str
    resource_type: str
    status: str
    message: str = ""
    rows: int | None = None
    failures: int | None = None
    execution_time: float = 0.0
    started_at: str = ""
    completed_at: str = ""
    relation: str | None = None
    compiled_path: str | None = None


@dataclass
class Unit:
    """A model or seed and its attached tests, or one standalone test."""

    node: Node
    tests: list[Node] = field(default_factory=list)


@dataclass(frozen=True)
class ExecutionOptions:
    threads: int = 1
    fail_fast: bool = False
    store_failures: bool = False
    full_refresh: bool = False
    failures_dir: Path = Path("target/failures")
    seen: Mapping[str, int] = field(default_factory=dict)  # the load each node has seen
    logic: Mapping[str, str] = field(default_factory=dict)


def plan_units(
    nodes: Mapping[str, Node], selected: set[str], mode: str
) -> tuple[dict[str, Unit], dict[str, set[str]]]:
    """Group the selected nodes into units and give each unit its parents.

    `mode` is build, run, seed or test. In build, a test is attached to the
    tested model that all its other tested nodes lead to; other tests run on
    their own after their parents.
    """
    kinds = {
        "build": ("model", "seed", "test"),
        "run": ("model",),
        "seed": ("seed",),
        "test": ("test",),
    }[mode]
    graph = Graph({uid: n.depends_on for uid, n in nodes.items()})
    chosen = {
        uid
        for uid in selected
        if nodes[uid].resource_type in kinds and nodes[uid].config.materialized != "ephemeral"
    }
    units: dict[str, Unit] = {uid: Unit(nodes[uid]) for uid in chosen if not nodes[uid].is_test}
    standalone: list[Node] = []
    for uid in sorted(u for u in chosen if nodes[u].is_test):
        test = nodes[uid]
        host = _host_of(test, units, graph) if mode == "build" else None
        if host is None:
            standalone.append(test)
            units[uid] = Unit(test)
        else:
            units[host].tests.append(test)

    parents: dict[str, set[str]] = {key: set() for key in units}
    for key, unit in units.items():
        parents[key] = _nearest_units(unit.node.unique_id, units, graph)
    for test in standalone:
        sources = {d for d in test.depends_on if d.startswith("source.")}
        if not sources or mode != "build":
            continue
        tested = {d for d in test.depends_on if d in nodes}
        for key, unit in units.items():
            node = unit.node
            if node.is_test or not sources & set(node.depends_on):
                continue
            if tested <= graph.ancestors(node.unique_id):
                parents[key].add(test.unique_id)
    return units, parents


def _host_of(test: Node, units: Mapping[str, Unit], graph: Graph) -> str | None:
    tested = [d for d in test.depends_on if d in graph]
    for candidate in tested:
        if candidate in units and all(
            other == candidate or other in graph.ancestors(candidate) for other in tested
        ):
            return candidate
    return None


def _nearest_units(uid: str, units: Mapping[str, Unit], graph: Graph) -> set[str]:
    found: set[str] = set()
    stack = list(graph.parents.get(uid, ()))
    seen: set[str] = set()
    while stack:
        parent = stack.pop()
        if parent in seen:
            continue
        seen.add(parent)
        if parent in units:
            found.add(parent)
        else:
            stack.extend(graph.parents.get(parent, ()))
    return found


class Executor:
    """Runs planned units on one DuckDB database, one cursor per thread."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        compiled: Mapping[str, CompiledNode],
        reporter: Reporter,
        options: ExecutionOptions,
        project_dir: Path,
        compiled_paths: Mapping[str, str] | None = None,
    ) -> None:
        self.con = con
        self.compiled = compiled
        self.reporter = reporter
        self.options = options
        self.project_dir = project_dir
        self.compiled_paths = compiled_paths or {}
        self.results: dict[str, NodeResult] = {}
        self.passed_tests: set[str] = set()  # tests that passed on committed data
        self.failure_blocks: list[str] = []
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()
        self._units: dict[str, Unit] = {}

    def execute(self, units: dict[str, Unit], parents: Mapping[str, set[str]]) -> list[NodeResult]:
        self._units = units
        if any(u.node.is_seed for u in units.values()):
            self._ensure_seed_state()
        self._ensure_audit_schemas(units)
        try:
            run_graph(
                parents,
                self._run_unit,
                threads=self.options.threads,
                on_skip=self._skip_unit,
                fail_fast=self.options.fail_fast,
            )
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

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self.con.cursor()
            self._local.cursor = cur
            with self._lock:
                self._cursors.append(cur)
        return cur

    def _ensure_seed_state(self) -> None:
        self.con.execute(f"create schema if not exists {quote_identifier(META_SCHEMA)}")
        self.con.execute(
            f"create table if not exists {SEED_STATE} "
            "(relation varchar primary key, checksum varchar, loaded_at timestamp)"
        )

    def _ensure_audit_schemas(self, units: Mapping[str, Unit]) -> None:
        """Create the schemas that stored failures go to, before any transaction
        starts: two transactions that both create one schema conflict."""
        schemas = {
            test.config.schema
            for unit in units.values()
            for test in [unit.node, *unit.tests]
            if test.is_test and self._wants_store(test)
        }
        for schema in sorted(schemas):
            self.con.execute(f"create schema if not exists {quote_identifier(schema)}")

    # -- running ----------------------------------------------------------

    def _run_unit(self, key: str) -> bool:
        unit = self._units[key]
        try:
            if unit.node.is_test:
                return self._run_standalone_test(unit.node)
            return self._run_relation(unit)
        except Exception as exc:  # noqa: BLE001 - a bug must not hang the pool
            import traceback

            self._abandon_transaction()
            wall = time.time()
            self._record(unit.node, "error", f"internal error: {exc!r}", 0.0, wall)
            lines = [("error", "ERROR", unit.node.name, "ERROR")]
            for test in unit.tests:
                self._record(test, "skipped", f"{unit.node.name} failed", 0.0, wall)
                lines.append(self._skip_line(test))
            self.reporter.node_lines(lines)
            self._failure_block(unit.node, "internal error:\n" + traceback.format_exc())
            return False

    def _abandon_transaction(self) -> None:
        """Roll back whatever this thread's cursor left open, so that the next
        unit on it can begin its own transaction."""
        import duckdb

        with contextlib.suppress(duckdb.Error):
            self._cursor().execute("rollback")

    def _run_relation(self, unit: Unit) -> bool:
        import duckdb

        node = unit.node
        compiled = self.compiled[node.unique_id]
        cur = self._cursor()
        wall, start = time.time(), time.perf_counter()
        outcomes: list[tuple[Node, TestOutcome, float]] = []
        exported: list[tuple[Node, Path]] = []
        try:
            cur.execute("begin transaction")
            verb, rows = self._materialize(cur, compiled)
            if node.config.materialized in build_state.RELATIONS or node.is_seed:
                build_state.record_build(
                    cur,
                    node.unique_id,
                    self.options.seen.get(node.unique_id, 0),
                    self.options.logic.get(node.unique_id, ""),
                    full=not compiled.is_incremental,
                )
            for test in unit.tests:
                t0 = time.perf_counter()
                outcome = data_tests.run_test(
                    cur, self.compiled[test.unique_id].sql, test.config, test.path
                )
                outcomes.append((test, outcome, time.perf_counter() - t0))
                if outcome.status == "error":
                    # DuckDB aborts the transaction on a failed statement: nothing
                    # more runs in it and it can only roll back.
                    break
                exported += self._export_failures(cur, test)
            # a failed error-severity test, or a test that could not run at all
            blocking = [t for t, o, _ in outcomes if o.blocks]
            cur.execute("rollback" if blocking else "commit")
            if not blocking:
                with self._lock:
                    self.passed_tests.update(
                        t.unique_id for t, o, _ in outcomes if o.status == "pass"
                    )
        except duckdb.Error as exc:
            with contextlib.suppress(duckdb.Error):
                cur.execute("rollback")
            seconds = time.perf_counter() - start
            self._record(node, "error", _first_line(exc), seconds, wall)
            error_lines = [
                (
                    "error",
                    "ERROR",
                    f"creating {_kind(node)} {node.relation.display}",
                    f"ERROR in {seconds:.2f}s",
                )
            ]
            error_lines += [self._skip_line(t) for t in unit.tests]
            for test in unit.tests:
                self._record(test, "skipped", f"{node.name} failed", 0.0, wall)
            self.reporter.node_lines(error_lines)
            self._failure_block(node, str(exc).strip())
            return False
        self._import_failures(cur, exported)
        seconds = time.perf_counter() - start
        lines: list[tuple[str, str, str, str]] = []
        if blocking:
            names = ", ".join(t.name for t in blocking)
            message = (
                f"not published: a blocking test failed ({names}); the previous version is kept"
            )
            if node.config.materialized == "incremental" and compiled.is_incremental:
                message += (
                    f". If rows built by earlier runs are wrong, `kpi build --full-refresh "
                    f"-s {node.name}` rebuilds it from scratch"
                )
            self._record(node, "error", message, seconds, wall, rows)
            lines.append(
                (
                    "error",
                    "ERROR",
                    f"{_kind(node)} {node.relation.display} not published",
                    f"kept previous in {seconds:.2f}s",
                )
            )
        else:
            self._record(node, "success", verb, seconds, wall, rows)
            detail = (
                f"{thousands(rows)} rows in {seconds:.2f}s"
                if rows is not None
                else f"OK in {seconds:.2f}s"
            )
            lines.append(("pass", "OK", f"{verb} {node.relation.display}", detail))
        for test, outcome, test_seconds in outcomes:
            lines.append(self._test_line(test, outcome, test_seconds, wall))
        for test in unit.tests[len(outcomes) :]:
            reason = f"not run: {outcomes[-1][0].name} errored and aborted the transaction"
            self._record(test, "skipped", reason, 0.0, wall)
            lines.append(self._skip_line(test))
        self.reporter.node_lines(lines)
        return not blocking

    def _materialize(
        self, cur: duckdb.DuckDBPyConnection, compiled: CompiledNode
    ) -> tuple[str, int | None]:
        node = compiled.node
        relation = node.relation
        if node.is_seed:
            return self._load_seed(cur, node)
        kind = node.config.materialized
        if kind == "view":
            materializations.build_view(cur, relation, compiled.sql)
            return "created view", None
        if kind == "incremental" and compiled.is_incremental:
            if node.config.incremental_strategy == "delete+insert":
                rows = materializations.delete_insert(
                    cur, relation, compiled.sql, node.config.unique_key, node.config.valid_keys
                )
                return "merged into", rows
            return "inserted into", materializations.append_rows(cur, relation, compiled.sql)
        return "created table", materializations.build_table(cur, relation, compiled.sql)

    def _load_seed(self, cur: duckdb.DuckDBPyConnection, node: Node) -> tuple[str, int | None]:
        relation = node.relation
        if not self.options.full_refresh:
            row = cur.execute(
                f"select checksum from {SEED_STATE} where relation = ?", [relation.display]
            ).fetchone()
            exists = cur.execute(
                "select count(*) from information_schema.tables "
                "where table_schema = ? and table_name = ?",
                [relation.schema, relation.identifier],
            ).fetchone()
            if row and row[0] == _seed_checksum(node) and exists and exists[0]:
                return "unchanged seed", None
        rows = materializations.load_csv_table(
            cur, relation, self.project_dir / node.path, node.config.column_types
        )
        cur.execute(f"delete from {SEED_STATE} where relation = ?", [relation.display])
        cur.execute(
            f"insert into {SEED_STATE} values (?, ?, now()::timestamp)",
            [relation.display, _seed_checksum(node)],
        )
        return "loaded seed", rows

    def _run_standalone_test(self, test: Node) -> bool:
        cur = self._cursor()
        wall, start = time.time(), time.perf_counter()
        outcome = data_tests.run_test(
            cur, self.compiled[test.unique_id].sql, test.config, test.path
        )
        if self._wants_store(test) and outcome.status != "error":
            import duckdb

            try:
                data_tests.store_failures(
                    cur, self._audit_relation(test), self.compiled[test.unique_id].sql
                )
            except duckdb.Error as exc:
                self.reporter.warning(
                    f"the failing rows of {test.name} were not stored: {_first_line(exc)}"
                )
        seconds = time.perf_counter() - start
        self.reporter.node_lines([self._test_line(test, outcome, seconds, wall)])
        if outcome.status == "pass":
            with self._lock:
                self.passed_tests.add(test.unique_id)
        return not outcome.blocks

    def _wants_store(self, test: Node) -> bool:
        return self.options.store_failures or test.config.store_failures

    def _audit_relation(self, test: Node) -> Relation:
        return Relation(test.config.schema, test.name)

    def _export_failures(
        self, cur: duckdb.DuckDBPyConnection, test: Node
    ) -> list[tuple[Node, Path]]:
        """Copy a test's failing rows out of the unit's transaction (to Parquet), so
        that they are kept whether the unit commits or rolls back."""
        if not self._wants_store(test):
            return []
        file = self.options.failures_dir / f"{test.name}.parquet"
        data_tests.export_failures(cur, self.compiled[test.unique_id].sql, file)
        return [(test, file)]

    def _import_failures(
        self, cur: duckdb.DuckDBPyConnection, exported: list[tuple[Node, Path]]
    ) -> None:
        """Load exported failing rows into the audit schema, after the transaction."""
        import duckdb

        for test, file in exported:
            try:
                data_tests.import_failures(cur, self._audit_relation(test), file)
            except duckdb.Error as exc:
                self.reporter.warning(
                    f"the failing rows of {test.name} were not stored: {_first_line(exc)}"
                )

    # -- reporting ----------------------------------------------------------

    def _test_line(
        self, test: Node, outcome: TestOutcome, seconds: float, wall: float
    ) -> tuple[str, str, str, str]:
        status = outcome.status
        self._record(test, status, outcome.message, seconds, wall, failures=outcome.failures)
        if status == "pass":
            return ("pass", "PASS", test.name, f"PASS in {seconds:.2f}s")
        if status == "error":
            self._failure_block(test, outcome.message)
            return ("error", "ERROR", test.name, f"ERROR in {seconds:.2f}s")
        warned = status == "warn"
        word = "WARN" if warned else "FAIL"
        threshold = test.config.warn_if if warned else test.config.error_if
        text = (
            f"Got {thousands(outcome.failures)} failing row(s), configured to "
            f"{'warn' if warned else 'fail'} if {threshold}."
        )
        if outcome.sample:
            text += "\nFirst rows:\n" + format_rows(outcome.columns, outcome.sample)
        self._failure_block(test, text, warning=status == "warn")
        return (
            "warn" if status == "warn" else "error",
            f"{word} {thousands(outcome.failures)}",
            test.name,
            f"{word} {thousands(outcome.failures)} in {seconds:.2f}s",
        )

    def _skip_line(self, node: Node) -> tuple[str, str, str, str]:
        what = node.name if node.is_test else f"{_kind(node)} {node.relation.display}"
        return ("skip", "SKIP", what, "SKIP")

    def _skip_unit(self, key: str, because: str) -> None:
        unit = self._units[key]
        reason = (
            f"skipped because {self._units[because].node.name} failed"
            if because in self._units
            else "skipped (--fail-fast)"
        )
        wall = time.time()
        for node in [unit.node, *unit.tests]:
            self._record(node, "skipped", reason, 0.0, wall)
        self.reporter.node_lines([self._skip_line(n) for n in [unit.node, *unit.tests]])

    def _failure_block(self, node: Node, text: str, warning: bool = False) -> None:
        path = self.compiled_paths.get(node.unique_id)
        where = (node.yml_path or node.path) if node.is_test else node.path
        kind = "Warning in" if warning else ("Failure in" if node.is_test else "Error in")
        head = f"{kind} {node.resource_type} {node.name} ({where})"
        body = "\n".join("  " + line for line in text.splitlines())
        tail = f"\n  compiled SQL: {path}" if path else ""
        with self._lock:
            self.failure_blocks.append(f"{head}\n{body}{tail}")

    def _record(
        self,
        node: Node,
        status: str,
        message: str,
        seconds: float,
        wall: float,
        rows: int | None = None,
        failures: int | None = None,
    ) -> None:
        result = NodeResult(
            unique_id=node.unique_id,
            name=node.name,
            resource_type=node.resource_type,
            status=status,
            message=message,
            rows=rows,
            failures=failures,
            execution_time=round(seconds, 6),
            started_at=_iso(wall),
            completed_at=_iso(wall + seconds),
            relation=node.relation.display if not node.is_test else None,
            compiled_path=self.compiled_paths.get(node.unique_id),
        )
        with self._lock:
            self.results[node.unique_id] = result


def _seed_checksum(node: Node) -> str:
    """What decides whether a seed is reloaded: its CSV file and its column types."""
    if not node.config.column_types:
        return node.checksum
    types = json.dumps(sorted(node.config.column_types.items()))
    return hashlib.sha256(f"{node.checksum}\n{types}".encode()).hexdigest()


def _kind(node: Node) -> str:
    return "seed" if node.is_seed else node.config.materialized.replace("incremental", "table")


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().split("\n", 1)[0]


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
