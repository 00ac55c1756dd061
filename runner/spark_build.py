"""A build on the Spark target: `kpi build/run/test --target spark`.

The same plan as on DuckDB (units, the incremental plan, compiled SQL),
with three differences:

- the raw export is loaded and typed into DuckDB as always, then handed to
  Spark as Parquet (`raw_export.py`);
- every query is rendered with `target.type == 'spark'`, translated to Spark
  SQL (`transpile.py`), written to `target/compiled/spark/` and parsed by
  Spark before anything runs; `last_seen_load_id()` is a literal;
- units run one after the other (Spark spreads each query over its cores);
  a model is built into a staging table, its tests read that table, and it
  is swapped in only when no error-severity test failed
  (`engines/spark.py`). Every test reads the whole table (no new-rows-only
  tests), and failing rows are not stored.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner import build_state, state_tables
from runner.build import BuildPlan, IncrementalPlan, RunOptions, finish_run, last_seconds
from runner.data_tests import SAMPLE_ROWS, TestOutcome, fused_count_sql, judge, test_query
from runner.errors import CompilationError
from runner.incremental_tests import TestPlan
from runner.materializations import strip_statement
from runner.nodes import Materialization, Node, Relation
from runner.planning import Command, Unit, plan_units
from runner.results import NodeResult, NodeStatus, RunResult

if TYPE_CHECKING:
    from runner.compiling import CompiledNode
    from runner.engines.duckdb import DuckDBAdapter
    from runner.engines.spark import SparkAdapter
    from runner.engines.spark_increments import StagedIncrement
    from runner.loaded import LoadedProject
    from runner.project import Project
    from runner.reporting import Reporter

COMPILED_FOLDER = "compiled/spark"


def open_adapter(project: Project) -> SparkAdapter:
    """The Spark session of the project's target, with its warehouse attached."""
    from runner.engines.spark import SparkAdapter
    from runner.spark_session import SparkTarget, get_session

    target = SparkTarget.from_settings(project.settings)
    project.reporter.info(f"Spark: {target.master}, {target.file_format} in {target.warehouse_dir}")
    adapter = SparkAdapter(get_session(target), target)
    adapter.attach()
    return adapter


def execute(project: Project, command: Command, options: RunOptions) -> RunResult:
    """Plan and run `command` on the Spark target."""
    from runner import raw_export

    started = time.perf_counter()
    reporter = project.reporter
    loaded = project.loaded
    selected = tuple(
        project.select(
            options.select, options.exclude, indirect_selection=options.indirect_selection
        )
    )
    units, parents = plan_units(
        project.nodes, {n.unique_id for n in selected}, command, loaded.graph
    )
    if not units:
        reporter.warning(f"nothing to {command}: the selection holds no {command}-able nodes.")
    with project.writing(f"kpi {command} --target spark", options.wait_seconds) as duck:
        project.load_warnings = []
        if command == Command.BUILD and options.load:
            project.load_raw_into(duck, None, options.on_bad_rows, False)
        adapter = open_adapter(project)
        sources = [s.relation for s in loaded.sources.values()]
        written = raw_export.export_tables(duck, sources, adapter.root)
        for relation in sources:
            if adapter.location(relation).is_dir():
                adapter.create_schema(relation.schema)
                adapter.register(relation)
        if written:
            reporter.info(f"Handed {len(written)} raw table(s) to Spark as Parquet.")
        plan = plan_spark_build(project, duck, adapter, command, selected, units, parents, options)
        executor = SparkExecutor(project, adapter, plan, options)
        try:
            results = executor.execute()
        finally:
            adapter.write_state(executor.state)
            adapter.save_views()
    existing = {k: "table" for k in executor.existing}
    return finish_run(project, command, options, selected, results, existing, plan, started)


def plan_spark_build(
    project: Project,
    duck: DuckDBAdapter,
    adapter: SparkAdapter,
    command: Command,
    selected: Sequence[Node],
    units: Mapping[str, Unit],
    parents: Mapping[str, set[str]],
    options: RunOptions,
) -> BuildPlan:
    """The incremental plan from the state kept in Spark's catalog, then the
    compiled, translated and parsed SQL of every node to run."""
    from runner.compile_cache import CompileCache
    from runner.compiling import Compiler

    loaded = project.loaded
    nodes = loaded.nodes
    schemas = {n.config.schema for n in nodes.values() if not n.is_test}
    existing = adapter.existing_tables(schemas)
    state = adapter.read_state()
    keys = CompileCache(loaded)
    definitions = {
        uid: node.checksum if node.is_seed else keys.definition(node)
        for uid, node in nodes.items()
        if not node.is_test
    }
    building = {u.node.unique_id for u in units.values()}
    versions, record = build_state.versions_after_run(
        nodes, loaded.graph, building, state, definitions
    )
    incremental = [
        u.node for u in units.values() if u.node.config.materialized == Materialization.INCREMENTAL
    ]
    logic = {node.unique_id: versions[node.unique_id] for node in incremental}
    rebuilds = build_state.full_rebuilds(duck, nodes, loaded.sources, logic, loaded.graph, state)
    for uid, reason in sorted(rebuilds.items()):
        project.reporter.info(f"Rebuilding {nodes[uid].name} in full: {reason}.")
    if options.full_refresh:
        rebuilds.update({uid: "--full-refresh" for uid in logic})
    load_id = state_tables.current_load_id(duck)
    seen = build_state.seen_after_run(nodes, loaded.graph, building, state, load_id)
    compiler = Compiler(
        loaded,
        existing,
        options.full_refresh,
        None,
        frozenset(rebuilds),
        frozenset(),
        last_seen={uid: s.load_id for uid, s in state.items()},
    )
    wanted = [n for u in units.values() for n in u.nodes]
    compiled, paths = compile_for_spark(loaded, compiler, wanted, adapter)
    tests = TestPlan(frozenset(), {})
    return BuildPlan(
        command,
        tuple(selected),
        units,
        {key: frozenset(p) for key, p in parents.items()},
        IncrementalPlan(load_id, seen, record, rebuilds, tests),
        compiled,
        paths,
    )


def compile_for_spark(
    loaded: LoadedProject, compiler: Any, nodes: Sequence[Node], adapter: SparkAdapter | None
) -> tuple[dict[str, CompiledNode], dict[str, str]]:
    """Render, translate and write every node to `target/compiled/spark/`; then
    Spark parses every query (when a session is given), before anything runs."""
    from runner.compiling import write_compiled
    from runner.transpile import to_spark

    settings = loaded.settings
    compiled: dict[str, CompiledNode] = {}
    paths: dict[str, str] = {}
    for node in nodes:
        item = compiler.compile(node)
        if node.is_seed or node.config.materialized == Materialization.EPHEMERAL:
            compiled[node.unique_id] = item
            continue
        spark_sql = to_spark(item.sql, name=node.name, path=node.path)
        item = replace(item, sql=spark_sql)
        compiled[node.unique_id] = item
        out = write_compiled(settings.target_path, item, COMPILED_FOLDER)
        paths[node.unique_id] = _relative(out, settings.project_dir)
    if adapter is not None:
        check_spark_sql(adapter, compiled, paths)
    return compiled, paths


def check_spark_sql(
    adapter: SparkAdapter, compiled: Mapping[str, CompiledNode], paths: Mapping[str, str]
) -> None:
    """Spark's own parser reads every query; the first it refuses stops the run."""
    from runner.transpile import spark_parse_error

    parser = adapter.session._jsparkSession.sessionState().sqlParser()  # type: ignore[attr-defined]
    for uid, item in compiled.items():
        if uid not in paths:
            continue
        error = spark_parse_error(parser, item.sql)
        if error is None:
            continue
        message, line, column = error
        node = item.node
        source = node.yml_path or node.path
        raise CompilationError(
            f"{node.resource_type} '{node.name}' ({source}) does not parse on Spark: {message}.",
            path=paths[uid],
            line=line,
            column=column,
            hint="Line and column are those of the Spark SQL; nothing was run. Write the "
            "construct in SQL both engines read (docs/spark.md lists what was rewritten), "
            "or branch on `target.type`.",
        )


class SparkExecutor:
    """Runs the planned units on Spark, one at a time, in dependency order."""

    def __init__(
        self, project: Project, adapter: SparkAdapter, plan: BuildPlan, options: RunOptions
    ) -> None:
        self.project = project
        self.adapter = adapter
        self.plan = plan
        self.options = options
        self.reporter: Reporter = project.reporter
        self.state = adapter.read_state()
        schemas = {u.node.config.schema for u in plan.units.values() if not u.node.is_test}
        self.existing = adapter.existing_tables(schemas)
        self.results: dict[str, NodeResult] = {}
        self._staged: dict[Relation, StagedIncrement] = {}  # by the view the tests read
        self._lock = threading.Lock()

    def execute(self) -> list[NodeResult]:
        from runner.scheduler import run_graph

        plan = self.plan
        for schema in sorted(
            {u.node.config.schema for u in plan.units.values() if not u.node.is_test}
        ):
            self.adapter.create_schema(schema)
        self.reporter.total = plan.total
        threads = self.options.threads or self.project.settings.threads
        self.reporter.info(f"Running {plan.total} node(s) on Spark with {threads} thread(s).")
        if any(
            self.options.store_failures or n.config.store_failures
            for u in plan.units.values()
            for n in u.nodes
            if n.is_test
        ):
            self.reporter.warning("failing rows are not stored on the Spark target.")
        run_graph(
            plan.parents,
            self._run_unit,
            threads=self.options.threads or self.project.settings.threads,
            on_skip=self._skip_unit,
            fail_fast=self.options.fail_fast,
            seconds=last_seconds(plan, self.project.settings.target_path),
        )
        return list(self.results.values())

    # -- units ------------------------------------------------------------------

    def _run_unit(self, key: str) -> bool:
        unit = self.plan.units[key]
        if unit.node.is_test:
            results = [self._run_test_alone(unit.node)]
        else:
            results = self._run_relation(unit)
        with self._lock:
            for result in results:
                self.results[result.unique_id] = result
            self.reporter.report(results)
        return not results[0].status.failed

    def _skip_unit(self, key: str, because: str) -> None:
        unit = self.plan.units[key]
        reason = (
            f"skipped because {self.plan.units[because].node.name} failed"
            if because in self.plan.units
            else "skipped (--fail-fast)"
        )
        wall = time.time()
        results = [self.plan.result(n, NodeStatus.SKIPPED, reason, 0.0, wall) for n in unit.nodes]
        with self._lock:
            for result in results:
                self.results[result.unique_id] = result
            self.reporter.report(results)

    def _run_relation(self, unit: Unit) -> list[NodeResult]:
        from runner.engines.spark import name

        node = unit.node
        compiled = self.plan.compiled[node.unique_id]
        relation = node.relation
        adapter = self.adapter
        wall, start = time.time(), time.perf_counter()
        outcomes: list[tuple[Node, TestOutcome, float]] = []
        staging: Relation | None = None
        try:
            action, rows, staging = self._materialize(compiled)
            queries = []
            for test in unit.tests:
                sql = self._sql(test)
                if staging is not None:
                    from runner.transpile import retarget

                    sql = retarget(sql, {(relation.schema, relation.identifier): _key(staging)})
                queries.append((test, sql))
            t0 = time.perf_counter()
            counted = staging if rows is None else None
            cached = _cache_for_tests(adapter, node, queries)
            try:
                judged, counted_rows = run_tests(adapter, queries, counted)
            finally:
                if cached:
                    _quietly(lambda: adapter.sql(f"uncache table if exists {name(relation)}"))
            rows = counted_rows if counted is not None else rows
            each = (time.perf_counter() - t0) / max(1, len(judged))
            outcomes = [
                (test, outcome, each) for (test, _), outcome in zip(queries, judged, strict=True)
            ]
            blocking = [t for t, o, _ in outcomes if o.blocks]
            if staging is not None:
                if blocking:
                    self._discard(staging)
                else:
                    self._publish(staging, relation)
        except Exception as exc:  # noqa: BLE001 - Spark's errors come in many classes
            if staging is not None:
                _quietly(lambda: self._discard(staging))
            elif node.is_seed or node.config.materialized != Materialization.VIEW:
                # a write that failed part way leaves its staging folder behind
                _quietly(lambda: adapter.drop_relation(adapter.staging(relation)))
            seconds = time.perf_counter() - start
            message = _first_line(exc)
            head = self.plan.result(
                node, NodeStatus.ERROR, message, seconds, wall, detail=_spark_message(exc)
            )
            because = f"{node.name} failed"
            return [
                head,
                *(self.plan.result(t, NodeStatus.SKIPPED, because, 0.0, wall) for t in unit.tests),
            ]
        seconds = time.perf_counter() - start
        if blocking:
            names = ", ".join(t.name for t in blocking)
            message = (
                f"not published: a blocking test failed ({names}); the previous version is kept"
            )
            head = self.plan.result(
                node,
                NodeStatus.ERROR,
                message,
                seconds,
                wall,
                rows=rows,
                action=action,
                blocked_by=tuple(t.name for t in blocking),
            )
        else:
            self._record(node, compiled)
            head = self.plan.result(
                node, NodeStatus.SUCCESS, action, seconds, wall, rows=rows, action=action
            )
        results = [head]
        for test, outcome, secs in outcomes:
            results.append(self.plan.test_result(test, outcome, secs, wall))
        return results

    def _materialize(self, compiled: CompiledNode) -> tuple[str, int | None, Relation | None]:
        """Build the node; (action, rows, the staging table to swap in or None)."""
        node = compiled.node
        adapter = self.adapter
        relation = node.relation
        rows: int | None
        if node.is_seed:
            staging = adapter.staging(relation)
            rows = self._load_seed(node, staging)
            return "loaded seed", rows, staging
        kind = node.config.materialized
        sql = strip_statement(compiled.sql)
        if kind == Materialization.VIEW:
            adapter.create_view(relation, sql)
            return "created view", None, None
        staging = adapter.staging(relation)
        partition = _partition_of(node, adapter.format)
        if kind == Materialization.INCREMENTAL and compiled.is_incremental:
            staged = self._stage_increment(node, sql)
            if staged is not None:
                return _action(node), None, staged.next_version
            sql, action = self._incremental_rows(node, sql)
            adapter.write_table(staging, sql, partition)
            return action, None, staging
        adapter.write_table(staging, sql, partition)
        return "created table", None, staging

    def _stage_increment(self, node: Node, batch_sql: str) -> StagedIncrement | None:
        """The batch staged beside the table, to be published in place (month
        partitions on Parquet, MERGE on Delta/Iceberg), or None: copy on write."""
        from runner.engines import spark_increments

        config = node.config
        valid = _spark_relation(config.valid_keys) if config.valid_keys else None
        staged = spark_increments.stage(
            self.adapter,
            node.relation,
            batch_sql,
            config.incremental_strategy,
            config.unique_key,
            valid,
        )
        if staged is not None:
            with self._lock:
                self._staged[staged.next_version] = staged
        return staged

    def _publish(self, staging: Relation, relation: Relation) -> None:
        from runner.engines import spark_increments

        with self._lock:
            staged = self._staged.pop(staging, None)
        if staged is None:
            self.adapter.swap_in(staging, relation)
        else:
            spark_increments.publish(self.adapter, staged)

    def _discard(self, staging: Relation) -> None:
        from runner.engines import spark_increments

        with self._lock:
            staged = self._staged.pop(staging, None)
        if staged is None:
            self.adapter.drop_relation(staging)
        else:
            spark_increments.discard(self.adapter, staged)

    def _incremental_rows(self, node: Node, batch_sql: str) -> tuple[str, str]:
        """The table's next content (the adapter's copy on write) and the action."""
        config = node.config
        if config.incremental_strategy == "delete+insert":
            valid = _spark_relation(config.valid_keys) if config.valid_keys else None
            sql = self.adapter.delete_insert_sql(node.relation, batch_sql, config.unique_key, valid)
            return sql, _action(node)
        return self.adapter.append_sql(node.relation, batch_sql), _action(node)

    def _load_seed(self, node: Node, staging: Relation) -> int:
        """A seed's CSV, typed by DuckDB as on every target, as the staging table."""
        import duckdb

        from runner.engines.duckdb import DuckDBAdapter
        from runner.materializations import load_csv_table

        folder = self.adapter.location(staging)
        folder.mkdir(parents=True, exist_ok=True)
        with duckdb.connect() as con:
            temporary = Relation("main", "seed")
            path = self.project.settings.project_dir / node.path
            load_csv_table(DuckDBAdapter(con), temporary, path, node.config.column_types)
            con.execute(f"copy {temporary} to '{folder / 'part-0.parquet'}' (format parquet)")
        self.adapter.register(staging)
        return self.adapter.count(f"select * from `{staging.schema}`.`{staging.identifier}`")

    def _record(self, node: Node, compiled: CompiledNode) -> None:
        from runner.engines.spark import now

        if node.config.materialized not in build_state.RELATIONS and not node.is_seed:
            return
        incremental = self.plan.incremental
        uid = node.unique_id
        seen = incremental.seen.get(uid, 0)
        logic = incremental.logic.get(uid, "")
        moment = now()
        with self._lock:
            self._record_state(uid, seen, logic, moment, compiled.is_incremental)

    def _record_state(
        self, uid: str, seen: int, logic: str, moment: datetime, incremental: bool
    ) -> None:
        old = self.state.get(uid)
        if incremental and old is not None and old.full_built_at is not None:
            self.state[uid] = build_state.NodeState(
                seen, logic, old.full_load_id, moment, old.full_built_at
            )
        else:
            self.state[uid] = build_state.NodeState(seen, logic, seen, moment, moment)

    def _run_test_alone(self, test: Node) -> NodeResult:
        wall, start = time.time(), time.perf_counter()
        outcome = run_test(self.adapter, self._sql(test), test)
        return self.plan.test_result(test, outcome, time.perf_counter() - start, wall)

    # -- results ------------------------------------------------------------------

    def _sql(self, node: Node) -> str:
        return strip_statement(self.plan.compiled[node.unique_id].sql)


def run_tests(
    adapter: SparkAdapter, tests: Sequence[tuple[Node, str]], count_of: Relation | None = None
) -> tuple[list[TestOutcome], int | None]:
    """The tests of one relation, fused: one query counts the failing rows of
    every test (and the rows of `count_of`): one Spark job instead of one per
    test. A failing test's first rows are then read on their own. When the
    fused query fails, each test runs alone, so that the one that cannot run is
    named."""
    from runner.engines.spark import name

    parts = (
        [fused_count_sql([test_query(sql, test.config) for test, sql in tests])] if tests else []
    )
    if count_of is not None:
        parts.append(f"select -1 as test_index, count(*) as failures from {name(count_of)}")
    if not parts:
        return [], None
    try:
        rows = adapter.sql("\nunion all\n".join(parts)).collect()
    except Exception:  # noqa: BLE001 - which test failed is found by running each
        outcomes = [run_test(adapter, sql, test) for test, sql in tests]
        total = adapter.count(f"select * from {name(count_of)}") if count_of else None
        return outcomes, total
    counts = {int(row[0]): int(row[1]) for row in rows}
    outcomes = [
        _judged(adapter, test_query(sql, test.config), test, counts[i])
        for i, (test, sql) in enumerate(tests)
    ]
    return outcomes, counts.get(-1)


def _cache_for_tests(adapter: SparkAdapter, node: Node, tests: Sequence[tuple[Node, str]]) -> bool:
    """Cache a view's rows while its tests read them (each test would compute
    the view again); whether it was cached."""
    from runner.engines.spark import name

    if node.config.materialized != Materialization.VIEW or len(tests) < 2:
        return False
    try:
        adapter.sql(f"cache table {name(node.relation)}")
    except Exception:  # noqa: BLE001 - the tests then read the view itself
        return False
    return True


def run_test(adapter: SparkAdapter, sql: str, test: Node) -> TestOutcome:
    """One test query on Spark: count its failing rows and judge them."""
    query = test_query(sql, test.config)
    try:
        return _judged(adapter, query, test, adapter.count(query))
    except Exception as exc:  # noqa: BLE001 - Spark's errors come in many classes
        return TestOutcome(NodeStatus.ERROR, 0, _spark_message(exc))


def _judged(adapter: SparkAdapter, query: str, test: Node, failures: int) -> TestOutcome:
    status = judge(test.config, failures, test.path)
    if status == NodeStatus.PASS:
        return TestOutcome(status, failures)
    try:
        columns, rows = adapter.fetch(query, SAMPLE_ROWS)
    except Exception:  # noqa: BLE001 - the count stands without its sample
        columns, rows = (), []
    return TestOutcome(status, failures, "", columns, tuple(rows))


def _action(node: Node) -> str:
    return "merged into" if node.config.incremental_strategy == "delete+insert" else "inserted into"


def _partition_of(node: Node, file_format: str) -> str | None:
    """The month column a model's Parquet table is partitioned by, so that an
    incremental run can replace only the months it touches."""
    from runner.engines.spark_increments import partition_column

    config = node.config
    if (
        file_format != "parquet"
        or config.materialized != Materialization.INCREMENTAL
        or config.incremental_strategy != "delete+insert"
    ):
        return None
    return partition_column(config.unique_key)


def _key(relation: Relation) -> tuple[str, str]:
    return relation.schema, relation.identifier


def _spark_relation(text: str) -> str:
    from sqlglot import exp

    return exp.to_table(text, dialect="duckdb").sql(dialect="spark")


def _spark_message(exc: BaseException) -> str:
    from runner.transpile import _spark_message as message

    return message(exc).strip()


def _first_line(exc: BaseException) -> str:
    for line in _spark_message(exc).splitlines():
        if line.strip():
            return line.strip()
    return repr(exc)


def _quietly(action: Any) -> None:
    with contextlib.suppress(Exception):  # cleaning up after a failure already reported
        action()


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
