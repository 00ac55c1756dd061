"""`kpi`: the command line, a thin click shell over `runner.project.Project`.

Progress, warnings and errors go to stderr; data (`ls`, `show`) to stdout.
Exit codes: 0 all good, 1 a model or test failed, 2 the project or the
command line is wrong.
"""

from __future__ import annotations

import functools
import json
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from runner.project import Project, RunResult

F = TypeVar("F", bound=Callable[..., Any])


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


def project_options(func: F) -> F:
    """--project-dir, --warehouse, --vars and --debug, shared by every command."""
    decorators = [
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
        click.option("--debug", is_flag=True, help="Show tracebacks for errors."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def select_options(func: F) -> F:
    decorators = [
        click.option(
            "-s",
            "--select",
            multiple=True,
            help="Nodes to include (dbt syntax: name, +name, tag:x, path:...).",
        ),
        click.option("--exclude", multiple=True, help="Nodes to leave out (same syntax)."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def run_options(func: F) -> F:
    decorators = [
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
        click.option(
            "--wait",
            "wait_seconds",
            type=click.FloatRange(min=0),
            default=0.0,
            help="Wait up to SECONDS for another build to finish.",
        ),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return select_options(func)


def handle_errors(func: F) -> F:
    """Turn runner errors into a one-paragraph message and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from runner.errors import KpiError

        debug = kwargs.get("debug", False)
        try:
            return func(*args, **kwargs)
        except KpiError as exc:
            if debug:
                traceback.print_exc()
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo(
                "Interrupted: running queries were cancelled; committed work is kept.", err=True
            )
            sys.exit(130)
        except (click.ClickException, click.exceptions.Exit, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            if debug:
                traceback.print_exc()
            click.echo(
                f"Internal error: {type(exc).__name__}: {exc}. Run again with --debug for the "
                "traceback and report it.",
                err=True,
            )
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def _load(
    project_dir: str, warehouse: str | None, vars_: dict[str, Any], raw_dir: str | None = None
) -> Project:
    from runner.project import Project

    return Project.load(project_dir, warehouse=warehouse, vars=vars_, raw_dir=raw_dir)


def _finish(result: RunResult) -> None:
    sys.exit(result.exit_code)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="sales-kpi-warehouse", prog_name="kpi")
def main() -> None:
    """A dbt-style build engine on DuckDB for the sales KPI warehouse.

    \b
    Example:
      kpi build                    # build everything into warehouse.duckdb
      kpi build -s +kpi_win_rate   # one mart and everything it needs
    """


def raw_options(func: F) -> F:
    """--raw-dir and --on-bad-rows, for the commands that load raw data."""
    decorators = [
        click.option(
            "--raw-dir",
            envvar="KPI_RAW_DIR",
            type=click.Path(file_okay=False),
            default=None,
            help="The CRM export to load [env KPI_RAW_DIR; default from [tool.kpi] raw_dir].",
        ),
        click.option(
            "--on-bad-rows",
            type=click.Choice(["fail", "quarantine"]),
            default="fail",
            show_default=True,
            help="fail: reject the load; quarantine: load good rows, keep bad ones "
            "in raw.rejected_rows.",
        ),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def _run_command(name: str, doc: str) -> Callable[..., None]:
    def command(
        project_dir: str, warehouse: str | None, vars_: dict[str, Any], debug: bool, **options: Any
    ) -> None:
        raw_dir = options.pop("raw_dir", None)
        project = _load(project_dir, warehouse, vars_, raw_dir)
        options["select"] = list(options["select"])
        options["exclude"] = list(options["exclude"])
        if "skip_load" in options:
            options["load"] = not options.pop("skip_load")
        _finish(getattr(project, name)(**options))

    command = handle_errors(command)
    command = run_options(command)
    if name == "build":
        command = click.option(
            "--skip-load", is_flag=True, help="Do not load the raw export first."
        )(raw_options(command))
    command = project_options(command)

    command.__doc__ = doc
    command.__name__ = name
    return command


main.command("run")(
    _run_command(
        "run",
        """Build the selected models (views, tables, incremental, ephemeral).

        \b
        Example:
          kpi run -s staging+ --threads 2
        """,
    )
)
main.command("seed")(
    _run_command(
        "seed",
        """Load the CSV files in seeds/ into tables (only those that changed).

        \b
        Example:
          kpi seed --full-refresh
        """,
    )
)
main.command("test")(
    _run_command(
        "test",
        """Run the data tests of the selected nodes against the warehouse.

        \b
        Example:
          kpi test -s kpi_win_rate --store-failures
        """,
    )
)
main.command("build")(
    _run_command(
        "build",
        """Seed, run and test in dependency order; a failing test skips what
        depends on the tested model, and keeps its previous version.

        \b
        Example:
          kpi build --warehouse /tmp/ci.duckdb --fail-fast
        """,
    )
)


@main.command("load")
@project_options
@click.argument("raw_dir", required=False, type=click.Path(file_okay=False))
@click.option(
    "--on-bad-rows",
    type=click.Choice(["fail", "quarantine"]),
    default="fail",
    show_default=True,
    help="fail: reject the load; quarantine: load good rows, keep bad ones in raw.rejected_rows.",
)
@click.option("--full-refresh", is_flag=True, help="Reload every table, changed or not.")
@click.option("--wait", "wait_seconds", type=click.FloatRange(min=0), default=0.0)
@handle_errors
def load_command(
    project_dir: str,
    warehouse: str | None,
    vars_: dict[str, Any],
    debug: bool,
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
    project = _load(project_dir, warehouse, vars_, raw_dir)
    project.load_raw(
        raw_dir, on_bad_rows=on_bad_rows, full_refresh=full_refresh, wait_seconds=wait_seconds
    )


@main.command("compile")
@project_options
@select_options
@click.option(
    "--full-refresh", is_flag=True, help="Compile as a full refresh (is_incremental() is false)."
)
@handle_errors
def compile_command(
    project_dir: str,
    warehouse: str | None,
    vars_: dict[str, Any],
    debug: bool,
    select: tuple[str, ...],
    exclude: tuple[str, ...],
    full_refresh: bool,
) -> None:
    """Render the selected nodes to target/compiled/ and check their SQL.

    \b
    Example:
      kpi compile -s kpi_churn && cat target/compiled/models/marts/kpi_churn.sql
    """
    project = _load(project_dir, warehouse, vars_)
    compiled = project.compile(list(select), list(exclude), full_refresh=full_refresh)
    click.echo(
        f"Compiled {len(compiled)} node(s) into {project.settings.target_path / 'compiled'}.",
        err=True,
    )


@main.command("ls")
@project_options
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
@handle_errors
def ls_command(
    project_dir: str,
    warehouse: str | None,
    vars_: dict[str, Any],
    debug: bool,
    select: tuple[str, ...],
    exclude: tuple[str, ...],
    resource_types: tuple[str, ...],
    output: str,
) -> None:
    """List the selected nodes, one per line, on stdout.

    \b
    Example:
      kpi ls -s tag:kpi --output json
    """
    project = _load(project_dir, warehouse, vars_)
    nodes = project.ls(list(select), list(exclude), list(resource_types) or None)
    lines = []
    for node in nodes:
        if output == "json":
            lines.append(
                json.dumps(
                    {
                        "name": node.name,
                        "resource_type": node.resource_type,
                        "unique_id": node.unique_id,
                        "original_file_path": node.path,
                        "depends_on": list(node.depends_on),
                        "config": node.config.as_dict(),
                        "tags": list(node.config.tags),
                    }
                )
            )
        elif output == "name":
            lines.append(node.name)
        elif output == "path":
            lines.append(node.path)
        else:
            lines.append(".".join(node.fqn))
    if lines:
        click.echo("\n".join(lines))


@main.command("show")
@project_options
@click.argument("model", required=False)
@click.option("--inline", help="A query to run instead of a model (Jinja and ref() work).")
@click.option("--limit", type=click.IntRange(min=0), default=5, show_default=True)
@click.option(
    "--wait",
    "wait_seconds",
    type=click.FloatRange(min=0),
    default=0.0,
    help="Wait up to SECONDS for a running build to finish.",
)
@click.option(
    "--output", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True
)
@handle_errors
def show_command(
    project_dir: str,
    warehouse: str | None,
    vars_: dict[str, Any],
    debug: bool,
    model: str | None,
    inline: str | None,
    limit: int,
    wait_seconds: float,
    output: str,
) -> None:
    """Print the first rows of a model or query on stdout (read-only).

    \b
    Example:
      kpi show kpi_win_rate --limit 10
      kpi show --inline "select * from {{ ref('kpi_churn') }} where level = 'company'"
    """
    from runner.reporting import format_rows

    project = _load(project_dir, warehouse, vars_)
    columns, rows = project.show(model, inline, limit, wait_seconds)
    if output == "json":
        click.echo(
            json.dumps([dict(zip(columns, r, strict=True)) for r in rows], default=str, indent=1)
        )
    elif output == "csv":
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
    else:
        click.echo(format_rows(columns, rows))


@main.command("clean")
@project_options
@handle_errors
def clean_command(
    project_dir: str, warehouse: str | None, vars_: dict[str, Any], debug: bool
) -> None:
    """Delete target/ (compiled SQL, artifacts, caches); the warehouse stays.

    \b
    Example:
      kpi clean
    """
    from runner.settings import load_settings

    settings = load_settings(__import__("pathlib").Path(project_dir), warehouse)
    import shutil

    if settings.target_path.exists():
        shutil.rmtree(settings.target_path)
        click.echo(f"Removed {settings.target_path}.", err=True)
    else:
        click.echo("Nothing to clean.", err=True)


if __name__ == "__main__":  # pragma: no cover
    main()
