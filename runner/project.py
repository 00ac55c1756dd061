"""The facade: one `Project` object that every command goes through.

    project = Project.load("path/to/project", warehouse="/tmp/w.duckdb")
    result = project.build(select=["+kpi_win_rate"])
    assert result.exit_code == 0

The CLI is a thin shell over these methods; tests call them directly.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner import build_state, incremental_tests, parse_cache
from runner.crm_formats import ExportFormat, load_notes, resolve_format
from runner.errors import CompilationError, ProjectError, WarehouseError
from runner.graph import Graph
from runner.nodes import Node
from runner.reporting import Reporter
from runner.results import NodeStatus
from runner.selection import select as select_nodes
from runner.settings import Settings, load_settings
from runner.warehouse import connect, ensure_schemas, exclusive_lock, existing_relations

if TYPE_CHECKING:
    import duckdb

    from runner.compile_cache import CompileCache
    from runner.compiling import CompiledNode, Compiler
    from runner.loaded import LoadedProject
    from runner.metrics import MetricsResult
    from runner.raw_load import LoadReport
    from runner.report import ReportInfo
    from runner.results import NodeResult

# Modules that need DuckDB, sqlglot or Jinja are imported inside the methods
# that use them, so that `kpi ls` starts fast.

TABLES_FILE = "warehouse_tables.json"


@dataclass
class RunResult:
    """The outcome of run, seed, test or build."""

    command: str
    results: list[NodeResult] = field(default_factory=list)
    elapsed: float = 0.0
    summary: str = ""
    stale: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if _failed(self.results) else 0

    def by_name(self) -> dict[str, NodeResult]:
        return {r.name: r for r in self.results}

    def statuses(self) -> dict[str, str]:
        return {r.name: r.status for r in self.results}


@dataclass(frozen=True)
class IncrementalPlan:
    """What a run does incrementally: the newest raw load, the load each node
    will have seen after the run, the logic digest to record for each relation
    built (see `build_state.versions_after_run`), the
    models rebuilt in full (with the reason), and the tests that check only
    new rows."""

    load_id: int
    seen: dict[str, int]
    logic: dict[str, str]
    rebuilds: dict[str, str]
    tests: incremental_tests.TestPlan


@dataclass(frozen=True)
class RunOptions:
    """The flags every run-like command shares."""

    select: Sequence[str] = ()
    exclude: Sequence[str] = ()
    threads: int | None = None
    full_refresh: bool = False
    fail_fast: bool = False
    store_failures: bool = False
    wait_seconds: float = 0.0
    on_bad_rows: str = "fail"
    load: bool = True


class Project:
    """A loaded project and the warehouse it builds."""

    def __init__(
        self,
        loaded: LoadedProject,
        reporter: Reporter | None = None,
        raw_dir: str | Path | None = None,
        export_format: ExportFormat | None = None,
        encoding: str | None = None,
    ) -> None:
        self.loaded = loaded
        self.reporter = reporter or Reporter()
        self.raw_dir_override = raw_dir
        self.export_format = export_format or ExportFormat("contract", "default")
        self.encoding = encoding
        self.load_warnings: list[str] = []  # repeated at the end of a load or build
        for warning in loaded.warnings:
            self.reporter.warning(warning)

    @classmethod
    def load(
        cls,
        project_dir: str | Path = ".",
        *,
        warehouse: str | Path | None = None,
        vars: Mapping[str, Any] | None = None,
        raw_dir: str | Path | None = None,
        reporter: Reporter | None = None,
        target_path: str | Path | None = None,
        crm: str | None = None,
        encoding: str | None = None,
    ) -> Project:
        """Parse the project; `raw_dir` overrides where `build` loads raw data from,
        `target_path` where compiled SQL, artifacts and caches go, `crm` forces the
        export's format (else `[tool.kpi] crm`, else detected from the export's
        files), `encoding` the encoding of every CSV file (else UTF-8, falling
        back to Windows-1252 for CRM exports)."""
        from runner.raw_load import export_dir_from

        settings = load_settings(Path(project_dir), warehouse, target_path)
        export_dir = export_dir_from(raw_dir, settings.raw_dir, settings.project_dir)
        export_format = resolve_format(crm, settings.crm, export_dir)
        cli_vars = {**export_format.as_vars(), **dict(vars or {})}
        if export_format.corporate_currency and "reporting_currency" not in {
            **settings.vars,
            **cli_vars,
        }:
            cli_vars["reporting_currency"] = export_format.corporate_currency
        digest = parse_cache.project_digest(settings, cli_vars)
        loaded = parse_cache.load(settings, digest)
        if loaded is None:
            from runner.parsing import load_project

            loaded = replace(load_project(settings, cli_vars), digest=digest)
            parse_cache.save(settings, digest, loaded)
        return cls(loaded, reporter, raw_dir, export_format, encoding)

    @property
    def settings(self) -> Settings:
        return self.loaded.settings

    @property
    def nodes(self) -> Mapping[str, Node]:
        return self.loaded.nodes

    # -- selection and compilation -------------------------------------------

    def select(
        self,
        select: Sequence[str] = (),
        exclude: Sequence[str] = (),
        resource_types: Sequence[str] | None = None,
    ) -> list[Node]:
        """The selected nodes, in dependency order (ties by name)."""
        graph = self._graph()
        selection = select_nodes(
            self.nodes, self.loaded.sources, graph, select, exclude, resource_types
        )
        for term in selection.unmatched:
            self.reporter.warning(f"the selector '{term}' matched nothing.")
        order = graph.topological_order()
        chosen = selection.unique_ids
        return [self.nodes[uid] for uid in order if uid in chosen]

    def _graph(self) -> Graph:
        parents: dict[str, Sequence[str]] = {uid: n.depends_on for uid, n in self.nodes.items()}
        parents.update({uid: () for uid in self.loaded.sources})
        return Graph(parents)

    def ls(
        self,
        select: Sequence[str] = (),
        exclude: Sequence[str] = (),
        resource_types: Sequence[str] | None = None,
    ) -> list[Node]:
        nodes = self.select(select, exclude, resource_types)
        self.write_manifest()
        return nodes

    def compile(
        self, select: Sequence[str] = (), exclude: Sequence[str] = (), full_refresh: bool = False
    ) -> dict[str, CompiledNode]:
        """Render the selected nodes to `target/compiled/` and check their SQL.

        `is_incremental()` needs to know which tables exist: the warehouse is
        opened (read-only) only when an incremental model is selected.
        """
        from runner.compile_cache import CompileCache
        from runner.compiling import Compiler

        nodes = self.select(select, exclude)
        existing: frozenset[tuple[str, str]] = frozenset()
        incremental = any(n.config.materialized == "incremental" for n in nodes)
        if incremental and self.settings.warehouse.exists():
            existing = self._tables_now()
        compiler = Compiler(
            self.loaded, existing, full_refresh, CompileCache.for_project(self.loaded)
        )
        compiled, paths = self._compile_nodes(compiler, nodes)
        self._check_sql(None, compiled, paths)
        self.write_manifest(paths)
        return compiled

    def _compile_nodes(
        self, compiler: Compiler, nodes: Sequence[Node]
    ) -> tuple[dict[str, CompiledNode], dict[str, str]]:
        from runner.compiling import write_compiled

        compiled: dict[str, CompiledNode] = {}
        paths: dict[str, str] = {}
        for node in nodes:
            result = compiler.compile(node)
            compiled[node.unique_id] = result
            if node.is_seed:
                continue
            out = write_compiled(self.settings.target_path, result)
            paths[node.unique_id] = _relative(out, self.settings.project_dir)
        if compiler.cache is not None:
            compiler.cache.save()
        return compiled, paths

    def _check_sql(
        self,
        con: duckdb.DuckDBPyConnection | None,
        compiled: Mapping[str, CompiledNode],
        paths: Mapping[str, str],
    ) -> None:
        """DuckDB parses every query (once: answers are cached; `con` None means
        an in-memory DuckDB when one is needed); sqlglot lists what each reads."""
        from runner import sql_checks

        cache = sql_checks.SqlCache(self.settings.target_path / "sql_cache.json")
        for uid, item in compiled.items():
            if item.node.is_seed or item.node.config.materialized == "ephemeral":
                continue
            error = cache.syntax_error(con, item.sql)
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
            if not item.node.is_model or item.node.config.materialized == "ephemeral":
                continue
            tables = cache.tables_read(item.sql)
            for table in sql_checks.undeclared_reads(tables, item.reads):
                self.reporter.warning(
                    f"{item.node.path}: reads {table} without ref() or source(); "
                    "the build order cannot account for it."
                )
        with contextlib.suppress(OSError):
            cache.save()

    def write_manifest(self, compiled_paths: Mapping[str, str] | None = None) -> None:
        from runner import artifacts

        artifacts.write_json(
            self.settings.target_path / "manifest.json",
            artifacts.manifest(self.loaded, compiled_paths),
        )

    # -- loading raw data --------------------------------------------------------

    @property
    def raw_dir(self) -> Path | None:
        """`raw_dir` given to `load`, else `KPI_RAW_DIR`, else `[tool.kpi] raw_dir`."""
        from runner.raw_load import export_dir_from

        return export_dir_from(
            self.raw_dir_override, self.settings.raw_dir, self.settings.project_dir
        )

    def load_raw(
        self,
        raw_dir: str | Path | None = None,
        *,
        on_bad_rows: str = "fail",
        full_refresh: bool = False,
        wait_seconds: float = 0.0,
    ) -> LoadReport:
        """Load a raw export into the `raw` schema (only changed files)."""
        with self.writing("kpi load", wait_seconds) as con:
            report = self._load_raw(con, raw_dir, on_bad_rows, full_refresh)
        self.reporter.repeat_warnings(self.load_warnings)
        return report

    def _load_raw(
        self,
        con: duckdb.DuckDBPyConnection,
        raw_dir: str | Path | None,
        on_bad_rows: str,
        full_refresh: bool,
    ) -> LoadReport:
        from runner.raw_contract import table_contracts
        from runner.raw_load import LoadReport, describe_report, load_export

        contracts = table_contracts(self.loaded.sources)
        export_dir = Path(raw_dir) if raw_dir else self.raw_dir
        if not contracts:
            return LoadReport(export_dir or self.settings.project_dir)
        if export_dir is None:
            raise ProjectError(
                "no raw export to load: the project has sources marked load_from_export.",
                hint="Pass --raw-dir DIR, set KPI_RAW_DIR, or set raw_dir in [tool.kpi].",
            )
        self.reporter.info(f"Loading the raw export in {export_dir}")
        self.reporter.info(self.export_format.describe())
        for text in self.export_format.missing_text():
            self.reporter.warning(text)
        report = load_export(
            con,
            export_dir,
            contracts,
            on_bad_rows=on_bad_rows,
            force=full_refresh,
            encoding=self.encoding,
        )
        notes = load_notes(con, self.export_format, contracts)
        self.load_warnings = [*self.export_format.missing_text(), *report.warnings, *notes]
        for warning in report.warnings:
            self.reporter.warning(warning)
        for line in describe_report(report):
            self.reporter.info(line)
        for note in notes:
            self.reporter.info(f"  {note}")
        if report.rejected:
            self.reporter.warning(
                f"{report.rejected:,} row(s) rejected and kept in raw.rejected_rows:\n"
                + report.rejection_text()
            )
        self.reporter.info(f"Loaded {report.rows:,} row(s) in {report.seconds:.2f}s.")
        return report

    # -- commands that run ----------------------------------------------------

    def run(self, **options: Any) -> RunResult:
        return self._execute("run", RunOptions(**options))

    def seed(self, **options: Any) -> RunResult:
        return self._execute("seed", RunOptions(**options))

    def test(self, **options: Any) -> RunResult:
        return self._execute("test", RunOptions(**options))

    def build(self, **options: Any) -> RunResult:
        return self._execute("build", RunOptions(**options))

    @contextlib.contextmanager
    def writing(
        self, command: str, wait_seconds: float = 0.0
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """Lock the warehouse and open it for writing, waiting up to
        `wait_seconds` in all for another writer and for readers to let go."""
        deadline = time.monotonic() + wait_seconds
        with exclusive_lock(self.settings.warehouse, command, wait_seconds):
            con = connect(
                self.settings.warehouse,
                settings=self.settings.duckdb_settings,
                wait_seconds=max(0.0, deadline - time.monotonic()),
            )
            try:
                yield con
            finally:
                con.close()

    def _execute(self, command: str, options: RunOptions) -> RunResult:
        from runner import artifacts
        from runner.compile_cache import CompileCache
        from runner.compiling import Compiler
        from runner.execution import ExecutionOptions, Executor
        from runner.planning import plan_units

        started = time.perf_counter()
        nodes = self.select(options.select, options.exclude)
        selected = {n.unique_id for n in nodes}
        units, parents = plan_units(self.nodes, selected, command)
        if not units:
            self.reporter.warning(
                f"nothing to {command}: the selection holds no {command}-able nodes."
            )
        with self.writing(f"kpi {command}", options.wait_seconds) as con:
            self.load_warnings = []
            if command == "build" and options.load:
                # --full-refresh rebuilds models; reloading unchanged raw files
                # is `kpi load --full-refresh`.
                self._load_raw(con, None, options.on_bad_rows, False)
            relations = existing_relations(con)
            existing = frozenset(k for k, kind in relations.items() if kind == "BASE TABLE")
            compile_cache = CompileCache.for_project(self.loaded)
            plan = self._plan_incremental(con, units, options, compile_cache)
            compiler = Compiler(
                self.loaded,
                existing,
                options.full_refresh,
                compile_cache,
                frozenset(plan.rebuilds),
                plan.tests.new_rows_only,
            )
            wanted = [u.node for u in units.values()] + [t for u in units.values() for t in u.tests]
            wanted += [n for n in nodes if n.config.materialized == "ephemeral"]
            compiled, paths = self._compile_nodes(compiler, wanted)
            self._check_sql(con, compiled, paths)
            ensure_schemas(
                con, {u.node.config.schema for u in units.values() if not u.node.is_test}
            )
            total = sum(1 + len(u.tests) for u in units.values())
            self.reporter.total = total
            self.reporter.info(f"Running {total} node(s) with {self._threads(options)} thread(s).")
            executor = Executor(
                con,
                compiled,
                self.reporter,
                ExecutionOptions(
                    threads=self._threads(options),
                    fail_fast=options.fail_fast,
                    store_failures=options.store_failures,
                    full_refresh=options.full_refresh,
                    failures_dir=self.settings.target_path / "failures",
                    seen=plan.seen,
                    logic=plan.logic,
                ),
                self.settings.project_dir,
                paths,
            )
            try:
                results = executor.execute(units, parents)
            except KeyboardInterrupt:
                executor.interrupt()
                raise
            passed = {
                uid: plan.tests.digests[uid]
                for uid in executor.passed_tests
                if uid in plan.tests.digests
            }
            if passed:
                build_state.ensure_tables(con)
                build_state.record_passes(con, passed, plan.seen)
            publish_error: WarehouseError | None = None
            if command == "build" and self.settings.publish and not _failed(results):
                try:
                    self._publish(con, self.settings.publish)
                except WarehouseError as exc:
                    publish_error = exc  # raised once the run's artifacts are written
            tables_after = _tables(con)
        self._remember_tables(tables_after)
        elapsed = time.perf_counter() - started
        for block in self.reporter.failure_blocks:
            self.reporter.block("\n" + block)
        stale = _stale(results, relations)
        if stale:
            self.reporter.warning(
                "these relations were not rebuilt and keep their previous version, now "
                "stale: " + ", ".join(stale)
            )
        summary = self.reporter.summary(elapsed)
        self.reporter.repeat_warnings(self.load_warnings)
        order = {uid: i for i, uid in enumerate(n.unique_id for n in nodes)}
        results.sort(key=lambda r: order.get(r.unique_id, len(order)))
        artifacts.write_json(
            self.settings.target_path / "run_results.json",
            artifacts.run_results(
                self.loaded, results, elapsed, {"command": command, **_args(options)}
            ),
        )
        self.write_manifest(paths)
        if publish_error is not None:
            raise publish_error
        return RunResult(command, results, elapsed, summary, stale)

    def _plan_incremental(
        self,
        con: duckdb.DuckDBPyConnection,
        units: Mapping[str, Any],
        options: RunOptions,
        compile_cache: CompileCache,
    ) -> IncrementalPlan:
        """Which incremental models rebuild in full (and why), and which tests
        may check only the rows loaded since they last passed."""
        incremental = [
            u.node for u in units.values() if u.node.config.materialized == "incremental"
        ]
        building = {u.node.unique_id for u in units.values()}
        if any(u.node.config.materialized in build_state.RELATIONS for u in units.values()):
            build_state.ensure_tables(con)
        state = build_state.read_state(con)
        definitions = {
            uid: node.checksum if node.is_seed else compile_cache.key(node, False)
            for uid, node in self.nodes.items()
            if not node.is_test
        }
        versions, record = build_state.versions_after_run(
            self.nodes, self.loaded.sources, building, state, definitions
        )
        logic = {node.unique_id: versions[node.unique_id] for node in incremental}
        rebuilds = build_state.full_rebuilds(con, self.nodes, self.loaded.sources, logic)
        for uid, reason in sorted(rebuilds.items()):
            self.reporter.info(f"Rebuilding {self.nodes[uid].name} in full: {reason}.")
        if options.full_refresh:
            rebuilds.update({uid: "--full-refresh" for uid in logic})
        tests = incremental_tests.plan_tests(
            con,
            self.nodes,
            self.loaded.sources,
            [n for u in units.values() for n in [u.node, *u.tests] if n.is_test],
            lambda node: compile_cache.key(node, False),
            versions,
            frozenset(rebuilds),
            incremental_tests.builtin_tests(self.loaded.macro_sources),
        )
        load_id = build_state.current_load_id(con)
        seen = build_state.seen_after_run(self.nodes, self.loaded.sources, building, state, load_id)
        return IncrementalPlan(load_id, seen, record, rebuilds, tests)

    def _publish(self, con: duckdb.DuckDBPyConnection, path: Path) -> None:
        """Write the marts to a new file and rename it over `path`."""
        from runner.publish import publish_marts

        published = publish_marts(con, path)
        rows = sum(published.tables.values())
        self.reporter.info(
            f"Published {len(published.tables)} mart table(s), {rows:,} row(s), to {path} "
            f"in {published.seconds:.2f}s."
        )

    def _remember_tables(self, tables: frozenset[tuple[str, str]]) -> None:
        """Note which tables the warehouse holds, as of its file's current
        state, so that `compile` need not open it while nothing changed."""
        from runner import artifacts

        with contextlib.suppress(OSError):
            stat = self.settings.warehouse.stat()
            document = {
                "warehouse": str(self.settings.warehouse),
                "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns,
                "tables": sorted(tables),
            }
            artifacts.write_json(self.settings.target_path / TABLES_FILE, document)

    def _tables_now(self) -> frozenset[tuple[str, str]]:
        """The warehouse's tables: from the note of the last run while the file
        is unchanged since, else read from the file (read-only)."""
        import json

        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            stat = self.settings.warehouse.stat()
            note = json.loads((self.settings.target_path / TABLES_FILE).read_text("utf-8"))
            if (note["warehouse"], note["size"], note["mtime_ns"]) == (
                str(self.settings.warehouse),
                stat.st_size,
                stat.st_mtime_ns,
            ):
                return frozenset((s, t) for s, t in note["tables"])
        with contextlib.suppress(Exception):
            con = connect(self.settings.warehouse, read_only=True)
            try:
                return _tables(con)
            finally:
                con.close()
        return frozenset()

    def _threads(self, options: RunOptions) -> int:
        return options.threads or self.settings.threads

    # -- reading --------------------------------------------------------------

    def show(
        self,
        model: str | None = None,
        inline: str | None = None,
        limit: int = 5,
        wait_seconds: float = 0.0,
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Columns and first rows of a model or of an inline query (read-only)."""
        if (model is None) == (inline is None):
            raise ProjectError("show needs a model name or --inline SQL, not both.")
        from runner.compiling import Compiler

        if model is not None:
            self.loaded.node_by_name(model)  # a clear error for an unknown name
            inline = f"select * from {{{{ ref('{model}') }}}}"
        sql = Compiler(self.loaded).compile_inline(inline or "")
        con = connect(
            self.settings.warehouse,
            read_only=True,
            settings=self.settings.duckdb_settings,
            wait_seconds=wait_seconds,
        )
        try:
            import duckdb

            try:
                result = con.execute(f"select * from (\n{sql}\n) as kpi_show limit {int(limit)}")
            except duckdb.Error as exc:
                raise ProjectError(f"the query failed: {str(exc).strip()}") from exc
            columns = [d[0] for d in result.description or ()]
            return columns, result.fetchall()
        finally:
            con.close()

    def report(
        self,
        out: str | Path | None = None,
        currency: str | None = None,
        wait_seconds: float = 0.0,
    ) -> ReportInfo:
        """Write the KPI report page (default `target/report/index.html`) from
        the current marts: the published file when there is one, else the
        warehouse (read-only)."""
        from runner.report import write_report

        path = Path(out) if out else self.settings.target_path / "report" / "index.html"
        published = self.settings.publish
        if published is not None and published.exists():
            source, schema = published, "main"
        else:
            source, schema = self.settings.warehouse, "marts"
        con = connect(source, read_only=True, wait_seconds=wait_seconds)
        try:
            # the marts' money is in the reporting currency when one is set
            unit = currency or self.loaded.vars.get("reporting_currency") or "USD"
            info = write_report(con, path, schema, str(unit))
        finally:
            con.close()
        self.reporter.info(
            f"Wrote the report ({info.bytes / 1024:,.0f} KB, {info.months} months) to {path}."
        )
        return info

    # -- docs -------------------------------------------------------------------

    def docs_generate(self, out_dir: str | Path | None = None) -> DocsInfo:
        """Write the docs site (default `target/docs/index.html`): every node,
        its compiled SQL (from `target/compiled/`, compiled first where it is
        missing), its last status, and the column lineage of every model."""
        from runner import docs_site

        started = time.perf_counter()
        out = Path(out_dir) if out_dir else self.settings.target_path / "docs"
        sql = docs_site.compiled_sql(self.loaded)
        if len(sql) < sum(1 for n in self.nodes.values() if not n.is_seed):
            compiled = self.compile()
            sql.update({uid: c.sql for uid, c in compiled.items() if not c.node.is_seed})
        columns = docs_site.warehouse_columns(self.settings.warehouse)
        lineage = docs_site.models_lineage(self.loaded, sql, columns)
        for uid, error in sorted(lineage.errors.items()):
            self.reporter.warning(f"{self.nodes[uid].path}: no column lineage ({error}).")
        statuses = docs_site.last_statuses(self.settings.target_path)
        data = docs_site.docs_data(self.loaded, sql, statuses, columns, lineage)
        index = docs_site.write_site(out, data)
        seconds = time.perf_counter() - started
        self.reporter.info(
            f"Wrote the docs of {len(data['nodes'])} node(s) to {index} in {seconds:.2f}s."
        )
        return DocsInfo(index, len(data["nodes"]), seconds)

    def metrics(
        self,
        names: Sequence[str],
        *,
        by: str = "company",
        grain: str = "month",
        start: str | None = None,
        end: str | None = None,
        run: bool = True,
        wait_seconds: float = 0.0,
    ) -> MetricsResult:
        """Metrics by company, team or rep over a grain, from the marts
        (KPI_SPEC section 5): the SQL, and with `run` its rows (read-only).

            project.metrics(["win_rate"], by="team", grain="fiscal_quarter",
                            start="2025-01", end="2025-12")
        """
        from runner.metrics import MetricsQuery, MetricsResult, metrics_sql

        query = MetricsQuery(tuple(names), by, grain, start, end)
        marts = {m.mart for m in self.loaded.metrics.values()} | {"dim_months"}
        relations = {
            name: str(self.loaded.node_by_name(name, ("model",)).relation) for name in marts
        }
        sql, formats = metrics_sql(query, self.loaded.metrics, relations)
        if not run:
            return MetricsResult(sql, formats=formats)
        con = connect(
            self.settings.warehouse,
            read_only=True,
            settings=self.settings.duckdb_settings,
            wait_seconds=wait_seconds,
        )
        try:
            import duckdb

            try:
                result = con.execute(sql)
            except duckdb.CatalogException as exc:
                first_line = str(exc).strip().splitlines()[0]
                raise ProjectError(
                    f"the warehouse {self.settings.warehouse} lacks a table the metrics "
                    f"read ({first_line}).",
                    hint="Run `kpi build` first.",
                ) from exc
            except duckdb.Error as exc:
                raise ProjectError(f"the metrics query failed: {str(exc).strip()}") from exc
            columns = tuple(d[0] for d in result.description or ())
            return MetricsResult(sql, columns, tuple(result.fetchall()), formats)
        finally:
            con.close()


@dataclass(frozen=True)
class DocsInfo:
    """What `docs_generate` wrote."""

    index: Path
    nodes: int
    seconds: float


# Everything the runner writes into the target folder, and nothing else.
TARGET_ENTRIES = frozenset(
    {
        "compiled",
        "failures",
        "jinja_cache",
        "docs",
        "report",
        "manifest.json",
        "run_results.json",
        "parse_cache.pickle",
        "compile_cache.pickle",
        "sql_cache.json",
        "column_lineage_cache.json",  # docs_site.LINEAGE_CACHE
        TABLES_FILE,
        "screenshots",  # the browser tests' pictures of the docs site and the report
    }
)


def clean_target(settings: Settings) -> Path | None:
    """Remove what the runner wrote into the target folder (compiled SQL,
    artifacts, caches), then the folder itself when nothing else is left; the
    warehouse stays. A folder that holds anything else (a warehouse, an
    export: `--target-path` pointed at the wrong folder) is refused whole."""
    target = settings.target_path
    if not target.is_dir():
        return None
    entries = sorted(target.iterdir())
    foreign = [e.name for e in entries if not _written_by_runner(e.name)]
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise ProjectError(
            f"the target folder holds files the runner did not write ({shown}); "
            "nothing was deleted.",
            path=target,
            hint="Check --target-path / KPI_TARGET_PATH: it should name a folder of its own, "
            "such as target/.",
        )
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    with contextlib.suppress(OSError):
        target.rmdir()
    return target


def _written_by_runner(name: str) -> bool:
    """A name the runner writes into the target folder, or the temporary file
    it writes one through (`manifest.jsonk2x9`, `parse_cache.tmp`)."""
    return any(
        name == entry
        or ("." in entry and (name.startswith(entry) or name == Path(entry).stem + ".tmp"))
        for entry in TARGET_ENTRIES
    )


def _failed(results: Sequence[NodeResult]) -> bool:
    return any(r.status.failed for r in results)


def _tables(con: duckdb.DuckDBPyConnection) -> frozenset[tuple[str, str]]:
    return frozenset(k for k, kind in existing_relations(con).items() if kind == "BASE TABLE")


def _stale(results: Sequence[NodeResult], relations: Mapping[tuple[str, str], str]) -> list[str]:
    """Relations that failed or were skipped but exist from an earlier build."""
    stale = []
    for result in results:
        if result.relation and result.status in (NodeStatus.ERROR, NodeStatus.SKIPPED):
            schema, _, name = result.relation.partition(".")
            if (schema.lower(), name.lower()) in relations:
                stale.append(result.relation)
    return sorted(stale)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _args(options: RunOptions) -> dict[str, Any]:
    return {
        "select": list(options.select),
        "exclude": list(options.exclude),
        "threads": options.threads,
        "full_refresh": options.full_refresh,
        "fail_fast": options.fail_fast,
        "store_failures": options.store_failures,
    }
