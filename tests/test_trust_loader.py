"""The loader under hostile conditions, each run as a user runs it: `kpi` in a
subprocess (issue 14: the machine's time zone, Ctrl-C, memory, a damaged
warehouse, a target folder that cannot be written)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from runner import raw_load
from runner.cli import main

SOURCES = """
sources:
  - name: shop
    schema: raw
    meta: {load_from_export: true}
    tables:
      - name: events
        meta: {primary_key: [event_id]}
        columns:
          - {name: event_id, data_type: id, meta: {required: true}}
          - {name: seen_at, data_type: timestamp, meta: {required: true}}
          - {name: seen_on, data_type: date}
"""
MODEL = """
{{ config(materialized='table') }}
select
    event_id,
    seen_at,
    date_trunc('month', seen_at) as seen_month,
    epoch(cast(seen_at as timestamptz)) as seen_epoch,
    cast(cast(seen_at as timestamptz) as varchar) as seen_text,
    cast(seen_on as timestamptz) as seen_on_tz
from {{ source('shop', 'events') }}
"""
EVENTS = (
    "event_id,seen_at,seen_on\n"
    "e1,2025-01-01T00:03:34Z,2025-01-01\n"
    # inside New York's DST gap (02:00-03:00 local time does not exist there)
    "e2,2025-03-09 02:30:00,2025-03-09\n"
    "e3,2025-11-02 01:30:00,2025-11-02\n"
    "e4,2025-06-30T23:30:00-04:00,\n"
)


def kpi(*args: str, project: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KPI_")},
        "KPI_WAREHOUSE": str(project / "w.duckdb"),
        "KPI_TARGET_PATH": str(project / "target"),
        **(env or {}),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "runner", *args],
        cwd=project,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as in a terminal: a test run started in the background
        # inherits an ignored SIGINT, which Python then leaves ignored
        preexec_fn=_sigint_by_default,
    )


def _sigint_by_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_kpi(*args: str, project: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = kpi(*args, project=project, env=env)
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def make_project(root: Path, events: str = EVENTS) -> Path:
    files = {
        "pyproject.toml": '[tool.kpi]\nthreads = 2\nraw_dir = "export"\n',
        "models/sources.yml": SOURCES,
        "models/events_seen.sql": MODEL,
        "models/events_by_month.sql": "{{ config(materialized='table') }}\n"
        "select seen_month, count(*) as events from {{ ref('events_seen') }} group by all\n",
        "export/events.csv": events,
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def every_table(warehouse: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema not in ('_kpi') and table_type = 'BASE TABLE' order by all"
        ).fetchall()
        out = {}
        for schema, name in tables:
            columns = con.execute(
                "select column_name from information_schema.columns where table_schema = ? "
                "and table_name = ? and column_name <> '_load_id' order by ordinal_position",
                [schema, name],
            ).fetchall()
            listed = ", ".join(f'"{c}"' for (c,) in columns)
            out[f"{schema}.{name}"] = con.execute(
                f'select {listed} from "{schema}"."{name}" order by all'
            ).fetchall()
        return out
    finally:
        con.close()


def test_item1_the_machine_time_zone_changes_no_table(tmp_path: Path) -> None:
    """item 1: a build under TZ=America/New_York equals one under TZ=UTC in
    every raw table and model, a DST-gap local time included."""
    built = {}
    for zone in ("UTC", "America/New_York"):
        project = make_project(tmp_path / zone.replace("/", "_"))
        code, err = run_kpi("build", project=project, env={"TZ": zone})
        assert code == 0, err
        built[zone] = every_table(project / "w.duckdb")
    assert built["UTC"] == built["America/New_York"]
    seen = {row[0]: row[1] for row in built["UTC"]["main.events_seen"]}
    assert str(seen["e1"]) == "2025-01-01 00:03:34"
    assert str(seen["e2"]) == "2025-03-09 02:30:00"


def test_item17_interrupt_during_a_load_exits_130_and_writes_nothing(tmp_path: Path) -> None:
    """item 17: Ctrl-C while `kpi load` reads: exit 130, "interrupted", and the
    raw tables as they were."""
    project = make_project(tmp_path / "p", EVENTS)
    code, err = run_kpi("load", project=project)
    assert code == 0, err
    before = every_table(project / "w.duckdb")
    duckdb.connect().execute(
        "copy (select 'e' || range as event_id, '2025-01-01 00:00:00' as seen_at, "
        "'2025-01-02' as seen_on from range(3000000)) "
        f"to '{project / 'export' / 'events.csv'}' (header, format csv)"
    )
    proc = kpi("load", project=project)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "Loading the raw export" in line, line
    time.sleep(0.2)  # into the load: hashing, then DuckDB's scans
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "nterrupted" in err and "Traceback" not in err and "Internal error" not in err
    assert every_table(project / "w.duckdb") == before


def test_item17_duckdb_cancelling_a_load_query_is_an_interrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """item 17: Ctrl-C inside a DuckDB query surfaces as DuckDB's "Query
    interrupted"; the load says "interrupted", exits 130 and keeps nothing."""
    project = make_project(tmp_path / "p")
    monkeypatch.chdir(project)
    for name in [n for n in os.environ if n.startswith("KPI_")]:
        monkeypatch.delenv(name)
    runner = CliRunner()
    assert runner.invoke(main, ["load", "--warehouse", "w.duckdb"]).exit_code == 0
    before = every_table(project / "w.duckdb")
    (project / "export" / "events.csv").write_text(EVENTS + "e9,2026-01-01 00:00:00,\n")

    def cancelled(*args: object) -> None:
        raise RuntimeError("Query interrupted")

    monkeypatch.setattr(raw_load._Loader, "checked_rows", cancelled)
    result = runner.invoke(main, ["load", "--warehouse", "w.duckdb"])
    assert result.exit_code == 130, result.output
    assert "Interrupted" in result.output and "Internal error" not in result.output
    assert every_table(project / "w.duckdb") == before


def test_item17_out_of_memory_names_memory_and_the_limit(tmp_path: Path) -> None:
    """item 17: a load that runs out of memory says so, and how to raise the
    limit; it does not blame the export."""
    rows = "".join(f"e{i},2025-01-01 00:00:00,\n" for i in range(300_000))
    project = make_project(tmp_path / "p", "event_id,seen_at,seen_on\n" + rows)
    code, err = run_kpi(
        "load", project=project, env={"KPI_DUCKDB_MEMORY_LIMIT": "1MB", "KPI_DUCKDB_THREADS": "1"}
    )
    assert code != 0
    assert "memory" in err and "KPI_DUCKDB_MEMORY_LIMIT" in err, err
    assert "comma-separated" not in err and "Internal error" not in err


def test_item17_a_truncated_warehouse_is_named_not_the_export(tmp_path: Path) -> None:
    """item 17: a damaged warehouse file is named as such (exit 2)."""
    project = make_project(tmp_path / "p")
    code, err = run_kpi("build", project=project)
    assert code == 0, err
    warehouse = project / "w.duckdb"
    with warehouse.open("r+b") as fh:
        fh.truncate(warehouse.stat().st_size * 2 // 3)
    code, err = run_kpi("load", "--full-refresh", project=project)
    assert code == 2, err
    assert f"{warehouse}:" in err and "damaged" in err, err
    assert f"{project / 'export'}:" not in err


def test_item17_a_target_folder_that_cannot_be_written_is_exit_2(tmp_path: Path) -> None:
    """item 17: a read-only target folder is a plain error naming it, exit 2."""
    project = make_project(tmp_path / "p")
    target = "/sys/kpi-read-only-target" if os.geteuid() == 0 else str(tmp_path / "ro")
    if os.geteuid() != 0:
        os.mkdir(target, 0o555)
    code, err = run_kpi("build", project=project, env={"KPI_TARGET_PATH": target})
    assert code == 2, err
    assert target in err and "Internal error" not in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["load", "build"])
def test_item17_a_full_disk_is_a_clean_error(tmp_path: Path, command: str) -> None:
    """item 17: the disk filling up during a load is a plain error, exit 1."""
    project = make_project(tmp_path / "p")
    rows = "".join(f"e{i},2025-01-01 00:00:00,2025-01-01\n" for i in range(200_000))
    (project / "export" / "events.csv").write_text("event_id,seen_at,seen_on\n" + rows)
    proc = subprocess.run(
        [
            "bash",
            "-c",
            f"trap '' XFSZ; ulimit -f 512; exec {sys.executable} -m runner {command}",
        ],
        cwd=project,
        env={
            **os.environ,
            "KPI_WAREHOUSE": str(project / "w.duckdb"),
            "KPI_TARGET_PATH": str(project / "target"),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    assert "disk is full" in proc.stderr, proc.stderr
    assert "Internal error" not in proc.stderr and "Traceback" not in proc.stderr
