"""Faults: builds killed at any moment, a full disk, a second writer, readers
during a build. Each test runs the real `kpi` in a subprocess on a generated
export large enough for a build to take a couple of seconds."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[1]
MARTS = (
    "kpi_win_rate",
    "kpi_lead_conversion",
    "kpi_avg_deal_size",
    "kpi_days_to_close",
    "kpi_quota_attainment",
    "kpi_stage_duration",
    "kpi_monthly_sales",
    "kpi_churn",
    "kpi_lead_response_time",
    "kpi_sales_effort",
)
RAW = ("activities", "leads", "opportunities", "opportunity_stage_history")


def kpi(*args: str, warehouse: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    full_env = {
        **os.environ,
        "KPI_WAREHOUSE": str(warehouse),
        "KPI_TARGET_PATH": str(warehouse.parent / "target"),
        **(env or {}),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "runner", *args],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_kpi(*args: str, warehouse: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = kpi(*args, warehouse=warehouse, env=env)
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def fingerprints(warehouse: Path, tables: list[str]) -> dict[str, tuple | None]:
    """An order-independent fingerprint of each table (None when absent); raw
    tables without their `_load_id`, which numbers loads, not data."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        out: dict[str, tuple | None] = {}
        for table in tables:
            rows = (
                f"(select * exclude (_load_id) from {table})" if table.startswith("raw.") else table
            )
            try:
                out[table] = con.execute(
                    f"select count(*), sum(hash(t)) from {rows} as t"
                ).fetchone()
            except duckdb.CatalogException:
                out[table] = None
        return out
    finally:
        con.close()


TABLES = [f"marts.{m}" for m in MARTS] + [f"raw.{t}" for t in RAW]


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A base export, the same export with ~1% appended, and a clean
    warehouse built from each (the 'previous' and the 'new' versions)."""
    work = tmp_path_factory.mktemp("faults")
    base, appended = work / "base", work / "appended"
    code, err = run_kpi(
        "generate",
        str(base),
        "--opportunities",
        "25000",
        "--format",
        "parquet",
        warehouse=work / "unused.duckdb",
    )
    assert code == 0, err
    shutil.copytree(base, appended)
    code, err = run_kpi(
        "generate",
        str(appended),
        "--append",
        "--format",
        "parquet",
        warehouse=work / "unused.duckdb",
    )
    assert code == 0, err
    previous, new = work / "previous" / "w.duckdb", work / "new" / "w.duckdb"
    for warehouse, export in ((previous, base), (new, appended)):
        warehouse.parent.mkdir()
        started = time.perf_counter()
        code, err = run_kpi("build", "--raw-dir", str(export), warehouse=warehouse)
        assert code == 0, err
    seconds = time.perf_counter() - started
    return {
        "base": base,
        "appended": appended,
        "previous": previous,
        "new": new,
        "seconds": Path(str(seconds)),  # the duration of a build after an append
    }


def copy_warehouse(source: Path, target_dir: Path) -> Path:
    target_dir.mkdir(parents=True)
    target = target_dir / "w.duckdb"
    shutil.copy(source, target)
    return target


@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.9])
def test_a_killed_build_leaves_whole_tables_and_the_next_build_completes(
    exports: dict[str, Path], tmp_path: Path, fraction: float
) -> None:
    # the build after an append loads new rows, rebuilds models and runs tests:
    # kill it at several points of that work
    previous = fingerprints(exports["previous"], TABLES)
    new = fingerprints(exports["new"], TABLES)
    warehouse = copy_warehouse(exports["previous"], tmp_path / "killed")
    duration = float(str(exports["seconds"]))
    proc = kpi("build", "--raw-dir", str(exports["appended"]), warehouse=warehouse)
    time.sleep(duration * fraction)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    after_kill = fingerprints(warehouse, TABLES)  # the file opens
    for table in TABLES:
        assert after_kill[table] in (previous[table], new[table]), table
    code, err = run_kpi("build", "--raw-dir", str(exports["appended"]), warehouse=warehouse)
    assert code == 0, err
    assert fingerprints(warehouse, TABLES) == new


def test_a_full_disk_fails_cleanly_and_leaves_only_whole_tables(
    exports: dict[str, Path], tmp_path: Path
) -> None:
    previous = fingerprints(exports["previous"], TABLES)
    new = fingerprints(exports["new"], TABLES)
    warehouse = copy_warehouse(exports["previous"], tmp_path / "full")
    # the file may not grow beyond its current size: writes fail as on a full disk
    # (a full refresh, so that the build writes every table, not only what the
    # append changed)
    limit_kb = warehouse.stat().st_size // 1024 + 64
    proc = subprocess.run(
        [
            "bash",
            "-c",
            f"trap '' XFSZ; ulimit -f {limit_kb}; exec {sys.executable} -m runner build "
            f"--full-refresh --raw-dir {exports['appended']}",
        ],
        cwd=ROOT,
        env={**os.environ, "KPI_WAREHOUSE": str(warehouse), "KPI_TARGET_PATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "Error" in proc.stderr
    # what was committed before the disk filled is new, the rest as it was
    after = fingerprints(warehouse, TABLES)
    for table in TABLES:
        assert after[table] in (previous[table], new[table]), table
    code, err = run_kpi("build", "--raw-dir", str(exports["appended"]), warehouse=warehouse)
    assert code == 0, err
    assert fingerprints(warehouse, TABLES) == new


def wait_until_locked_by(proc: subprocess.Popen, warehouse: Path, seconds: float = 60) -> None:
    """Wait until `proc` holds the warehouse lock (its pid is in the lock file)."""
    lock = warehouse.with_name(warehouse.name + ".lock")
    deadline = time.monotonic() + seconds
    while f'"pid": {proc.pid},' not in (lock.read_text() if lock.exists() else ""):
        assert proc.poll() is None, "the build ended before it took the lock"
        assert time.monotonic() < deadline, "the build did not take the lock"
        time.sleep(0.05)


def test_a_second_build_names_the_running_one_and_can_wait(
    exports: dict[str, Path], tmp_path: Path
) -> None:
    warehouse = copy_warehouse(exports["previous"], tmp_path / "busy")
    first = kpi("build", "--full-refresh", "--raw-dir", str(exports["base"]), warehouse=warehouse)
    wait_until_locked_by(first, warehouse)
    code, err = run_kpi("build", "--raw-dir", str(exports["base"]), warehouse=warehouse)
    assert code == 2
    assert f"in use by pid {first.pid} (kpi build, started " in err
    code, err = run_kpi("load", str(exports["base"]), warehouse=warehouse)
    assert code == 2 and f"pid {first.pid}" in err
    # a reader is told the same, and --wait lets it read once the build is done
    code, err = run_kpi("show", "kpi_churn", warehouse=warehouse)
    assert code == 2 and f"pid {first.pid}" in err
    code, err = run_kpi("show", "kpi_churn", "--wait", "120", warehouse=warehouse)
    assert code == 0, err
    first.communicate(timeout=120)
    assert first.returncode == 0
    code, err = run_kpi(
        "build", "--wait", "5", "--raw-dir", str(exports["base"]), warehouse=warehouse
    )
    assert code == 0, err


def test_readers_work_normally_while_no_build_runs(exports: dict[str, Path]) -> None:
    con = duckdb.connect(str(exports["previous"]), read_only=True)
    try:
        code, err = run_kpi("show", "kpi_win_rate", "--limit", "2", warehouse=exports["previous"])
    finally:
        con.close()
    assert code == 0, err


def test_a_warehouse_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    code, err = run_kpi("build", warehouse=Path("/proc/kpi-cannot-write/w.duckdb"))
    assert code == 2
    assert "Traceback" not in err
    assert "/proc/kpi-cannot-write" in err


READER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print("ready", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def test_a_reader_holding_the_file_is_named_and_waited_for(
    exports: dict[str, Path], tmp_path: Path
) -> None:
    """Item 18: an analyst's read-only connection holds the file. The build
    names that process (not itself), and --wait waits for it to let go."""
    warehouse = copy_warehouse(exports["previous"], tmp_path / "read")
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(warehouse), "6"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "ready"
        code, err = run_kpi("build", "--raw-dir", str(exports["base"]), warehouse=warehouse)
        assert code == 2
        assert f"pid {reader.pid}" in err
        assert "has the DuckDB file open" in err
        assert "Traceback" not in err
        started = time.monotonic()
        code, err = run_kpi(
            "build", "--wait", "60", "--raw-dir", str(exports["base"]), warehouse=warehouse
        )
        assert code == 0, err
        assert reader.poll() is not None  # it waited for the reader to close
        assert time.monotonic() - started > 1.0
    finally:
        reader.kill()
        reader.communicate()
