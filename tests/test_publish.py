"""runner/publish.py: the marts written to a new file and renamed over the
published one. A reader holding the published file keeps its version and
never blocks a build; a build killed while publishing leaves the previous
file whole. Builds run the real `kpi` in a subprocess, as in test_faults."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from runner.engines.duckdb import DuckDBAdapter
from runner.project import Project
from runner.publish import INFO_TABLE, publish_marts

ROOT = Path(__file__).resolve().parents[1]

READER = textwrap.dedent(
    """
    import json, sys, time, duckdb
    path, stop = sys.argv[1], sys.argv[2]
    con = duckdb.connect(path, read_only=True)
    def version():
        info = con.execute("select max(published_at), list(table_name), list(row_count) "
                           "from publish_info").fetchone()
        for table, rows in zip(info[1], info[2]):
            count = con.execute(f"select count(*) from main.{table}").fetchone()[0]
            assert count == rows, (table, count, rows)
        return str(info[0])
    first = version()
    print("ready", flush=True)
    reads = 0
    import os
    while not os.path.exists(stop):
        assert version() == first
        reads += 1
        time.sleep(0.01)
    print(json.dumps({"version": first, "reads": reads}), flush=True)
    """
)


def kpi_build(warehouse: Path, published: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "KPI_WAREHOUSE": str(warehouse),
        "KPI_TARGET_PATH": str(warehouse.parent / "target"),
        "KPI_PUBLISH": str(published),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "runner", "build"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def whole_version(published: Path) -> tuple[str, dict[str, int]]:
    """The version a new connection sees; asserts every table is whole."""
    con = duckdb.connect(str(published), read_only=True)
    try:
        rows = con.execute(f"select published_at, table_name, row_count from {INFO_TABLE}")
        info = rows.fetchall()
        counts = {}
        for _, table, expected in info:
            (count,) = con.execute(f"select count(*) from main.{table}").fetchone() or (0,)
            assert count == expected, table
            counts[table] = count
        return str(info[0][0]), counts
    finally:
        con.close()


@pytest.fixture
def warehouse(demo_build: tuple[Project, Path], tmp_path: Path) -> Path:
    """A copy of the demo warehouse, so builds here only refresh it."""
    _, built = demo_build
    target = tmp_path / "w.duckdb"
    shutil.copy(built, target)
    return target


def test_publish_writes_every_mart_and_entity_table(warehouse: Path, tmp_path: Path) -> None:
    con = duckdb.connect(str(warehouse))
    try:
        result = publish_marts(DuckDBAdapter(con), tmp_path / "pub" / "marts.duckdb")
    finally:
        con.close()
    tmp_path = tmp_path / "pub"
    assert {"kpi_win_rate", "kpi_churn", "fct_opportunities", "dim_reps", "dim_teams"} <= set(
        result.tables
    )
    assert len([t for t in result.tables if t.startswith("kpi_")]) == 10
    _, counts = whole_version(tmp_path / "marts.duckdb")
    assert counts == result.tables
    assert list(tmp_path.iterdir()) == [tmp_path / "marts.duckdb"]  # no temporary file left
    # named marts.duckdb, the file answers the warehouse's queries
    check = duckdb.connect(str(tmp_path / "marts.duckdb"), read_only=True)
    try:
        assert check.execute("select count(*) from marts.kpi_win_rate").fetchone() == (
            counts["kpi_win_rate"],
        )
    finally:
        check.close()


def test_a_reader_holding_the_file_never_blocks_three_builds(
    warehouse: Path, tmp_path: Path
) -> None:
    published = tmp_path / "pub" / "marts.duckdb"
    proc = kpi_build(warehouse, published)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    first, _ = whole_version(published)
    stop = tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(published), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout is not None
    assert reader.stdout.readline().strip() == "ready"
    seen = [first]
    for _ in range(3):
        proc = kpi_build(warehouse, published)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "Published 15 mart table(s)" in err
        version, _ = whole_version(published)  # a new connection sees the new version
        assert version > seen[-1]
        seen.append(version)
    stop.touch()
    out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    report = json.loads(out)
    assert report["version"] == first  # the held connection kept its version, whole
    assert report["reads"] > 0


def test_a_build_killed_while_publishing_leaves_the_previous_file(
    warehouse: Path, tmp_path: Path
) -> None:
    published = tmp_path / "marts.duckdb"
    proc = kpi_build(warehouse, published)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    before = whole_version(published)
    caught = False
    for _ in range(8):  # the publish takes a few tens of ms: catch it in the act
        proc = kpi_build(warehouse, published)
        while proc.poll() is None:
            if any(tmp_path.glob(".marts.duckdb.*.tmp")):
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.001)
        proc.communicate(timeout=60)
        # killed half-way: the temporary file is left; else the build published
        caught = any(tmp_path.glob(".marts.duckdb.*.tmp"))
        if caught:
            break
        before = whole_version(published)
    assert caught, "the build was never caught while publishing"
    assert whole_version(published) == before
    proc = kpi_build(warehouse, published)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert whole_version(published)[0] > before[0]
    assert not list(tmp_path.glob(".marts.duckdb.*"))  # the leftover is gone


SMALL = {
    "pyproject.toml": "[tool.kpi]\nthreads = 1\npublish = 'out/marts.duckdb'\n",
    "models/kpi_x.sql": "{{ config(materialized='table', schema='marts') }}select 1 as id",
    "models/kpi_bad.sql": "{{ config(materialized='table', schema='marts') }}"
    "select {{ var('value', 1) }} as id",
}


def test_publish_setting_is_relative_to_the_project(make_project, load) -> None:
    root = make_project(SMALL)
    project = load(root)
    assert project.build().exit_code == 0
    _, counts = whole_version(root / "out" / "marts.duckdb")
    assert counts == {"kpi_bad": 1, "kpi_x": 1}


def test_a_failed_build_publishes_nothing(make_project, load) -> None:
    root = make_project(SMALL)
    assert load(root).build().exit_code == 0
    before = whole_version(root / "out" / "marts.duckdb")
    failing = load(root, vars={"value": "'x'::int"})
    assert failing.build().exit_code == 1
    assert whole_version(root / "out" / "marts.duckdb") == before


def test_a_publish_that_cannot_write_is_an_error_after_the_run_is_recorded(
    make_project, load, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.errors import WarehouseError

    root = make_project(SMALL)
    monkeypatch.setenv("KPI_PUBLISH", "/proc/kpi-cannot-write/marts.duckdb")
    with pytest.raises(WarehouseError, match="cannot publish the marts"):
        load(root).build()
    assert (root / "target" / "run_results.json").exists()


def test_publishing_over_the_warehouse_is_refused(make_project, load) -> None:
    from runner.errors import ProjectError

    root = make_project({**SMALL, "pyproject.toml": "[tool.kpi]\npublish = 'w.duckdb'\n"})
    with pytest.raises(ProjectError, match="publish names the warehouse itself"):
        load(root)
