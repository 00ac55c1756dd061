"""Shared fixtures: a tmp-path project builder, a loader that captures the
runner's output, and a read-only look into the warehouse a test built.

    def test_x(make_project, load, query, output):
        root = make_project({"models/a.sql": "select 1 as id"})
        project = load(root)
        assert project.run().exit_code == 0
        assert query(root, "select id from a") == [(1,)]
        assert "1 of 1 OK created view main.a" in output(project)
"""

from __future__ import annotations

import io
import os
import textwrap
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pytest

from runner.engines.duckdb import DuckDBAdapter
from runner.project import Project
from runner.reporting import Reporter

DEFAULT_PYPROJECT = "[tool.kpi]\nthreads = 1\n"

# The whole suite runs in a machine time zone that is not UTC, with a
# daylight-saving change inside the data's range, so that any number that
# depended on the machine's zone would differ from the hand-computed one
# (`test_trust_loader.py` also compares builds under two zones). Subprocesses
# inherit it. KPI_TEST_TZ=UTC runs the suite in UTC instead.
os.environ["TZ"] = os.environ.get("KPI_TEST_TZ", "America/New_York")
time.tzset()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The Spark tests first: a worker runs a whole file (`--dist loadfile`),
    and the Spark files are the longest, so that started last they would
    leave one worker running alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("spark") is None)


MakeProject = Callable[..., Path]
Load = Callable[..., Project]
Query = Callable[[Path, str], list[tuple[Any, ...]]]


def write_files(root: Path, files: Mapping[str, str]) -> None:
    """Write `files` (project-relative path -> text, dedented) below `root`."""
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def captured(project: Project) -> str:
    stream = project.reporter.stream
    assert isinstance(stream, io.StringIO)
    return stream.getvalue()


def warehouse_of(root: Path) -> Path:
    return root / "w.duckdb"


RUNNER_ENV = ("KPI_WAREHOUSE", "KPI_RAW_DIR", "KPI_TARGET_PATH", "KPI_PUBLISH")


@pytest.fixture
def runner_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset the environment variables that move the warehouse, raw data or
    target folder, so that a developer's shell does not leak into a test."""
    for name in RUNNER_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def make_project(tmp_path: Path, runner_env: None) -> MakeProject:
    """`make_project({"models/a.sql": "select 1"})` -> the project folder.

    A `pyproject.toml` with an empty-ish `[tool.kpi]` (one thread) is added
    unless `files` has one. Calling it again with `root=` adds or replaces
    files in an existing project.
    """

    def make(files: Mapping[str, str], root: Path | None = None) -> Path:
        if root is None:
            root = tmp_path / "project"
            root.mkdir()
            files = {"pyproject.toml": DEFAULT_PYPROJECT, **files}
        write_files(root, files)
        return root

    return make


@pytest.fixture
def load() -> Load:
    """`load(root, vars=...)` -> a `Project` on `root/w.duckdb` whose output is
    captured (read it with `output(project)`)."""

    def load_project(root: Path, **kwargs: Any) -> Project:
        kwargs.setdefault("warehouse", warehouse_of(root))
        kwargs.setdefault("reporter", Reporter(stream=io.StringIO()))
        return Project.load(root, **kwargs)

    return load_project


@pytest.fixture
def output() -> Callable[[Project], str]:
    """`output(project)` -> everything its reporter printed (progress, warnings,
    failure details)."""
    return captured


@pytest.fixture
def query() -> Query:
    """`query(root, sql)` -> rows, read from the project's warehouse."""

    def run(root: Path, sql: str) -> list[tuple[Any, ...]]:
        con = duckdb.connect(str(warehouse_of(root)), read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    return run


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB database."""
    connection = duckdb.connect()
    yield connection
    connection.close()


@pytest.fixture
def engine(con: duckdb.DuckDBPyConnection) -> DuckDBAdapter:
    """The DuckDB engine adapter on an in-memory database."""
    return DuckDBAdapter(con)


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, Path]:
    """This project built from its bundled demo export, once per test session:
    the project and its warehouse file."""
    root = Path(__file__).resolve().parents[1]
    work = tmp_path_factory.mktemp("demo")
    quiet = Reporter(stream=io.StringIO())
    project = Project.load(
        root, warehouse=work / "w.duckdb", target_path=work / "target", reporter=quiet
    )
    result = project.build()
    assert result.exit_code == 0, result.summary
    return project, work / "w.duckdb"


def assert_contract_columns(path: Path, crm: str, extra: Mapping[str, list[str]]) -> None:
    """Each `stg_<crm>__<table>` in the warehouse at `path` has exactly the
    contract table's columns (`_crm__sources.yml`), in order and with their
    types, then the named `extra` columns and `_load_id`."""
    from runner.raw_contract import table_contracts

    root = Path(__file__).resolve().parents[1]
    sources = Project.load(root, target_path=path.parent / "contract_target").loaded.sources
    for contract in table_contracts(sources):
        with duckdb.connect(str(path), read_only=True) as con:
            got = con.execute(
                "select column_name from information_schema.columns where table_schema = "
                "'staging' and table_name = ? order by ordinal_position",
                [f"stg_{crm}__{contract.name}"],
            ).fetchall()
            types = con.execute(
                "select column_name, data_type from information_schema.columns where "
                "table_schema = 'staging' and table_name = ?",
                [f"stg_{crm}__{contract.name}"],
            ).fetchall()
        wanted = [c.name for c in contract.columns]
        wanted += [c for c in extra.get(contract.name, []) if c not in wanted]
        assert [g[0] for g in got] == [*wanted, "_load_id"], contract.name
        typed = dict(types)
        for column in contract.columns:
            assert typed[column.name] == column.sql_type, (contract.name, column.name)


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The Spark session the Spark tests of one worker share (`local[2]`, one
    shuffle partition; started when a test first asks for it)."""
    from runner.spark_session import SparkTarget, get_session

    target = SparkTarget(
        warehouse_dir=tmp_path_factory.mktemp("spark-catalog"),
        master="local[2]",
        fast_start=True,
        conf={
            "spark.sql.shuffle.partitions": "1",
            "spark.default.parallelism": "2",
            # small data: planning and code generation cost more than they save
            "spark.sql.adaptive.enabled": "false",
            "spark.sql.codegen.wholeStage": "false",
        },
    )
    session = get_session(target)
    yield session
    session.stop()
