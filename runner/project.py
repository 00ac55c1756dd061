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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner import caches, parse_cache
from runner.crm_formats import ExportFormat, load_notes, resolve_format, salesforce_vars
from runner.errors import ProjectError, first_line
from runner.nodes import Node
from runner.planning import Command
from runner.reporting import Reporter
from runner.results import RunResult  # public here too: `from runner.project import RunResult`
from runner.selection import select as select_nodes
from runner.settings import Settings, load_settings
from runner.warehouse import connect, exclusive_lock

if TYPE_CHECKING:
    from runner.build import RunOptions
    from runner.compiling import CompiledNode
    from runner.engines.duckdb import DuckDBAdapter
    from runner.loaded import LoadedProject
    from runner.metrics import MetricsResult
    from runner.raw_load import LoadReport
    from runner.report import ReportInfo

# Modules that need DuckDB, sqlglot or Jinja are imported inside the methods
# that use them, so that `kpi ls` starts fast.

TABLES_FILE = caches.TABLES_FILE


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
        target: str | None = None,
    ) -> Project:
        """Parse the project; `raw_dir` overrides where `build` loads raw data from,
        `target_path` where compiled SQL, artifacts and caches go, `crm` forces the
        export's format (else `[tool.kpi] crm`, else detected from the export's
        files), `encoding` the encoding of every CSV file (else UTF-8, falling
        back to Windows-1252 for CRM exports), `target` the engine (`duckdb`, the
        default, or `spark`)."""
        from runner.raw_load import export_dir_from

        settings = load_settings(Path(project_dir), warehouse, target_path, target=target)
        given = raw_dir or settings.env.raw_dir
        export_dir = export_dir_from(given, settings.raw_dir, settings.project_dir)
        export_format = resolve_format(crm, settings.crm, export_dir)
        cli_vars = {
            **export_format.as_vars(),
            **salesforce_vars(settings.salesforce),
            **dict(vars or {}),
        }
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
        indirect_selection: str = "eager",
    ) -> list[Node]:
        """The selected nodes, in dependency order (ties by name)."""
        graph = self.loaded.graph
        selection = select_nodes(
            self.nodes,
            self.loaded.sources,
            graph,
            select,
            exclude,
            resource_types,
            indirect_selection,
        )
        for term in selection.unmatched:
            self.reporter.warning(f"the selector '{term}' matched nothing.")
        order = graph.topological_order()
        chosen = selection.unique_ids
        return [self.nodes[uid] for uid in order if uid in chosen]

    def ls(
        self,
        select: Sequence[str] = (),
        exclude: Sequence[str] = (),
        resource_types: Sequence[str] | None = None,
        indirect_selection: str = "eager",
    ) -> list[Node]:
        nodes = self.select(select, exclude, resource_types, indirect_selection)
        self.write_manifest()
        return nodes

    def compile(
        self,
        select: Sequence[str] = (),
        exclude: Sequence[str] = (),
        full_refresh: bool = False,
        indirect_selection: str = "eager",
    ) -> dict[str, CompiledNode]:
        """Render the selected nodes to `target/compiled/` and check their SQL.

        `is_incremental()` needs to know which tables exist: the warehouse is
        opened (read-only) only when an incremental model is selected.
        """
        from runner import build
        from runner.compile_cache import CompileCache
        from runner.compiling import Compiler

        nodes = self.select(select, exclude, indirect_selection=indirect_selection)
        if self.settings.target == "spark":
            return self._compile_spark(nodes, full_refresh)
        existing: frozenset[tuple[str, str]] = frozenset()
        incremental = any(n.config.materialized == "incremental" for n in nodes)
        if incremental and self.settings.warehouse.exists():
            existing = build.tables_now(self.loaded)
        compiler = Compiler(
            self.loaded, existing, full_refresh, CompileCache.for_project(self.loaded)
        )
        compiled, paths = build.compile_nodes(self.loaded, compiler, nodes)
        build.check_sql(self.loaded, self.reporter, None, compiled, paths)
        self.write_manifest(paths)
        return compiled

    def _compile_spark(self, nodes: Sequence[Node], full_refresh: bool) -> dict[str, CompiledNode]:
        """`compile` on the Spark target: Spark SQL in `target/compiled/spark/`,
        parsed by Spark (is_incremental() as for a first build)."""
        from runner import spark_build
        from runner.compiling import Compiler

        compiler = Compiler(self.loaded, frozenset(), full_refresh, None, last_seen={})
        adapter = spark_build.open_adapter(self)
        compiled, paths = spark_build.compile_for_spark(self.loaded, compiler, nodes, adapter)
        self.write_manifest(paths)
        return compiled

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

        given = self.raw_dir_override or self.settings.env.raw_dir
        return export_dir_from(given, self.settings.raw_dir, self.settings.project_dir)

    def load_raw(
        self,
        raw_dir: str | Path | None = None,
        *,
        on_bad_rows: str = "fail",
        full_refresh: bool = False,
        wait_seconds: float = 0.0,
    ) -> LoadReport:
        """Load a raw export into the `raw` schema (only changed files)."""
        with self.writing("kpi load", wait_seconds) as adapter:
            report = self.load_raw_into(adapter, raw_dir, on_bad_rows, full_refresh)
        self.reporter.repeat_warnings(self.load_warnings)
        return report

    def load_raw_into(
        self,
        adapter: DuckDBAdapter,
        raw_dir: str | Path | None,
        on_bad_rows: str,
        full_refresh: bool,
    ) -> LoadReport:
        """Load the raw export on an open warehouse (build loads before it runs)."""
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
            adapter,
            export_dir,
            contracts,
            on_bad_rows=on_bad_rows,
            force=full_refresh,
            encoding=self.encoding,
        )
        notes = load_notes(adapter, self.export_format, contracts)
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

    def run(
        self,
        *,
        select: Sequence[str] = (),
        exclude: Sequence[str] = (),
        threads: int | None = None,
        full_refresh: bool = False,
        fail_fast: bool = False,
        store_failures: bool = False,
        wait_seconds: float = 0.0,
    ) -> RunResult:
        """Build the selected models."""
        return self._execute_options(
            Command.RUN,
            select=tuple(select),
            exclude=tuple(exclude),
            threads=threads,
            full_refresh=full_refresh,
            fail_fast=fail_fast,
            store_failures=store_failures,
            wait_seconds=wait_seconds,
        )

    def seed(
        self,
        *,
        select: Sequence[str] = (),
        exclude: Sequence[str] = (),
        threads: int | None = None,
        full_refresh: bool = False,
        fail_fast: bool = False,
        store_failures: bool = False,
        wait_seconds: float = 0.0,
    ) -> RunResult:
        """Load the selected seeds (only those that changed, unless `full_refresh`)."""
        return self._execute_options(
            Command.SEED,
            select=tuple(select),
            exclude=tuple(exclude),
            threads=threads,
            full_refresh=full_refresh,
            fail_fast=fail_fast,
            store_failures=store_failures,
            wait_seconds=wait_seconds,
        )

    def test(
        self,
        *,
        select: Sequence[str] = (),
        exclude: Sequence[str] = (),
        threads: int | None = None,
        full_refresh: bool = False,
        fail_fast: bool = False,
        store_failures: bool = False,
        wait_seconds: float = 0.0,
        indirect_selection: str = "eager",
    ) -> RunResult:
        """Run the data tests of the selected nodes (`indirect_selection`: which
        tests of the selected nodes come too, as in dbt)."""
        return self._execute_options(
            Command.TEST,
            select=tuple(select),
            exclude=tuple(exclude),
            threads=threads,
            full_refresh=full_refresh,
            fail_fast=fail_fast,
            store_failures=store_failures,
            wait_seconds=wait_seconds,
            indirect_selection=indirect_selection,
        )

    def build(
        self,
        *,
        select: Sequence[str] = (),
        exclude: Sequence[str] = (),
        threads: int | None = None,
        full_refresh: bool = False,
        fail_fast: bool = False,
        store_failures: bool = False,
        wait_seconds: float = 0.0,
        indirect_selection: str = "eager",
        on_bad_rows: str = "fail",
        load: bool = True,
    ) -> RunResult:
        """Load the raw export (unless not `load`), then seed, run and test in
        dependency order."""
        return self._execute_options(
            Command.BUILD,
            select=tuple(select),
            exclude=tuple(exclude),
            threads=threads,
            full_refresh=full_refresh,
            fail_fast=fail_fast,
            store_failures=store_failures,
            wait_seconds=wait_seconds,
            indirect_selection=indirect_selection,
            on_bad_rows=on_bad_rows,
            load=load,
        )

    def _execute_options(self, command: Command, **options: Any) -> RunResult:
        """The keywords of run/seed/test/build as one `RunOptions`."""
        from runner.build import RunOptions

        return self.execute(command, RunOptions(**options))

    def execute(self, command: Command, options: RunOptions) -> RunResult:
        """Run one of the run-like commands with `options` (what the CLI calls)."""
        if self.settings.target == "spark":
            from runner import spark_build

            return spark_build.execute(self, command, options)
        from runner import build

        return build.execute(self, command, options)

    @contextlib.contextmanager
    def writing(self, command: str, wait_seconds: float = 0.0) -> Iterator[DuckDBAdapter]:
        """Lock the warehouse and open it for writing, waiting up to
        `wait_seconds` in all for another writer and for readers to let go."""
        deadline = time.monotonic() + wait_seconds
        with exclusive_lock(self.settings.warehouse, command, wait_seconds):
            adapter = self.open_warehouse(wait_seconds=max(0.0, deadline - time.monotonic()))
            try:
                yield adapter
            finally:
                adapter.close()

    def open_warehouse(
        self, *, read_only: bool = False, wait_seconds: float = 0.0
    ) -> DuckDBAdapter:
        """The warehouse's engine adapter, open (close it when done); writers
        hold the lock first (`writing`)."""
        from runner.engines.duckdb import DuckDBAdapter

        return DuckDBAdapter.open(
            self.settings.warehouse,
            read_only=read_only,
            settings=self.settings.duckdb_settings,
            wait_seconds=wait_seconds,
        )

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
        if self.settings.target == "spark":
            return self._show_spark(inline or "", limit)
        sql = Compiler(self.loaded).compile_inline(inline or "")
        adapter = self.open_warehouse(read_only=True, wait_seconds=wait_seconds)
        try:
            try:
                result = adapter.execute(
                    f"select * from (\n{sql}\n) as kpi_show limit {int(limit)}"
                )
            except adapter.Error as exc:
                raise ProjectError(f"the query failed: {str(exc).strip()}") from exc
            columns = [d[0] for d in result.description or ()]
            return columns, result.fetchall()
        finally:
            adapter.close()

    def _show_spark(self, inline: str, limit: int) -> tuple[list[str], list[tuple[Any, ...]]]:
        from runner import spark_build
        from runner.compiling import Compiler
        from runner.transpile import spark_first_line, to_spark

        sql = to_spark(Compiler(self.loaded, last_seen={}).compile_inline(inline), name="show")
        adapter = spark_build.open_adapter(self)
        try:
            columns, rows = adapter.fetch(sql.rstrip().rstrip(";"), limit)
        except Exception as exc:
            raise ProjectError(f"the query failed on Spark: {spark_first_line(exc)}") from exc
        return list(columns), rows

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
        from runner import artifacts, docs_site

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
        statuses = artifacts.last_results(self.settings.target_path)
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
                raise ProjectError(
                    f"the warehouse {self.settings.warehouse} lacks a table the metrics "
                    f"read ({first_line(exc)}).",
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
