"""`kpi`: the command line, a thin click shell over `runner.project.Project`.

Progress, warnings and errors go to stderr; data (`ls`, `show`) to stdout.
Exit codes: 0 all good, 1 a model or test failed, 2 the project or the
command line is wrong.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import json
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from runner.selection import INDIRECT_SELECTION

if TYPE_CHECKING:
    from runner.project import Project
    from runner.results import RunResult

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ProjectArgs:
    """The options every command shares."""

    project_dir: str
    warehouse: str | None
    vars: dict[str, Any]
    target_path: str | None
    debug: bool
    crm: str | None = None
    encoding: str | None = None
    target: str | None = None

    def load(self, raw_dir: str | None = None) -> Project:
        from runner.project import Project

        return Project.load(
            self.project_dir,
            warehouse=self.warehouse,
            vars=self.vars,
            raw_dir=raw_dir,
            target_path=self.target_path,
            crm=self.crm,
            encoding=self.encoding,
            target=self.target,
        )


MULTI_VALUE_OPTIONS = frozenset({"-s", "--select", "--exclude"})


def spread_multi_values(args: list[str]) -> list[str]:
    """dbt accepts `-s a b c`: turn it into `-s a -s b -s c` for click.

    >>> spread_multi_values(["-s", "a", "b", "--threads", "2"])
    ['-s', 'a', '-s', 'b', '--threads', '2']
    """
    out: list[str] = []
    current: str | None = None
    waiting = False  # an option was given and has no value yet
    for arg in args:
        if arg in MULTI_VALUE_OPTIONS:
            if waiting:
                out.append(current or arg)  # `-s --exclude`: let click complain
            current, waiting = arg, True
            continue
        if arg.startswith("-"):
            if waiting:
                out.append(current or arg)
            current, waiting = None, False
        elif current is not None:
            out += [current, arg]
            waiting = False
            continue
        out.append(arg)
    if waiting and current is not None:
        out.append(current)  # a trailing `-s` with no value: let click say so
    return out


class SelectingCommand(click.Command):
    """A command whose --select/--exclude take several values, as in dbt."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, spread_multi_values(args))


def _parse_vars(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    import yaml

    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise click.BadParameter(f"not valid YAML ({exc.__class__.__name__}): {value!r}") from exc
    if not isinstance(parsed, dict):
        raise click.BadParameter(
            f"must be a mapping such as '{{start_month: 2025-01-01}}', not {value!r}"
        )
    return parsed


def _apply(func: F, decorators: list[Callable[[F], F]]) -> F:
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def project_command(func: F) -> F:
    """Add the shared options, pass them as `args`, and turn errors into a
    one-paragraph message and an exit code."""

    @functools.wraps(func)
    def wrapper(
        project_dir: str,
        warehouse: str | None,
        vars_: dict[str, Any],
        target_path: str | None,
        debug: bool,
        crm: str | None,
        encoding: str | None,
        **kwargs: Any,
    ) -> Any:
        from runner.errors import KpiError

        args = ProjectArgs(project_dir, warehouse, vars_, target_path, debug, crm, encoding)
        try:
            return func(args, **kwargs)
        except KpiError as exc:
            if debug:
                traceback.print_exc()
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            _interrupted()
        except (click.ClickException, click.exceptions.Exit, SystemExit):
            raise
        except OSError as exc:
            if debug:
                traceback.print_exc()
            message, code = _os_error_message(exc)
            click.echo(f"Error: {message}", err=True)
            sys.exit(code)
        except RuntimeError as exc:
            if _is_interrupt(exc):  # DuckDB's answer to Ctrl-C during a query
                _interrupted()
            raise _internal(exc, debug) from exc
        except Exception as exc:  # the last line of defence
            raise _internal(exc, debug) from exc

    return _apply(  # type: ignore[return-value]
        wrapper,  # type: ignore[arg-type]
        [
            click.option(
                "--project-dir",
                type=click.Path(file_okay=False),
                default=".",
                show_default=True,
                help="The project folder (holds pyproject.toml).",
            ),
            click.option(
                "--warehouse",
                envvar="KPI_WAREHOUSE",
                type=click.Path(dir_okay=False),
                default=None,
                help="DuckDB file to build into [env KPI_WAREHOUSE; default from [tool.kpi]].",
            ),
            click.option(
                "--vars",
                "vars_",
                callback=_parse_vars,
                default=None,
                help="Project vars as YAML, e.g. '{start_month: 2025-01-01}'.",
            ),
            click.option(
                "--target-path",
                envvar="KPI_TARGET_PATH",
                type=click.Path(file_okay=False),
                default=None,
                help="Where compiled SQL, artifacts and caches go [env KPI_TARGET_PATH; "
                "default target/].",
            ),
            click.option(
                "--crm",
                type=click.Choice(["contract", "salesforce", "hubspot"]),
                default=None,
                help="The export's format [default from [tool.kpi] crm, else detected from "
                "its files].",
            ),
            click.option(
                "--encoding",
                default=None,
                help="Encoding of every CSV file of the export, e.g. windows-1252 [default: "
                "UTF-8; a CRM export's file that is not UTF-8 is read as Windows-1252].",
            ),
            click.option("--debug", is_flag=True, help="Show tracebacks for errors."),
        ],
    )


DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def _os_error_message(exc: OSError) -> tuple[str, int]:
    """(message, exit code) for a file the runner could not write or read:
    a full disk is exit 1, a path that cannot be used exit 2."""
    where = f"{exc.filename}: " if exc.filename else ""
    if exc.errno in DISK_FULL:
        return f"{where}the disk is full ({exc.strerror}). Free some space and run again.", 1
    if isinstance(exc, ConnectionError):
        # the only connection the runner holds is to Spark's JVM: it stopped
        return (
            f"the Spark session stopped answering ({exc.strerror or exc}); its own error is "
            "above. Tables built before it stopped are kept; run the build again (with "
            "--debug for a traceback).",
            1,
        )
    return (
        f"{where}cannot be used ({exc.strerror or exc}). Check that the folder exists and is "
        "writable, or point --target-path / --warehouse elsewhere.",
        2,
    )


def _is_interrupt(exc: BaseException) -> bool:
    return "interrupted" in str(exc).lower()


def _interrupted() -> NoReturn:
    click.echo(
        "Interrupted: running queries were cancelled; committed work is kept, and a raw "
        "load that was interrupted left nothing half-written.",
        err=True,
    )
    sys.exit(130)


def _internal(exc: BaseException, debug: bool) -> SystemExit:
    if debug:
        traceback.print_exc()
    click.echo(
        f"Internal error: {type(exc).__name__}: {exc}. Run again with --debug for the "
        "traceback and report it.",
        err=True,
    )
    return SystemExit(1)


def target_option(func: F) -> F:
    """`--target duckdb|spark`: the engine the command runs on."""

    @functools.wraps(func)
    def wrapper(args: ProjectArgs, *pos: Any, target: str, **kwargs: Any) -> Any:
        return func(dataclasses.replace(args, target=target), *pos, **kwargs)

    return click.option(
        "--target",
        type=click.Choice(["duckdb", "spark"]),
        default="duckdb",
        show_default=True,
        help="The engine: DuckDB, or Spark ([tool.kpi.targets.spark]; pip install '.[spark]').",
    )(wrapper)  # type: ignore[return-value]


def select_options(func: F) -> F:
    return _apply(
        func,
        [
            click.option(
                "-s",
                "--select",
                multiple=True,
                help="Nodes to include (dbt syntax: name, +name, tag:x, path:...).",
            ),
            click.option("--exclude", multiple=True, help="Nodes to leave out (same syntax)."),
            click.option(
                "--indirect-selection",
                type=click.Choice(INDIRECT_SELECTION),
                envvar="KPI_INDIRECT_SELECTION",
                default="eager",
                show_default=True,
                help="Which tests of the selected nodes come too: those of any selected "
                "node, those whose nodes are all selected (cautious), also counting their "
                "ancestors (buildable), or none (empty).",
            ),
        ],
    )


def wait_option(func: F) -> F:
    return click.option(
        "--wait",
        "wait_seconds",
        type=click.FloatRange(min=0),
        default=0.0,
        help="Wait up to SECONDS for another build to finish.",
    )(func)


def run_options(func: F) -> F:
    return _apply(
        func,
        [
            select_options,
            click.option(
                "--threads",
                type=click.IntRange(min=1),
                default=None,
                help="Nodes to run at once [default from [tool.kpi] threads].",
            ),
            click.option(
                "--full-refresh",
                is_flag=True,
                help="Rebuild incremental models and reload seeds from scratch.",
            ),
            click.option("--fail-fast", is_flag=True, help="Stop at the first failure."),
            click.option(
                "--store-failures", is_flag=True, help="Keep failing test rows in the audit schema."
            ),
            wait_option,
        ],
    )


def raw_dir_option(help_text: str) -> Callable[[F], F]:
    """--raw-dir: the export folder, whose files decide the format and so
    which staging models the project has."""
    return click.option(
        "--raw-dir",
        envvar="KPI_RAW_DIR",
        type=click.Path(file_okay=False),
        default=None,
        help=f"{help_text} [env KPI_RAW_DIR; default from [tool.kpi] raw_dir].",
    )


# --raw-dir of the commands that build from what `kpi load` loaded
LOADED_EXPORT_HELP = "The CRM export that was loaded (its format decides the models)"
# --raw-dir of the commands that parse the project or read the marts, loading nothing
FORMAT_EXPORT_HELP = "The CRM export whose format decides the models (nothing is loaded)"


def raw_options(func: F) -> F:
    """--raw-dir and --on-bad-rows, for the commands that load raw data."""
    return _apply(
        func,
        [
            raw_dir_option("The CRM export to load"),
            click.option(
                "--on-bad-rows",
                type=click.Choice(["fail", "quarantine"]),
                default="fail",
                show_default=True,
                help="fail: reject the load; quarantine: load good rows, keep bad ones "
                "in raw.rejected_rows.",
            ),
        ],
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="sales-kpi-warehouse", prog_name="kpi")
def main() -> None:
    """A dbt-style build engine on DuckDB for the sales KPI warehouse.

    \b
    Example:
      kpi build                    # load the demo export, build and test everything
      kpi build -s +kpi_win_rate   # one mart and everything it needs
    """


def _run(command: str, args: ProjectArgs, values: dict[str, Any]) -> RunResult:
    """Load the project and run `command` with the run options click parsed."""
    from runner.build import RunOptions
    from runner.planning import Command

    project = args.load(values.get("raw_dir"))
    options = RunOptions(
        select=tuple(values["select"]),
        exclude=tuple(values["exclude"]),
        indirect_selection=values["indirect_selection"],
        threads=values["threads"],
        full_refresh=values["full_refresh"],
        fail_fast=values["fail_fast"],
        store_failures=values["store_failures"],
        wait_seconds=values["wait_seconds"],
        on_bad_rows=values.get("on_bad_rows", "fail"),
        load=not values.get("skip_load", False),
    )
    result = project.execute(Command(command), options)
    if values.get("report") and result.exit_code == 0:
        project.report()
    return result


@main.command("build", cls=SelectingCommand)
@project_command
@target_option
@run_options
@raw_options
@click.option("--skip-load", is_flag=True, help="Do not load the raw export first.")
@click.option(
    "--report", is_flag=True, help="Write the KPI report (kpi report) after a successful build."
)
def build_command(args: ProjectArgs, **options: Any) -> None:
    """Load the raw export, then seed, run and test in dependency order.

    A model's tests run before it is published: an error-severity failure
    keeps the previous version and skips what depends on it. With
    `[tool.kpi] publish`, a successful build then writes the marts to that file.

    \b
    Example:
      kpi build --warehouse /tmp/ci.duckdb --fail-fast
      kpi build --report   # then open target/report/index.html
    """
    sys.exit(_run("build", args, options).exit_code)


@main.command("run", cls=SelectingCommand)
@project_command
@target_option
@run_options
@raw_dir_option(LOADED_EXPORT_HELP)
def run_command(args: ProjectArgs, **options: Any) -> None:
    """Build the selected models (views, tables, incremental, ephemeral).

    \b
    Example:
      kpi run -s staging+ --threads 2
    """
    sys.exit(_run("run", args, options).exit_code)


@main.command("seed", cls=SelectingCommand)
@project_command
@run_options
def seed_command(args: ProjectArgs, **options: Any) -> None:
    """Load the CSV files in seeds/ into tables (only those that changed).

    \b
    Example:
      kpi seed --full-refresh
    """
    sys.exit(_run("seed", args, options).exit_code)


@main.command("test", cls=SelectingCommand)
@project_command
@target_option
@run_options
@raw_dir_option(LOADED_EXPORT_HELP)
def test_command(args: ProjectArgs, **options: Any) -> None:
    """Run the data tests of the selected nodes against the warehouse.

    \b
    Example:
      kpi test -s kpi_win_rate --store-failures
    """
    sys.exit(_run("test", args, options).exit_code)


@main.command("load")
@project_command
@click.argument("raw_dir", required=False, type=click.Path(file_okay=False))
@click.option(
    "--on-bad-rows",
    type=click.Choice(["fail", "quarantine"]),
    default="fail",
    show_default=True,
    help="fail: reject the load; quarantine: load good rows, keep bad ones in raw.rejected_rows.",
)
@click.option("--full-refresh", is_flag=True, help="Reload every table, changed or not.")
@wait_option
def load_command(
    args: ProjectArgs,
    raw_dir: str | None,
    on_bad_rows: str,
    full_refresh: bool,
    wait_seconds: float,
) -> None:
    """Load a CRM export (one CSV or Parquet file per table) into the raw schema.

    Files unchanged since the last load are skipped; new part files
    (`<table>.<part>.csv`) are appended. The raw tables change only when the
    whole load succeeds.

    \b
    Example:
      kpi load ~/exports/2026-11-27 --on-bad-rows quarantine
    """
    args.load(raw_dir).load_raw(
        raw_dir, on_bad_rows=on_bad_rows, full_refresh=full_refresh, wait_seconds=wait_seconds
    )


@main.command("generate")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--seed", type=int, default=42, show_default=True, help="Same seed, same bytes.")
@click.option(
    "--opportunities",
    type=click.IntRange(min=1),
    default=3000,
    show_default=True,
    help="Deals to generate; every other table scales with it.",
)
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["csv", "parquet"]),
    default="csv",
    show_default=True,
)
@click.option(
    "--months", type=click.IntRange(min=1), default=14, show_default=True, help="Months covered."
)
@click.option(
    "--append",
    is_flag=True,
    help="Add ~1% new rows dated after the existing export (new part files for "
    "activities, leads and stage history; snapshot tables rewritten).",
)
@click.option(
    "--crm",
    type=click.Choice(["contract", "salesforce", "hubspot"]),
    default="contract",
    show_default=True,
    help="The export's shape: the contract, a Salesforce Data Export (CSV; Parquet: "
    "replicated snake_case tables) or HubSpot replicated tables; the same data.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def generate_command(
    out_dir: str,
    seed: int,
    opportunities: int,
    file_format: str,
    months: int,
    append: bool,
    crm: str,
    debug: bool,
) -> None:
    """Write a realistic, deterministic CRM export (the demo data) into OUT_DIR.

    \b
    Example:
      kpi generate /tmp/crm --opportunities 1000000 --format parquet
      kpi generate /tmp/crm --append --format parquet
      kpi generate /tmp/sf --crm salesforce --opportunities 200000
    """
    import time

    from runner.errors import KpiError, ProjectError

    started = time.perf_counter()
    try:
        from runner.crm.generate import generate_export

        if crm != "contract" and append:
            raise ProjectError("--append writes contract part files; it cannot be used with --crm.")
        if crm != "contract":
            from runner.crm.generate_crm import write_crm_export

            counts = write_crm_export(
                Path(out_dir),
                crm,
                seed=seed,
                opportunities=opportunities,
                months=months,
                file_format=file_format,
            )
        else:
            counts = generate_export(
                Path(out_dir),
                seed=seed,
                opportunities=opportunities,
                file_format=file_format,
                months=months,
                append=append,
            )
    except (KpiError, OSError) as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"Error: {out_dir}: {exc}", err=True)
        sys.exit(exc.exit_code if isinstance(exc, KpiError) else 2)
    for table, rows in counts.items():
        click.echo(f"  {table}: {rows:,} rows", err=True)
    total = sum(counts.values())
    seconds = time.perf_counter() - started
    click.echo(f"Wrote {total:,} rows to {out_dir} in {seconds:.1f}s.", err=True)


@main.command("compile", cls=SelectingCommand)
@project_command
@target_option
@select_options
@click.option(
    "--full-refresh", is_flag=True, help="Compile as a full refresh (is_incremental() is false)."
)
@raw_dir_option(FORMAT_EXPORT_HELP)
def compile_command(
    args: ProjectArgs,
    select: tuple[str, ...],
    exclude: tuple[str, ...],
    indirect_selection: str,
    full_refresh: bool,
    raw_dir: str | None,
) -> None:
    """Render the selected nodes to target/compiled/ and check their SQL.

    \b
    Example:
      kpi compile -s kpi_churn && cat target/compiled/models/marts/kpi_churn.sql
    """
    project = args.load(raw_dir)
    compiled = project.compile(
        list(select),
        list(exclude),
        full_refresh=full_refresh,
        indirect_selection=indirect_selection,
    )
    folder = project.settings.target_path / "compiled"
    if project.settings.target == "spark":
        folder = folder / "spark"
    click.echo(f"Compiled {len(compiled)} node(s) into {folder}.", err=True)


# the keys of `kpi ls --output json` without --output-keys, as dbt prints them
LS_JSON_KEYS = (
    "name",
    "resource_type",
    "package_name",
    "original_file_path",
    "unique_id",
    "alias",
    "config",
    "tags",
    "depends_on",
)


@main.command("ls", cls=SelectingCommand)
@project_command
@select_options
@click.option(
    "--resource-type",
    "resource_types",
    multiple=True,
    type=click.Choice(["model", "seed", "test", "source"]),
    help="Only these kinds of node.",
)
@click.option(
    "--output",
    type=click.Choice(["selector", "name", "path", "json"]),
    default="selector",
    show_default=True,
)
@click.option(
    "--output-keys",
    "output_keys",
    multiple=True,
    help="With --output json, only these keys of each node (as in target/manifest.json), "
    "e.g. 'name depends_on'.",
)
@raw_dir_option(FORMAT_EXPORT_HELP)
def ls_command(
    args: ProjectArgs,
    select: tuple[str, ...],
    exclude: tuple[str, ...],
    indirect_selection: str,
    resource_types: tuple[str, ...],
    output: str,
    output_keys: tuple[str, ...],
    raw_dir: str | None,
) -> None:
    """List the selected nodes, one per line, on stdout.

    \b
    Example:
      kpi ls -s tag:kpi --output json
      kpi ls -s +kpi_churn --output json --output-keys "name depends_on"
    """
    from runner.artifacts import manifest_node

    keys = [k for value in output_keys for k in value.replace(",", " ").split()]
    project = args.load(raw_dir)
    nodes = project.ls(
        list(select), list(exclude), list(resource_types) or None, indirect_selection
    )
    if output == "json":
        entries = [manifest_node(project.loaded, node) for node in nodes]
        known = {key for entry in entries for key in entry}
        unknown = [k for k in keys if entries and k not in known]
        if unknown:
            raise click.BadParameter(
                f"no key {unknown[0]!r}; the keys are {', '.join(sorted(known))}.",
                param_hint="--output-keys",
            )
        # a key only some nodes have (a test's column_name) is left out of the others
        lines = [
            json.dumps({k: e[k] for k in keys or LS_JSON_KEYS if k in e}, default=str)
            for e in entries
        ]
    elif output == "name":
        lines = [node.name for node in nodes]
    elif output == "path":
        lines = [node.path for node in nodes]
    else:
        lines = [".".join(node.fqn) for node in nodes]
    if lines:
        click.echo("\n".join(lines))


@main.command("show")
@project_command
@target_option
@click.argument("model", required=False)
@click.option("--inline", help="A query to run instead of a model (Jinja and ref() work).")
@click.option("--limit", type=click.IntRange(min=0), default=5, show_default=True)
@wait_option
@click.option(
    "--output", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True
)
@raw_dir_option(FORMAT_EXPORT_HELP)
def show_command(
    args: ProjectArgs,
    model: str | None,
    inline: str | None,
    limit: int,
    wait_seconds: float,
    output: str,
    raw_dir: str | None,
) -> None:
    """Print the first rows of a model or query on stdout (read-only).

    \b
    Example:
      kpi show kpi_win_rate --limit 10
      kpi show --inline "select * from {{ ref('kpi_churn') }} where level = 'company'"
    """
    columns, rows = args.load(raw_dir).show(model, inline, limit, wait_seconds)
    _print_rows(columns, list(rows), output)


@main.command("metrics")
@project_command
@click.argument("names", nargs=-1, required=True, metavar="METRIC...")
@click.option(
    "--by",
    type=click.Choice(["company", "team", "rep"]),
    default="company",
    show_default=True,
    help="One row per period for the company, or per team, or per rep.",
)
@click.option(
    "--grain",
    type=click.Choice(["month", "quarter", "fiscal_quarter", "year", "fiscal_year"]),
    default="month",
    show_default=True,
    help="The period of a row (fiscal ones follow [tool.kpi] fiscal_year_start_month).",
)
@click.option("--from", "start", metavar="YYYY-MM", help="First month [default: the range's].")
@click.option("--to", "end", metavar="YYYY-MM", help="Last month [default: the range's].")
@click.option(
    "--output", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True
)
@click.option("--sql", "print_sql", is_flag=True, help="Print the query instead of running it.")
@wait_option
def metrics_command(
    args: ProjectArgs,
    names: tuple[str, ...],
    by: str,
    grain: str,
    start: str | None,
    end: str | None,
    output: str,
    print_sql: bool,
    wait_seconds: float,
) -> None:
    """Print KPI metrics by company, team or rep over any grain, from the marts.

    Rates are recomputed from summed numerators and denominators, never
    averaged; medians exist at month grain only. The metrics and their
    formulas are declared under `metrics:` in the marts' yml.

    \b
    Example:
      kpi metrics win_rate avg_deal_size --by team --grain fiscal_quarter --from 2025-01
      kpi metrics conversion_rate_pct --grain year --output csv
    """
    result = args.load().metrics(
        list(names),
        by=by,
        grain=grain,
        start=start,
        end=end,
        run=not print_sql,
        wait_seconds=wait_seconds,
    )
    if print_sql:
        click.echo(result.sql, nl=False)
    else:
        _print_rows(list(result.columns), list(result.rows), output, result.formats or {})


def _print_rows(
    columns: list[str], rows: list[Any], output: str, formats: Mapping[str, str] | None = None
) -> None:
    """Rows on stdout as an aligned table, CSV or JSON records; a table rounds
    metrics to their format's decimals."""
    from runner.reporting import format_rows

    if output == "json":
        records = [dict(zip(columns, r, strict=True)) for r in rows]
        click.echo(json.dumps(records, default=str, indent=1))
    elif output == "csv":
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
    else:
        if formats:
            from runner.metrics import round_for_table

            rows = round_for_table(rows, columns, formats)
        click.echo(format_rows(columns, rows))


@main.command("report")
@project_command
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="The HTML file to write [default: target/report/index.html].",
)
@click.option(
    "--currency",
    default=None,
    help="ISO code of the marts' money [default: [tool.kpi] reporting_currency, else USD].",
)
@wait_option
def report_command(
    args: ProjectArgs, out: str | None, currency: str | None, wait_seconds: float
) -> None:
    """Write the ten KPIs as one self-contained HTML page (charts, team and
    month pickers, sortable rep tables) from the current marts, read-only.

    \b
    Example:
      kpi report --out /tmp/kpis.html && xdg-open /tmp/kpis.html
    """
    args.load().report(out, currency=currency, wait_seconds=wait_seconds)


@main.group("docs")
def docs_group() -> None:
    """Write or serve the project's docs site (models, tests, column lineage).

    \b
    Example:
      kpi docs generate && kpi docs serve --port 8080
    """


@docs_group.command("generate")
@project_command
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="The folder to write index.html into [default: target/docs].",
)
@raw_dir_option(FORMAT_EXPORT_HELP)
def docs_generate_command(args: ProjectArgs, out: str | None, raw_dir: str | None) -> None:
    """Write a self-contained static site (index.html) documenting every
    source, model, seed and test, with lineage down to the raw columns.

    \b
    Example:
      kpi docs generate && xdg-open target/docs/index.html
    """
    args.load(raw_dir).docs_generate(out)


@docs_group.command("serve")
@project_command
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@raw_dir_option(FORMAT_EXPORT_HELP)
def docs_serve_command(args: ProjectArgs, port: int, raw_dir: str | None) -> None:
    """Serve the docs site on http://127.0.0.1:PORT (generating it first if absent).

    \b
    Example:
      kpi docs serve --port 8080
    """
    from runner.docs_site import serve

    project = args.load(raw_dir)
    folder = project.settings.target_path / "docs"
    if not (folder / "index.html").exists():
        project.docs_generate()
    click.echo(f"Serving {folder} on http://127.0.0.1:{port}/ (Ctrl-C to stop).", err=True)
    try:
        serve(folder, port)
    except OSError as exc:
        raise click.ClickException(f"cannot serve on 127.0.0.1:{port}: {exc.strerror}.") from exc


@main.command("clean")
@project_command
def clean_command(args: ProjectArgs) -> None:
    """Delete target/ (compiled SQL, artifacts, caches); the warehouse stays.

    \b
    Example:
      kpi clean
    """
    from runner.project import clean_target
    from runner.settings import load_settings

    settings = load_settings(Path(args.project_dir), args.warehouse, args.target_path)
    removed = clean_target(settings)
    click.echo(f"Removed {removed}." if removed else "Nothing to clean.", err=True)


if __name__ == "__main__":  # pragma: no cover
    main()
