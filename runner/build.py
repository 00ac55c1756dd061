"""A build: plan it, then run it.

`run`, `seed`, `test` and `build` all come here. Planning makes one frozen
`BuildPlan` (the units and their parents, the incremental plan, the compiled
and checked SQL); running it takes the warehouse lock, executes the units,
records what passed, publishes and writes the artifacts.

    result = execute(project, Command.BUILD, RunOptions(select=("+kpi_win_rate",)))

The options of a run are one frozen `RunOptions`, from the command line or
the Python API to `run_results.json`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner import build_state, caches, incremental_tests, state_tables, up_to_date
from runner.engines.base import RelationKind
from runner.errors import CompilationError, ProjectError, WarehouseError
from runner.nodes import Materialization, Node
from runner.planning import Command, Unit, plan_units
from runner.reporting import Reporter
from runner.results import NodeResult, NodeStatus, RunResult, make_result, make_test_result

if TYPE_CHECKING:
    from runner.compile_cache import CompileCache
    from runner.compiling import CompiledNode, Compiler
    from runner.data_tests import TestOutcome
    from runner.engines.base import EngineAdapter
    from runner.engines.duckdb import DuckDBAdapter
    from runner.loaded import LoadedProject
    from runner.project import Project


@dataclass(frozen=True)
class RunOptions:
    """The flags of a run-like command; `load` and `on_bad_rows` are build's."""

    select: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    indirect_selection: str = "eager"
    threads: int | None = None
    full_refresh: bool = False
    fail_fast: bool = False
    store_failures: bool = False
    wait_seconds: float = 0.0
    on_bad_rows: str = "fail"
    load: bool = True

    def artifact_args(self, command: str) -> dict[str, Any]:
        """The `args` of `run_results.json`."""
        return {
            "command": command,
            "select": list(self.select),
            "exclude": list(self.exclude),
            "indirect_selection": self.indirect_selection,
            "threads": self.threads,
            "full_refresh": self.full_refresh,
            "fail_fast": self.fail_fast,
            "store_failures": self.store_failures,
        }


@dataclass(frozen=True)
class IncrementalPlan:
    """What a run does incrementally: the newest raw load, the load each node
    will have seen after the run, the logic digest to record for each relation
    built (see `build_state.versions_after_run`), the models rebuilt in full
    (with the reason), the tests that check only new rows, and the tables
    and incremental models kept as they are (see `up_to_date`)."""

    load_id: int
    seen: Mapping[str, int]
    logic: Mapping[str, str]
    rebuilds: Mapping[str, str]
    tests: incremental_tests.TestPlan
    kept: frozenset[str] = frozenset()
    # `_kpi.node_state` as planned: the loads `last_seen_load_id()` stands for
    states: Mapping[str, state_tables.NodeState] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class BuildPlan:
    """Everything decided before the first node runs."""

    command: Command
    selected: tuple[Node, ...]  # in graph order
    units: Mapping[str, Unit]
    parents: Mapping[str, frozenset[str]]
    incremental: IncrementalPlan
    compiled: Mapping[str, CompiledNode]
    paths: Mapping[str, str]  # compiled SQL files, relative to the project

    @property
    def total(self) -> int:
        return sum(len(u.nodes) for u in self.units.values())

    def result(
        self,
        node: Node,
        status: NodeStatus,
        message: str,
        seconds: float,
        wall: float,
        **details: Any,
    ) -> NodeResult:
        """A node's result, pointing at its compiled SQL file."""
        path = self.paths.get(node.unique_id)
        return make_result(node, status, message, seconds, wall, path, **details)

    def test_result(
        self, test: Node, outcome: TestOutcome, seconds: float, wall: float
    ) -> NodeResult:
        """A test's result from its outcome, pointing at its compiled SQL file."""
        return make_test_result(test, outcome, seconds, wall, self.paths.get(test.unique_id))


def execute(project: Project, command: Command, options: RunOptions) -> RunResult:
    """Plan and run `command` on the project's warehouse."""
    started = time.perf_counter()
    reporter = project.reporter
    selected = tuple(
        project.select(
            options.select, options.exclude, indirect_selection=options.indirect_selection
        )
    )
    units, parents = plan_units(
        project.nodes, {n.unique_id for n in selected}, command, project.loaded.graph
    )
    if not units:
        reporter.warning(f"nothing to {command}: the selection holds no {command}-able nodes.")
    with project.writing(f"kpi {command}", options.wait_seconds) as adapter:
        project.load_warnings = []
        if command == Command.BUILD and options.load:
            # --full-refresh rebuilds models; reloading unchanged raw files
            # is `kpi load --full-refresh`.
            project.load_raw_into(adapter, None, options.on_bad_rows, False)
        relations = adapter.relations()
        if command != Command.SEED and not (command == Command.BUILD and options.load):
            check_raw_tables(project, adapter, relations, units)
        existing = frozenset(k for k, kind in relations.items() if kind == RelationKind.TABLE)
        views = frozenset(k for k, kind in relations.items() if kind == RelationKind.VIEW)
        if command == Command.RUN:
            warn_missing_seeds(project.loaded, reporter, units, existing)
        plan = plan_build(
            project.loaded,
            reporter,
            adapter,
            existing,
            command,
            selected,
            units,
            parents,
            options,
            views,
        )
        results, passed = run_plan(project, adapter, plan, options)
        clean = {r.unique_id for r in results if r.resource_type == "test" and not r.failures}
        record_passes(adapter, plan, passed, clean)
        publish_error: WarehouseError | None = None
        if command == Command.BUILD and project.settings.publish and not _failed(results):
            try:
                publish(adapter, project.settings.publish, reporter)
            except WarehouseError as exc:
                publish_error = exc  # raised once the run's artifacts are written
        tables_after = tables_in(adapter)
    caches.remember_tables(project.settings.target_path, project.settings.warehouse, tables_after)
    result = finish_run(project, command, options, selected, results, relations, plan, started)
    if publish_error is not None:
        raise publish_error
    return result


def finish_run(
    project: Project,
    command: Command,
    options: RunOptions,
    selected: Sequence[Node],
    results: list[NodeResult],
    relations: Mapping[tuple[str, str], str],
    plan: BuildPlan,
    started: float,
) -> RunResult:
    """What every run ends with, on any target: the failure blocks, the stale
    relations, the summary, and `run_results.json` and the manifest."""
    from runner import artifacts

    reporter = project.reporter
    elapsed = time.perf_counter() - started
    for block in reporter.failure_blocks:
        reporter.block("\n" + block)
    stale = stale_relations(results, relations)
    if stale:
        reporter.warning(
            "these relations were not rebuilt and keep their previous version, now "
            "stale: " + ", ".join(stale)
        )
    summary = reporter.summary(elapsed)
    reporter.repeat_warnings(project.load_warnings)
    order = {n.unique_id: i for i, n in enumerate(selected)}
    results.sort(key=lambda r: order.get(r.unique_id, len(order)))
    artifacts.write_json(
        project.settings.target_path / "run_results.json",
        artifacts.run_results(project.loaded, results, elapsed, options.artifact_args(command)),
    )
    project.write_manifest(plan.paths)
    return RunResult(command, results, elapsed, summary, stale)


def check_raw_tables(
    project: Project,
    adapter: EngineAdapter,
    relations: Mapping[tuple[str, str], RelationKind],
    units: Mapping[str, Unit],
) -> None:
    """Before a run that does not load: stop, saying what to do, when the
    raw tables its models read are not the ones the warehouse's last load
    filled. The export's format (and the contract-format files beside a CRM
    export) decides which raw tables the models read, and is found from the
    export folder the command is given (`--raw-dir`, else the configured
    one), not from the warehouse."""
    from runner.raw_contract import table_contracts

    loaded = project.loaded
    contracts = {c.relation.display.lower(): c for c in table_contracts(loaded.sources)}
    if not contracts:
        return
    fmt, export_dir = project.export_format, project.raw_dir
    where = f"the {fmt.name} format ({fmt.how}"
    where += f", from {export_dir})" if export_dir else ")"
    if fmt.contract_tables:
        where += " with contract-format file(s) " + ", ".join(fmt.contract_tables)
    hint = (
        "Name the folder that was loaded, whose files the format is found from "
        "(`--raw-dir DIR`, or `KPI_RAW_DIR=DIR`), or load this one first "
        "(`kpi load DIR`, or `kpi build`, which loads)."
    )
    load_id, filled = state_tables.newest_load(adapter)
    if load_id and not {f.lower() for f in filled} & contracts.keys():
        tables = ", ".join(sorted(filled)[:4]) + (", ..." if len(filled) > 4 else "")
        raise ProjectError(
            f"The warehouse's newest load (load {load_id}) filled {tables}, which the models "
            f"of {where} do not read: it came from an export of another format, and the "
            "models would read raw tables it did not fill.",
            hint=hint,
        )
    read = {
        source.relation.display.lower()
        for unit in units.values()
        for uid in loaded.graph.ancestors(unit.node.unique_id)
        if (source := loaded.sources.get(uid)) is not None
    }
    missing = sorted(
        contracts[r].relation.display
        for r in read & contracts.keys()
        if (contracts[r].relation.schema.lower(), contracts[r].relation.identifier.lower())
        not in relations
    )
    if missing:
        raise ProjectError(
            f"The warehouse has no raw table {', '.join(missing)}, which the models of "
            f"{where} read: that export was not loaded into it.",
            hint=hint,
        )


def warn_missing_seeds(
    loaded: LoadedProject,
    reporter: Reporter,
    units: Mapping[str, Unit],
    existing: frozenset[tuple[str, str]],
) -> None:
    """`kpi run` builds models only: say which seeds they read that the
    warehouse does not hold yet, before those models fail on them."""
    readers: dict[str, list[str]] = {}
    for unit in units.values():
        for parent in loaded.graph.ancestors(unit.node.unique_id):
            seed = loaded.nodes.get(parent)
            if seed is None or not seed.is_seed:
                continue
            relation = seed.relation
            if (relation.schema.lower(), relation.identifier.lower()) not in existing:
                readers.setdefault(seed.name, []).append(unit.node.name)
    for name, models in sorted(readers.items()):
        reporter.warning(
            f"seed {name} is not in the warehouse yet, and {', '.join(sorted(models))} "
            "read it: load it first with `kpi seed` (or run `kpi build`)."
        )


def plan_build(
    loaded: LoadedProject,
    reporter: Reporter,
    adapter: EngineAdapter,
    existing: frozenset[tuple[str, str]],
    command: Command,
    selected: Sequence[Node],
    units: Mapping[str, Unit],
    parents: Mapping[str, set[str]],
    options: RunOptions,
    views: frozenset[tuple[str, str]] = frozenset(),
) -> BuildPlan:
    """Decide the incremental work, then compile and check every query to run
    (`existing`: the warehouse's base tables, `views` its views)."""
    from runner.compile_cache import CompileCache
    from runner.compiling import Compiler

    compile_cache = CompileCache.for_project(loaded)
    incremental = plan_incremental(
        loaded, reporter, adapter, units, options, compile_cache, existing, views
    )
    compiler = Compiler(
        loaded,
        existing,
        options.full_refresh,
        compile_cache,
        frozenset(incremental.rebuilds),
        incremental.tests.new_rows_only,
    )
    wanted = [n for u in units.values() for n in u.nodes]
    wanted += [n for n in selected if n.config.materialized == Materialization.EPHEMERAL]
    compiled, paths = compile_nodes(loaded, compiler, wanted)
    check_sql(loaded, reporter, adapter, compiled, paths)
    if incremental.kept or incremental.tests.unchanged:

        def sql_of(node: Node) -> str:
            done = compiled.get(node.unique_id)
            return done.sql if done is not None else compiler.compile(node).sql

        nodes, graph = loaded.nodes, loaded.graph
        incremental = dataclasses.replace(
            incremental,
            kept=up_to_date.deterministic(incremental.kept, nodes, graph, sql_of),
            tests=dataclasses.replace(
                incremental.tests,
                unchanged=up_to_date.deterministic(
                    incremental.tests.unchanged, nodes, graph, sql_of
                ),
            ),
        )
    return BuildPlan(
        command,
        tuple(selected),
        units,
        {key: frozenset(p) for key, p in parents.items()},
        incremental,
        compiled,
        paths,
    )


def last_seconds(plan: BuildPlan, target_path: Path) -> dict[str, float]:
    """How long each unit took in the last run (`run_results.json`), where it
    ran: the scheduler starts the longest paths of work first."""
    from runner import artifacts

    last = artifacts.last_results(target_path)
    seconds = {}
    for key, unit in plan.units.items():
        times = [last[n.unique_id].get("execution_time") for n in unit.nodes if n.unique_id in last]
        known = [float(t) for t in times if isinstance(t, int | float)]
        if known:
            seconds[key] = sum(known)
    return seconds


def run_plan(
    project: Project, adapter: EngineAdapter, plan: BuildPlan, options: RunOptions
) -> tuple[list[NodeResult], set[str]]:
    """Run the planned units; their results and the tests that passed on
    committed data."""
    from runner.execution import Executor

    settings = project.settings
    reporter = project.reporter
    for schema in sorted({u.node.config.schema for u in plan.units.values() if not u.node.is_test}):
        adapter.create_schema(schema)
    threads = options.threads or settings.threads
    reporter.total = plan.total
    reporter.info(f"Running {plan.total} node(s) with {threads} thread(s).")
    executor = Executor(
        adapter,
        plan,
        options,
        reporter,
        threads=threads,
        project_dir=settings.project_dir,
        failures_dir=settings.target_path / "failures",
        seconds=last_seconds(plan, settings.target_path),
    )
    try:
        results = executor.execute()
    except KeyboardInterrupt:
        executor.interrupt()
        raise
    return results, executor.passed_tests


def record_passes(
    adapter: EngineAdapter, plan: BuildPlan, passed: set[str], clean: set[str]
) -> None:
    """Remember, per test, the load it passed on: every pass of a test that
    may check new rows only, a pass with no failing row (`clean`) of any other."""
    tests = plan.incremental.tests
    passes = {
        uid: tests.digests[uid]
        for uid in passed
        if uid in tests.digests and (uid not in tests.clean_only or uid in clean)
    }
    if passes:
        state_tables.ensure(adapter, state_tables.NODE_STATE)
        state_tables.record_passes(adapter, passes, plan.incremental.seen)


def plan_incremental(
    loaded: LoadedProject,
    reporter: Reporter,
    adapter: EngineAdapter,
    units: Mapping[str, Unit],
    options: RunOptions,
    compile_cache: CompileCache,
    existing: frozenset[tuple[str, str]] = frozenset(),
    views: frozenset[tuple[str, str]] = frozenset(),
) -> IncrementalPlan:
    """Which incremental models rebuild in full (and why), which tests may
    check only the rows loaded since they last passed, and which relations
    and tests are up to date (`existing`: the warehouse's base tables, `views`
    its views)."""
    nodes = loaded.nodes
    incremental = [
        u.node for u in units.values() if u.node.config.materialized == Materialization.INCREMENTAL
    ]
    building = {u.node.unique_id for u in units.values()}
    if any(u.node.config.materialized in build_state.RELATIONS for u in units.values()):
        state_tables.ensure(adapter, state_tables.NODE_STATE, state_tables.TABLE_CHANGES)
    state = state_tables.read_node_states(adapter)
    definitions = {
        uid: node.checksum if node.is_seed else compile_cache.definition(node)
        for uid, node in nodes.items()
        if not node.is_test
    }
    versions, record = build_state.versions_after_run(
        nodes, loaded.graph, building, state, definitions
    )
    logic = {node.unique_id: versions[node.unique_id] for node in incremental}
    rebuilds = build_state.full_rebuilds(adapter, nodes, loaded.sources, logic, loaded.graph)
    for uid, reason in sorted(rebuilds.items()):
        reporter.info(f"Rebuilding {nodes[uid].name} in full: {reason}.")
    if options.full_refresh:
        rebuilds.update({uid: "--full-refresh" for uid in logic})
    changes = {} if options.full_refresh else state_tables.last_changes(adapter)
    tests = incremental_tests.plan_tests(
        adapter,
        nodes,
        loaded.sources,
        [n for u in units.values() for n in u.nodes if n.is_test],
        compile_cache.definition,
        versions,
        frozenset(rebuilds),
        incremental_tests.builtin_tests(loaded.macro_sources),
        loaded.graph,
        changes,
    )
    others = [
        n for u in units.values() for n in u.nodes if n.is_test and n.unique_id not in tests.digests
    ]
    other_digests = {
        t.unique_id: up_to_date.test_digest(t, compile_cache.definition(t), versions)
        for t in others
    }
    tests = dataclasses.replace(
        tests,
        digests={**tests.digests, **other_digests},
        unchanged=up_to_date.unchanged_tests(
            others, nodes, loaded.sources, loaded.graph, state, other_digests, rebuilds, changes
        ),
        clean_only=frozenset(other_digests),
    )
    load_id = state_tables.current_load_id(adapter)
    seen = build_state.seen_after_run(nodes, loaded.graph, building, state, load_id)
    kept = up_to_date.kept_relations(
        nodes, loaded.sources, loaded.graph, building, state, record, rebuilds, existing, changes
    )
    if not options.full_refresh:
        kept |= up_to_date.kept_views(nodes, building, state, record, views)
    return IncrementalPlan(load_id, seen, record, rebuilds, tests, kept, state)


def compile_nodes(
    loaded: LoadedProject, compiler: Compiler, nodes: Sequence[Node]
) -> tuple[dict[str, CompiledNode], dict[str, str]]:
    """Compile `nodes` and write their SQL to `target/compiled/`."""
    from runner.compiling import write_compiled

    settings = loaded.settings
    compiled: dict[str, CompiledNode] = {}
    paths: dict[str, str] = {}
    for node in nodes:
        result = compiler.compile(node)
        compiled[node.unique_id] = result
        if node.is_seed:
            continue
        out = write_compiled(settings.target_path, result)
        paths[node.unique_id] = _relative(out, settings.project_dir)
    if compiler.cache is not None:
        compiler.cache.save()
    return compiled, paths


def check_sql(
    loaded: LoadedProject,
    reporter: Reporter,
    adapter: EngineAdapter | None,
    compiled: Mapping[str, CompiledNode],
    paths: Mapping[str, str],
) -> None:
    """The engine parses every query (once: answers are cached; `adapter` None
    means an in-memory DuckDB when one is needed); sqlglot lists what each reads."""
    from runner import sql_checks

    cache = sql_checks.SqlCache(loaded.settings.target_path / "sql_cache.json")
    for uid, item in compiled.items():
        if item.node.is_seed or item.node.config.materialized == Materialization.EPHEMERAL:
            continue
        error = cache.syntax_error(adapter, item.sql)
        if error:
            message, line, column = error
            source = item.node.yml_path or item.node.path
            raise CompilationError(
                f"{item.node.resource_type} '{item.node.name}' ({source}) "
                f"does not parse: {message}.",
                path=paths.get(uid, item.node.path),
                line=line,
                column=column,
                hint="Line and column are those of the compiled SQL; nothing was run.",
            )
    for item in compiled.values():
        if not item.node.is_model or item.node.config.materialized == Materialization.EPHEMERAL:
            continue
        tables = cache.tables_read(item.sql)
        for table in sql_checks.undeclared_reads(tables, item.reads):
            reporter.warning(
                f"{item.node.path}: reads {table} without ref() or source(); "
                "the build order cannot account for it."
            )
    with contextlib.suppress(OSError):
        cache.save()


def publish(adapter: DuckDBAdapter, path: Path, reporter: Reporter) -> None:
    """Write the marts to a new file and rename it over `path`."""
    from runner.publish import publish_marts

    published = publish_marts(adapter, path)
    rows = sum(published.tables.values())
    reporter.info(
        f"Published {len(published.tables)} mart table(s), {rows:,} row(s), to {path} "
        f"in {published.seconds:.2f}s."
    )


def tables_now(loaded: LoadedProject) -> frozenset[tuple[str, str]]:
    """The warehouse's tables: from the note of the last run while the file
    is the version it was noted at, else read from the file (read-only)."""
    from runner.engines.duckdb import DuckDBAdapter

    settings = loaded.settings
    noted = caches.remembered_tables(settings.target_path, settings.warehouse)
    if noted is not None:
        return noted
    with contextlib.suppress(Exception):
        adapter = DuckDBAdapter.open(settings.warehouse, read_only=True)
        try:
            return tables_in(adapter)
        finally:
            adapter.close()
    return frozenset()


def tables_in(adapter: EngineAdapter) -> frozenset[tuple[str, str]]:
    return frozenset(k for k, kind in adapter.relations().items() if kind == RelationKind.TABLE)


def stale_relations(
    results: Sequence[NodeResult], relations: Mapping[tuple[str, str], str]
) -> list[str]:
    """Relations that failed or were skipped but exist from an earlier build."""
    stale = []
    for result in results:
        if result.relation and result.status in (NodeStatus.ERROR, NodeStatus.SKIPPED):
            schema, _, name = result.relation.partition(".")
            if (schema.lower(), name.lower()) in relations:
                stale.append(result.relation)
    return sorted(stale)


def _failed(results: Sequence[NodeResult]) -> bool:
    return any(r.status.failed for r in results)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
