"""Cross-check against dbt: build our models with dbt-core + dbt-duckdb and with
`kpi build`, time both, and compare every mart row for row.

    python bench/dbt_crosscheck.py --opportunities 10000 --repeat 3
    python bench/dbt_crosscheck.py --opportunities 1000000 --repeat 1

Run it with the project's environment active (`. .venv/bin/activate`). It
installs dbt into a throwaway virtual environment, bench/out/dbt-venv (created
once, reused while its pins match); dbt is never a dependency of the project.
dbt-core's dependency dbt-core-experimental-parser downloads a binary when it
is built, which cannot be done here; dbt only uses it with `--use-v2-parser`.
So the dependencies of dbt-core and dbt-duckdb (their `Requires-Dist`, less
that parser) are installed first, pinned below, then dbt-core and dbt-duckdb
with `--no-deps`. The DuckDB there is ours (`duckdb.__version__`), so both
tools read and write the same file format.

Then, for one scale: generate a CRM export (or reuse bench/out/data/<N>-parquet),
load it with `kpi load`, and, `--repeat` times, alternating, build a fresh copy
of that loaded warehouse with `dbt build` and with `kpi build --skip-load` (full
builds; dbt with `--threads` equal to ours). Start-up is timed as `dbt ls`
against `kpi ls` (after one untimed run of each, so both parse from their
caches). Each tool keeps its target/ between runs. The marts of the last builds
are compared in one DuckDB connection: `except all` both ways, DOUBLE and FLOAT
values rounded to 9 significant digits first (two values a rounding boundary
apart show as a difference, with the rows, so nothing is hidden). It exits 1
when a mart differs.

The throwaway dbt project (bench/out/dbt-crosscheck/<N>/dbt_project/) links our
models/, macros/, seeds/ and data_tests/ unchanged; runner/macros/ (the
runner's generic tests) and bench/dbt_shims/ are two more macro paths. Its
folder configs and vars are read from `[tool.kpi]` in pyproject.toml.

Differences between our project and dbt that had to be bridged:

- Schemas: `schema='marts'` is schema `marts` for us; dbt would build
  `main_marts`. Shim: `generate_schema_name` uses the configured schema as-is.
- `sql_literal(value)`, a context function of our runner (a value as a SQL
  literal), is a macro in the shims.
- `last_seen_load_id()`: our runner answers from its build state (the newest raw
  load the model saw at its last build); dbt keeps no such state. The shim
  renders `(select coalesce(max(_load_id), 0) from {{ this }})`, which is the
  same when every row carries `_load_id`. Only incremental runs render it, and
  this script only runs full builds. kpi_lead_conversion, kpi_lead_response_time
  and kpi_sales_effort have no `_load_id` column, so an incremental dbt run
  would fail on them: there the runner's build state has no dbt equivalent.
- Generic tests built into our runner that dbt lacks: `accepted_range`,
  `expression_is_true`, `unique_combination_of_columns` (dbt-utils has tests of
  those names). dbt reads them, and our versions of its own four, from the
  runner's own runner/macros/generic_tests.sql (a project `{% test %}` replaces
  dbt's built-in one of the same name). Their `new_rows` argument (test only the
  rows changed since the test last passed) is one dbt never passes: dbt always
  tests every row.
- `append_only=[...]` in model configs (our runner checks that those raw tables
  only grew, else rebuilds in full) is unknown to dbt: it keeps the key in the
  node's config and ignores it, without a warning.
- Folder configs come from `[tool.kpi.models.*]` and vars from `[tool.kpi.vars]`
  in pyproject.toml; dbt reads them from dbt_project.yml (generated from them).
- Our runner sets `TimeZone = 'UTC'` on its connections; the dbt profile sets the
  same DuckDB setting.
- Raw data: `kpi build` loads the export itself; dbt has no loader, so both
  build from a copy of a warehouse loaded by `kpi load` (schema `raw`, with
  `_load_id`), and kpi runs with `--skip-load`.
- Singular tests live in data_tests/ (dbt's default is tests/): `test-paths`.
- Everything else our templates use (`ref`, `source`, `config`, `var`,
  `env_var`, `is_incremental`, `this`, `target`, `log`, `return`,
  `exceptions`, `{% call %}`, `{% test %}` blocks, test `arguments:`, `name:`,
  `where` and `severity`) is dbt's own and needed nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
SHIMS = ROOT / "bench" / "dbt_shims"
DBT_VENV = OUT / "dbt-venv"
KPI = [sys.executable, "-m", "runner"]
DBT_PROJECT_NAME = "kpi"

DBT_CORE = "1.12.6"
DBT_DUCKDB = "1.11.1"
# dbt-core 1.12.6's Requires-Dist, less dbt-core-experimental-parser, and
# dbt-duckdb 1.11.1's (dbt-adapters, dbt-common, duckdb), at the versions pip
# resolved them to; duckdb is added at our own version.
DBT_DEPENDENCIES = [
    "agate==1.9.1",
    "click==8.5.1",
    "daff==1.4.2",
    "dbt-adapters==1.24.5",
    "dbt-common==1.39.0",
    "dbt-extractor==0.6.0",
    "dbt-protos==1.0.615",
    "jinja2==3.1.6",
    "jsonschema==4.26.0",
    "mashumaro[msgpack]==3.17",
    "metricflow==0.213.0",
    "networkx==3.6.1",
    "opentelemetry-api==1.45.2",
    "packaging==26.4",
    "pathspec==1.0.4",
    "protobuf==6.33.6",
    "pydantic==2.14.4",
    "python-dotenv==1.2.4",
    "pytz==2026.6",
    "pyyaml==6.0.4",
    "requests==2.34.2",
    "snowplow-tracker==1.1.0",
    "sqlparse==0.6.1",
    "typing-extensions==4.16.0",
]
SKIPPED_DEPENDENCY = "dbt-core-experimental-parser"

MARTS = [
    "kpi_avg_deal_size",
    "kpi_churn",
    "kpi_days_to_close",
    "kpi_lead_conversion",
    "kpi_lead_response_time",
    "kpi_monthly_sales",
    "kpi_quota_attainment",
    "kpi_sales_effort",
    "kpi_stage_duration",
    "kpi_win_rate",
    "fct_opportunities",
    "fct_leads",
    "dim_reps",
    "dim_teams",
]
FLOAT_TYPES = {"DOUBLE", "FLOAT", "REAL"}
SAMPLE_ROWS = 3


# --- running commands -------------------------------------------------------


def run(cmd: list[str | Path], log: Path, env: dict[str, str] | None = None) -> float:
    """Run `cmd` in the project folder, its output to `log`; its wall seconds.
    Exits with the end of the log when it fails."""
    started = time.perf_counter()
    with log.open("w") as out:
        status = subprocess.call(
            [str(c) for c in cmd],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    seconds = time.perf_counter() - started
    if status != 0:
        tail = log.read_text(errors="replace")[-4000:]
        raise SystemExit(f"command failed ({status}): {' '.join(map(str, cmd))}\n{tail}")
    return seconds


def note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the dbt environment ----------------------------------------------------


def dbt_requirements() -> list[str]:
    return [*DBT_DEPENDENCIES, f"duckdb=={duckdb.__version__}"]


def ensure_dbt_venv() -> Path:
    """Create bench/out/dbt-venv with dbt-core and dbt-duckdb (once); its bin/."""
    bin_dir = DBT_VENV / "bin"
    marker = DBT_VENV / "crosscheck-pins.txt"
    pins = "\n".join([*dbt_requirements(), f"dbt-core=={DBT_CORE}", f"dbt-duckdb=={DBT_DUCKDB}"])
    if marker.exists() and marker.read_text() == pins and (bin_dir / "dbt").exists():
        return bin_dir
    note(f"installing dbt-core {DBT_CORE} and dbt-duckdb {DBT_DUCKDB} into {DBT_VENV}")
    shutil.rmtree(DBT_VENV, ignore_errors=True)
    OUT.mkdir(parents=True, exist_ok=True)
    log = OUT / "dbt-venv-install.log"
    run([sys.executable, "-m", "venv", DBT_VENV], log)
    pip = [bin_dir / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    run([*pip, *dbt_requirements()], log)
    run([*pip, "--no-deps", f"dbt-core=={DBT_CORE}", f"dbt-duckdb=={DBT_DUCKDB}"], log)
    check_dbt_dependencies(bin_dir)
    marker.write_text(pins)
    return bin_dir


def check_dbt_dependencies(bin_dir: Path) -> None:
    """`pip check` may only miss the experimental parser."""
    check = subprocess.run(
        [bin_dir / "python", "-m", "pip", "check"], capture_output=True, text=True
    )
    problems = [
        line
        for line in check.stdout.splitlines()
        if line.strip() and SKIPPED_DEPENDENCY not in line and "No broken" not in line
    ]
    if problems:
        raise SystemExit("the dbt environment is inconsistent:\n" + "\n".join(problems))


def dbt_versions(bin_dir: Path) -> dict[str, str]:
    script = (
        "import importlib.metadata as m, json;"
        "print(json.dumps({p: m.version(p) for p in ('dbt-core', 'dbt-duckdb', 'duckdb')}))"
    )
    out = subprocess.run([bin_dir / "python", "-c", script], capture_output=True, text=True)
    return json.loads(out.stdout)


def dbt_env() -> dict[str, str]:
    return {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "PYTHONPATH": ""}


# --- our settings -----------------------------------------------------------


@dataclass
class KpiSettings:
    threads: int
    vars: dict[str, Any]
    models: dict[str, Any]
    seeds: dict[str, Any]


def kpi_settings() -> KpiSettings:
    """`[tool.kpi]` of pyproject.toml, with the runner's default for threads."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        table = tomllib.load(f)["tool"]["kpi"]
    return KpiSettings(
        threads=table.get("threads", os.cpu_count() or 1),
        vars=table.get("vars", {}),
        models=table.get("models", {}),
        seeds=table.get("seeds", {}),
    )


# --- data -------------------------------------------------------------------


def export_for(opportunities: int) -> Path:
    """The Parquet CRM export of `opportunities` deals, generated if missing."""
    path = OUT / "data" / f"{opportunities}-parquet"
    if not (path / "opportunities.parquet").exists():
        shutil.rmtree(path, ignore_errors=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        note(f"generating {opportunities} opportunities into {path}")
        cmd = [*KPI, "generate", path, "--opportunities", str(opportunities)]
        run([*cmd, "--format", "parquet"], OUT / "generate.log")
    return path


def load_raw(export: Path, workdir: Path) -> Path:
    """A warehouse holding only the loaded export (schema `raw`)."""
    warehouse = workdir / "loaded.duckdb"
    note(f"loading {export}")
    cmd = [*KPI, "load", export, "--warehouse", warehouse]
    run([*cmd, "--target-path", workdir / "load-target"], workdir / "load.log")
    return warehouse


def fresh_copy(source: Path, target: Path) -> None:
    for stale in (target, target.with_name(target.name + ".wal")):
        stale.unlink(missing_ok=True)
    shutil.copyfile(source, target)


# --- the dbt project --------------------------------------------------------


def write_dbt_project(project: Path, warehouse: Path, settings: KpiSettings) -> None:
    """A dbt project over our models/, macros/, seeds/ and data_tests/ (links),
    with the runner's generic tests and the shims as two more macro paths and a
    profile for `warehouse`."""
    project.mkdir(parents=True, exist_ok=True)
    links = {
        "models": ROOT / "models",
        "macros": ROOT / "macros",
        "tests": ROOT / "data_tests",
        "runner_macros": ROOT / "runner" / "macros",
        "shims": SHIMS,
    }
    if (ROOT / "seeds").is_dir():
        links["seeds"] = ROOT / "seeds"
    for name, target in links.items():
        link = project / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target, target_is_directory=True)
    config: dict[str, Any] = {
        "name": DBT_PROJECT_NAME,
        "version": "0.1.0",
        "config-version": 2,
        "profile": DBT_PROJECT_NAME,
        "model-paths": ["models"],
        "macro-paths": ["macros", "runner_macros", "shims"],
        "test-paths": ["tests"],
        "seed-paths": ["seeds"] if "seeds" in links else [],
        "analysis-paths": [],
        "snapshot-paths": [],
        "vars": settings.vars,
        "models": {DBT_PROJECT_NAME: settings.models},
    }
    if "seeds" in links:
        config["seeds"] = {DBT_PROJECT_NAME: settings.seeds}
    profile = {
        DBT_PROJECT_NAME: {
            "target": "dev",
            "outputs": {
                "dev": {
                    "type": "duckdb",
                    "path": str(warehouse),
                    "schema": "main",
                    "threads": settings.threads,
                    "settings": {"TimeZone": "UTC"},
                }
            },
        }
    }
    (project / "dbt_project.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    (project / "profiles.yml").write_text(yaml.safe_dump(profile, sort_keys=False))


# --- the two tools ----------------------------------------------------------


@dataclass
class Tool:
    """One tool's commands for this scale."""

    name: str
    warehouse: Path
    build_cmd: list[str | Path]
    ls_cmd: list[str | Path]
    run_results: Path
    env: dict[str, str] = field(default_factory=dict)


def dbt_tool(bin_dir: Path, project: Path, warehouse: Path, threads: int) -> Tool:
    common = ["--project-dir", project, "--profiles-dir", project]
    return Tool(
        name="dbt build",
        warehouse=warehouse,
        build_cmd=[bin_dir / "dbt", "build", *common, "--threads", str(threads)],
        ls_cmd=[bin_dir / "dbt", "ls", *common],
        run_results=project / "target" / "run_results.json",
        env=dbt_env(),
    )


def kpi_tool(workdir: Path, warehouse: Path) -> Tool:
    target = workdir / "kpi-target"
    common = ["--warehouse", warehouse, "--target-path", target]
    return Tool(
        name="kpi build",
        warehouse=warehouse,
        build_cmd=[*KPI, "build", "--skip-load", *common],
        ls_cmd=[*KPI, "ls", *common],
        run_results=target / "run_results.json",
    )


@dataclass
class Timings:
    build: list[float] = field(default_factory=list)
    startup: list[float] = field(default_factory=list)
    nodes: int = 0


def time_startup(tool: Tool, repeat: int, log: Path) -> list[float]:
    run(tool.ls_cmd, log, tool.env)  # untimed: fills the parse caches
    return [run(tool.ls_cmd, log, tool.env) for _ in range(repeat)]


def time_build(tool: Tool, loaded: Path, log: Path) -> float:
    fresh_copy(loaded, tool.warehouse)
    return run(tool.build_cmd, log, tool.env)


def nodes_run(run_results: Path) -> int:
    return len(json.loads(run_results.read_text())["results"])


def bench(tools: list[Tool], loaded: Path, repeat: int, workdir: Path) -> dict[str, Timings]:
    timings = {tool.name: Timings() for tool in tools}
    for tool in tools:
        logname = tool.name.replace(" ", "-")
        timings[tool.name].startup = time_startup(tool, repeat, workdir / f"{logname}-ls.log")
    for i in range(repeat):
        for tool in tools:
            log = workdir / f"{tool.name.replace(' ', '-')}.log"
            seconds = time_build(tool, loaded, log)
            timings[tool.name].build.append(seconds)
            note(f"  {tool.name} {i + 1}/{repeat}: {seconds:.2f}s")
    for tool in tools:
        timings[tool.name].nodes = nodes_run(tool.run_results)
    return timings


# --- comparing the marts ----------------------------------------------------


@dataclass
class MartComparison:
    name: str
    dbt_rows: int = 0
    kpi_rows: int = 0
    only_in_dbt: int = 0
    only_in_kpi: int = 0
    problem: str = ""
    samples: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.problem and self.only_in_dbt == 0 and self.only_in_kpi == 0


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def columns(con: duckdb.DuckDBPyConnection, db: str, table: str) -> list[tuple[str, str]]:
    query = (
        "select column_name, data_type from duckdb_columns() "
        "where database_name = ? and schema_name = 'marts' and table_name = ? "
        "order by column_index"
    )
    return [(name, data_type) for name, data_type in con.execute(query, [db, table]).fetchall()]


def comparable(column: str, data_type: str) -> str:
    """A column as compared: floats as text with 9 significant digits (-0 as 0)."""
    name = quote(column)
    if data_type in FLOAT_TYPES:
        return f"printf('%.8e', case when {name} = 0 then 0::double else {name} end) as {name}"
    return name


def compare_mart(con: duckdb.DuckDBPyConnection, mart: str) -> MartComparison:
    result = MartComparison(mart)
    dbt_columns, kpi_columns = columns(con, "dbt", mart), columns(con, "kpi", mart)
    if not dbt_columns or not kpi_columns:
        result.problem = "missing in " + ("dbt" if not dbt_columns else "kpi")
        return result
    if dbt_columns != kpi_columns:
        result.problem = f"columns differ: dbt {dbt_columns} vs kpi {kpi_columns}"
        return result
    select = ", ".join(comparable(c, t) for c, t in kpi_columns)
    queries = {db: f"select {select} from {db}.marts.{quote(mart)}" for db in ("dbt", "kpi")}
    result.dbt_rows = count(con, queries["dbt"])
    result.kpi_rows = count(con, queries["kpi"])
    only_in_dbt = f"{queries['dbt']} except all {queries['kpi']}"
    only_in_kpi = f"{queries['kpi']} except all {queries['dbt']}"
    result.only_in_dbt = count(con, only_in_dbt)
    result.only_in_kpi = count(con, only_in_kpi)
    for side, query in (("dbt", only_in_dbt), ("kpi", only_in_kpi)):
        rows = con.execute(f"{query} limit {SAMPLE_ROWS}").fetchall()
        result.samples += [f"only in {side}: {format_row(row)}" for row in rows]
    return result


def format_row(row: tuple[Any, ...]) -> str:
    return "(" + ", ".join("NULL" if v is None else str(v) for v in row) + ")"


def count(con: duckdb.DuckDBPyConnection, query: str) -> int:
    row = con.execute(f"select count(*) from ({query})").fetchone()
    return int(row[0]) if row else 0


def compare_marts(dbt_warehouse: Path, kpi_warehouse: Path) -> list[MartComparison]:
    con = duckdb.connect()
    con.execute(f"attach '{dbt_warehouse}' as dbt (read_only)")
    con.execute(f"attach '{kpi_warehouse}' as kpi (read_only)")
    try:
        return [compare_mart(con, mart) for mart in MARTS]
    finally:
        con.close()


# --- report -----------------------------------------------------------------


def print_comparison(results: list[MartComparison]) -> None:
    for r in results:
        if r.identical:
            print(f"- {r.name}: identical ({r.kpi_rows} rows)")
            continue
        detail = r.problem or (
            f"dbt {r.dbt_rows} rows, kpi {r.kpi_rows} rows; "
            f"{r.only_in_dbt} only in dbt, {r.only_in_kpi} only in kpi"
        )
        print(f"- {r.name}: DIFFERS: {detail}")
        for sample in r.samples:
            print(f"    {sample}")


def seconds_row(label: str, values: list[float], *extra: str) -> str:
    cells = [label, *(f"{v:.2f}" for v in (statistics.median(values), min(values), max(values)))]
    return "| " + " | ".join([*cells, *extra]) + " |"


def print_tables(
    opportunities: int,
    timings: dict[str, Timings],
    identical: bool,
    versions: dict[str, str],
    threads: int,
) -> None:
    n = len(next(iter(timings.values())).build)
    print(
        f"\n{opportunities} opportunities, {n} full build(s) each, {threads} threads, "
        f"{os.cpu_count()} cores; dbt-core {versions['dbt-core']}, "
        f"dbt-duckdb {versions['dbt-duckdb']}, duckdb {versions['duckdb']} "
        f"(kpi: duckdb {duckdb.__version__})\n"
    )
    print("| tool | median s | min s | max s | nodes | marts identical |")
    print("|---|---|---|---|---|---|")
    same = "yes" if identical else "no"
    for name, t in timings.items():
        print(seconds_row(name, t.build, str(t.nodes), same))
    print("\n| start-up | median s | min s | max s |")
    print("|---|---|---|---|")
    for name, t in timings.items():
        print(seconds_row(name.replace(" build", " ls"), t.startup))


# --- main -------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--opportunities", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    return parser.parse_args()


def prepare(opportunities: int) -> tuple[Path, Path]:
    """A new work folder for one scale, and the loaded warehouse in it."""
    workdir = OUT / "dbt-crosscheck" / str(opportunities)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    return workdir, load_raw(export_for(opportunities), workdir)


def main() -> None:
    args = parse_args()
    bin_dir = ensure_dbt_venv()
    versions = dbt_versions(bin_dir)
    settings = kpi_settings()
    workdir, loaded = prepare(args.opportunities)
    project = workdir / "dbt_project"
    dbt_warehouse = workdir / "dbt_warehouse.duckdb"
    write_dbt_project(project, dbt_warehouse, settings)
    tools = [
        dbt_tool(bin_dir, project, dbt_warehouse, settings.threads),
        kpi_tool(workdir, workdir / "kpi_warehouse.duckdb"),
    ]
    timings = bench(tools, loaded, args.repeat, workdir)
    results = compare_marts(tools[0].warehouse, tools[1].warehouse)
    print_comparison(results)
    identical = all(r.identical for r in results)
    print_tables(args.opportunities, timings, identical, versions, settings.threads)
    if not identical:
        sys.exit(1)


if __name__ == "__main__":
    main()
