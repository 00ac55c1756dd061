"""Project settings: the `[tool.kpi]` table of `pyproject.toml`.

Every setting has a default, so an empty `[tool.kpi]` table is a valid
project. Folder defaults work like `dbt_project.yml`: keys of
`[tool.kpi.models]` that are config names (optionally written with dbt's `+`
prefix) apply to every model below; other keys are sub-folders.

    [tool.kpi.models]
    "+materialized" = "view"

    [tool.kpi.models.marts]
    "+materialized" = "table"
    "+schema" = "marts"
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from runner.config import folder_defaults
from runner.errors import ProjectError


@dataclass(frozen=True)
class Settings:
    """Everything `[tool.kpi]` can say, with its default."""

    project_dir: Path
    name: str
    warehouse: Path
    threads: int
    target_path: Path
    model_paths: tuple[str, ...] = ("models",)
    seed_paths: tuple[str, ...] = ("seeds",)
    macro_paths: tuple[str, ...] = ("macros",)
    test_paths: tuple[str, ...] = ("tests/data",)
    vars: Mapping[str, Any] = field(default_factory=dict)
    folder_configs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    duckdb_settings: Mapping[str, Any] = field(default_factory=dict)
    raw_dir: Path | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    publish: Path | None = None
    crm: str | None = None
    salesforce: Mapping[str, Any] = field(default_factory=dict)
    env: Environment = field(default_factory=lambda: Environment())
    target: str = "duckdb"  # the engine a run builds on: duckdb or spark
    spark: Mapping[str, Any] = field(default_factory=dict)  # [tool.kpi.targets.spark]

    def folder_config(self, resource: str, relative_dir: str) -> dict[str, Any]:
        """The merged folder defaults for a file of `resource` in a folder.

        `relative_dir` is the folder below the resource's root, with `/`s:
        `folder_config("models", "marts/finance")` merges the defaults of
        `models`, `models.marts` and `models.marts.finance`, deepest last.
        """
        return folder_defaults(self.folder_configs.get(resource, {}), relative_dir)


@dataclass(frozen=True)
class Environment:
    """The `KPI_*` environment variables, read once, here and nowhere else.

    `KPI_WAREHOUSE`, `KPI_TARGET_PATH`, `KPI_PUBLISH` and `KPI_RAW_DIR` stand
    in for their `[tool.kpi]` keys (a command-line option wins over them);
    `KPI_DUCKDB_<NAME>` sets DuckDB's setting `<name>` (`KPI_DUCKDB_MEMORY_LIMIT
    =4GB`); `KPI_INVOCATION_ID` goes into the artifacts' metadata.
    """

    warehouse: str | None = None
    target_path: str | None = None
    publish: str | None = None
    raw_dir: str | None = None
    invocation_id: str = ""
    duckdb: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, environ: Mapping[str, str] | None = None) -> Environment:
        env = os.environ if environ is None else environ
        prefix = "KPI_DUCKDB_"
        return cls(
            warehouse=env.get("KPI_WAREHOUSE") or None,
            target_path=env.get("KPI_TARGET_PATH") or None,
            publish=env.get("KPI_PUBLISH") or None,
            raw_dir=env.get("KPI_RAW_DIR") or None,
            invocation_id=env.get("KPI_INVOCATION_ID", ""),
            duckdb={
                key[len(prefix) :].lower(): value
                for key, value in env.items()
                if key.startswith(prefix) and len(key) > len(prefix)
            },
        )


def load_settings(
    project_dir: Path,
    warehouse: str | Path | None = None,
    target_path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    target: str | None = None,
) -> Settings:
    """Read `pyproject.toml` in `project_dir` and the `KPI_*` variables of
    `environ` (default: the process's); `warehouse` overrides its path,
    `target_path` (or `KPI_TARGET_PATH`) where compiled SQL and artifacts go.

    The warehouse path is, in order: the argument, `KPI_WAREHOUSE`,
    `[tool.kpi] warehouse`, `warehouse.duckdb`; relative paths are relative to
    the project folder. `target` is the engine (`duckdb`, the default, or
    `spark`, configured by `[tool.kpi.targets.spark]`).
    """
    project_dir = project_dir.resolve()
    pyproject = project_dir / "pyproject.toml"
    if not pyproject.is_file():
        raise ProjectError(
            f"no pyproject.toml in {project_dir}.",
            hint="Run from a project folder or pass --project-dir; a project is a "
            "folder with a pyproject.toml holding a [tool.kpi] table and a models/ "
            "folder.",
        )
    try:
        with pyproject.open("rb") as fh:
            document = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ProjectError(f"pyproject.toml is not valid TOML ({exc}).", path=pyproject) from exc
    table = document.get("tool", {}).get("kpi")
    if table is None:
        raise ProjectError(
            "pyproject.toml has no [tool.kpi] table.",
            path=pyproject,
            hint="Add an empty [tool.kpi] table to make this folder a project.",
        )
    env = Environment.read(environ)
    settings = _settings_from_table(project_dir, document, table, warehouse, env)
    if target is not None:
        if target not in TARGETS:
            raise ProjectError(
                f"there is no target {target!r}; the targets are {', '.join(TARGETS)}.",
                hint="Pass --target duckdb (the default) or --target spark.",
            )
        settings = replace(settings, target=target)
    given_path = target_path or env.target_path
    if given_path:
        folder = Path(given_path)
        settings = replace(
            settings, target_path=folder if folder.is_absolute() else Path.cwd() / folder
        )
    return settings


def _settings_from_table(
    project_dir: Path,
    document: Mapping[str, Any],
    table: Mapping[str, Any],
    warehouse: str | Path | None,
    env: Environment,
) -> Settings:
    name = str(table.get("name") or document.get("project", {}).get("name") or project_dir.name)
    warehouse_path = Path(warehouse or env.warehouse or table.get("warehouse", "warehouse.duckdb"))
    if not warehouse_path.is_absolute():
        warehouse_path = project_dir / warehouse_path
    threads = table.get("threads", os.cpu_count() or 1)
    if not isinstance(threads, int) or threads < 1:
        raise ProjectError(
            f"[tool.kpi] threads must be a positive integer, not {threads!r}.",
            path=project_dir / "pyproject.toml",
        )
    raw_dir = table.get("raw_dir")
    publish = env.publish or table.get("publish")
    if publish and (project_dir / publish).resolve() == warehouse_path.resolve():
        raise ProjectError(
            f"[tool.kpi] publish names the warehouse itself ({warehouse_path}).",
            path=project_dir / "pyproject.toml",
            hint="Publish to another file, e.g. publish = 'marts.duckdb'.",
        )
    project_vars = _with_reporting_settings(table, project_dir / "pyproject.toml")
    return Settings(
        project_dir=project_dir,
        name=name,
        warehouse=warehouse_path,
        threads=threads,
        target_path=project_dir / table.get("target_path", "target"),
        model_paths=tuple(table.get("model_paths", ("models",))),
        seed_paths=tuple(table.get("seed_paths", ("seeds",))),
        macro_paths=tuple(table.get("macro_paths", ("macros",))),
        test_paths=tuple(table.get("test_paths", ("tests/data",))),
        vars=project_vars,
        folder_configs={key: table.get(key, {}) for key in ("models", "seeds", "data_tests")},
        duckdb_settings={**table.get("duckdb", {}), **env.duckdb},
        raw_dir=(project_dir / raw_dir) if raw_dir else None,
        raw=dict(table.get("raw", {})),
        publish=(project_dir / publish) if publish else None,
        crm=str(table["crm"]) if table.get("crm") else None,
        salesforce=dict(table.get("salesforce", {})),
        env=env,
        spark=dict(table.get("targets", {}).get("spark", {})),
    )


TARGETS = ("duckdb", "spark")


# KPI_SPEC section 5: reporting settings, written in `[tool.kpi]` (or passed
# as `--vars`), and read by the models as vars.
REPORTING_SETTINGS = ("timezone", "reporting_currency", "fiscal_year_start_month")


def _with_reporting_settings(table: Mapping[str, Any], pyproject: Path) -> dict[str, Any]:
    """`[tool.kpi.vars]` plus the reporting settings of `[tool.kpi]`, which the
    models read as vars of the same name."""
    project_vars = dict(table.get("vars", {}))
    for key in REPORTING_SETTINGS:
        if key not in table:
            continue
        if key in project_vars and project_vars[key] != table[key]:
            raise ProjectError(
                f"{key} is set twice, to {table[key]!r} in [tool.kpi] and to "
                f"{project_vars[key]!r} in [tool.kpi.vars].",
                path=pyproject,
                hint="Keep the one in [tool.kpi].",
            )
        project_vars[key] = table[key]
    return project_vars


def check_reporting_settings(project_vars: Mapping[str, Any]) -> None:
    """Refuse a reporting setting the models cannot use, naming it and saying
    what it takes (the setting comes from `[tool.kpi]` or `--vars`)."""
    zone = project_vars.get("timezone", "UTC")
    if not isinstance(zone, str) or not _is_time_zone(zone):
        raise ProjectError(
            f"timezone must be an IANA time zone name such as 'America/Los_Angeles' or "
            f"'Europe/Paris', not {zone!r}.",
            path="pyproject.toml",
            hint="Fix timezone in [tool.kpi] (or --vars); the names are case-sensitive.",
        )
    currency = project_vars.get("reporting_currency")
    if currency is not None and not (
        isinstance(currency, str)
        and len(currency) == 3
        and currency.isascii()
        and currency.isalpha()
        and currency.isupper()
    ):
        raise ProjectError(
            f"reporting_currency must be a three-letter ISO 4217 code such as 'USD' or "
            f"'EUR', not {currency!r}.",
            path="pyproject.toml",
            hint="Fix reporting_currency in [tool.kpi] (or --vars), or leave it out for an "
            "export in one currency.",
        )
    month = project_vars.get("fiscal_year_start_month", 1)
    if isinstance(month, bool) or not isinstance(month, int) or not 1 <= month <= 12:
        raise ProjectError(
            f"fiscal_year_start_month must be a whole number from 1 to 12, not {month!r}.",
            path="pyproject.toml",
            hint="Set it in [tool.kpi] (2 = the fiscal year starts on February 1st) "
            "or pass --vars '{fiscal_year_start_month: 2}'.",
        )


def _is_time_zone(name: str) -> bool:
    """`name` is a time zone of the IANA database (as Python knows it)."""
    if name == "UTC":
        return True
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True
