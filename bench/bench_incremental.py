"""Incremental refresh: the build after appending ~1% new rows to the export.

Builds a fresh warehouse from a generated export (load + build), appends ~1%
new rows with `kpi generate --append` (new part files for activities, leads
and stage history; rewritten snapshot tables), then times `kpi build` (the
incremental refresh: it loads only what changed, and incremental models
process only new rows), then `kpi build` once more with nothing changed, and
`kpi build --full-refresh` on a copy of the same warehouse (every model
rebuilt from the same raw data). With `--repeat N` the refresh runs N times,
each from a copy of the warehouse as it was before it, and the other two N
times; the medians are printed. Every mart of the two warehouses is compared
row for row. Wall times and CPU times (user + system of the `kpi` process)
are both printed: on a shared machine only the CPU ratios are steady.

Then the floor, in the same run: the refresh once more as `kpi load` and
`kpi build --skip-load` (each timed), the build traced statement by
statement (`bench/sql_trace.py`); then what DuckDB alone needs for the same
work (`bench/replay_statements.py`): reading the new and changed files once
each into a temporary table, and replaying the traced build's statements
that build relations and run tests, in one connection with no runner around
them, on the warehouse as the load left it. Last, the least any design
pays before a model runs (`bench/append_floor.py`): the new and changed files
read, the rewritten snapshots compared with the loaded rows, the appended
keys checked, the new and changed rows stored and committed, by DuckDB alone.

    python bench/bench_incremental.py --opportunities 1000000 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_build import KPI, OUT, PYTHON, ROOT, Timing, export_for, kpi_env, run

from runner.raw_files import SETTLED_NS

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
    "fct_opportunities",
    "fct_leads",
    "dim_reps",
    "dim_teams",
)


def copy(source: Path, target: Path) -> None:
    """Copy a warehouse directory and write it to disk before anything is
    timed, so that the kernel is not writing 700 MB back during the command
    (`append_floor.py` took 2.26 s right after a copy; its steps took
    1.65-1.72 s after a `sync`)."""
    shutil.copytree(source, target)
    os.sync()


def differing_marts(left: Path, right: Path) -> list[str]:
    """Marts whose rows differ between two warehouses (as multisets)."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"attach '{left}' as l (read_only)")
    con.execute(f"attach '{right}' as r (read_only)")
    differ = []
    for mart in MARTS:
        row = con.execute(
            f"select (select count(*) from (select * from l.marts.{mart} except all "
            f"select * from r.marts.{mart})) + (select count(*) from (select * from "
            f"r.marts.{mart} except all select * from l.marts.{mart}))"
        ).fetchone()
        if row and row[0]:
            differ.append(f"{mart} ({row[0]} rows)")
    return differ


def changed_files(warehouse: Path, export: Path) -> list[Path]:
    """The export's files the newest load read (new parts, changed snapshots)."""
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            "select file_name from _kpi.load_state "
            "where load_id = (select max(load_id) from _kpi.load_state)"
        ).fetchall()
    finally:
        con.close()
    return [export / name for (name,) in rows]


def floor(
    work: Path, export: Path, before: Path, inc: Path, memory_limit: str | None
) -> dict[str, Timing]:
    """The refresh split into load and build by the runner, and the same work
    by DuckDB alone (see the module docstring)."""
    env = kpi_env(inc, memory_limit)
    # at the refresh's own path: a warehouse's path is part of what its
    # incremental models were built with
    shutil.rmtree(inc)
    copy(before, inc)
    timings = {"runner load": run([*KPI, "load", str(export)], env)}
    loaded = work / "floor"
    shutil.rmtree(loaded, ignore_errors=True)
    copy(inc, loaded)
    trace = work / "trace.jsonl"
    traced = [PYTHON, str(ROOT / "bench" / "sql_trace.py"), "--out", str(trace), "--"]
    timings["runner build"] = run([*traced, "build", "--skip-load", "--raw-dir", str(export)], env)
    replay = [PYTHON, str(ROOT / "bench" / "replay_statements.py")]
    replay += ["--warehouse", str(loaded / "warehouse.duckdb")]
    if memory_limit:
        replay += ["--memory-limit", memory_limit]
    files = changed_files(inc / "warehouse.duckdb", export)
    timings["DuckDB: read the new and changed files"] = run(
        [*replay, "--read-files", *map(str, files)]
    )
    replayed = work / "replayed.jsonl"  # each statement's seconds, kept for a profile
    timings["DuckDB: the build's statements"] = run(
        [*replay, "--trace", str(trace), "--profile", str(replayed)]
    )
    shutil.rmtree(loaded)
    copy(before, loaded)
    least = [PYTHON, str(ROOT / "bench" / "append_floor.py"), "--export", str(export)]
    least += ["--warehouse", str(loaded / "warehouse.duckdb")]
    least += ["--loaded", str(inc / "warehouse.duckdb"), *primary_keys()]
    timings["DuckDB: read, compare and store the append (any design)"] = run(least)
    shutil.rmtree(loaded)
    return timings


def primary_keys() -> list[str]:
    """`--key table=columns` for `append_floor.py`, from the export contract."""
    from runner.project import Project
    from runner.raw_contract import table_contracts

    contracts = table_contracts(Project.load(ROOT).loaded.sources)
    return [
        f"--key={c.name}={','.join(c.primary_key)}"
        for c in contracts
        if c.crm == "contract" and c.primary_key
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--opportunities", default="1000000")
    parser.add_argument("--format", default="parquet", choices=["csv", "parquet"])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--memory-limit", default=None, help="DuckDB memory_limit, e.g. 4GB")
    args = parser.parse_args()
    base = export_for(args.opportunities, args.format)
    work = OUT / f"incremental-{args.opportunities}"
    shutil.rmtree(work, ignore_errors=True)
    export = work / "export"
    shutil.copytree(base, export)
    # an export is written some time before it is built: wait until its
    # files have settled (docs/incremental.md), or the first build could not
    # record their stat and the refresh would hash every unchanged file again
    time.sleep(SETTLED_NS / 1e9 + 0.5)
    inc, full, before = work / "incremental", work / "full", work / "before-refresh"
    inc.mkdir()
    env = kpi_env(inc, args.memory_limit)
    first = run([*KPI, "build", "--raw-dir", str(export)], env)
    appended = run([*KPI, "generate", str(export), "--append", "--format", args.format])
    copy(inc, full)
    copy(inc, before)
    refreshes, unchanged, rebuilds = [], [], []
    for attempt in range(args.repeat):
        if attempt:
            # the same refresh again, from the warehouse as it was before it
            shutil.rmtree(inc)
            copy(before, inc)
        refresh = run([*KPI, "build", "--raw-dir", str(export)], env)
        refreshes.append(refresh)
        unchanged.append(run([*KPI, "build", "--raw-dir", str(export)], env))
    full_env = kpi_env(full, args.memory_limit)
    # the copy has loaded the base export only: load the appended rows first,
    # so that the full refresh below times models and tests alone
    load = run([*KPI, "load", str(export)], full_env)
    for _ in range(args.repeat):
        rebuild = [*KPI, "build", "--full-refresh", "--raw-dir", str(export)]
        rebuilds.append(run(rebuild, full_env))
    differ = differing_marts(inc / "warehouse.duckdb", full / "warehouse.duckdb")
    floors = floor(work, export, before, inc, args.memory_limit)
    refresh_s = statistics.median(r.seconds for r in refreshes)
    unchanged_s = statistics.median(r.seconds for r in unchanged)
    rebuild_s = statistics.median(r.seconds for r in rebuilds)
    refresh_cpu = statistics.median(r.cpu_seconds for r in refreshes)
    unchanged_cpu = statistics.median(r.cpu_seconds for r in unchanged)
    rebuild_cpu = statistics.median(r.cpu_seconds for r in rebuilds)
    shown = lambda values: ", ".join(f"{v:.2f}" for v in values)  # noqa: E731
    load_avg = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"| opportunities | {args.opportunities} |")
    print("|---|---|")
    print(f"| first build (load + build), s | {first.seconds:.2f} |")
    print(f"| append ~1% (kpi generate --append), s | {appended.seconds:.2f} |")
    print(
        f"| incremental kpi build (load + build), s | {refresh_s:.2f} "
        f"({shown(r.seconds for r in refreshes)}) |"
    )
    print(f"| load of the appended export alone, s | {load.seconds:.2f} |")
    print(
        f"| kpi build with nothing changed, s | {unchanged_s:.2f} "
        f"({shown(r.seconds for r in unchanged)}) |"
    )
    print(
        f"| full-refresh kpi build (raw loaded), s | {rebuild_s:.2f} "
        f"({shown(r.seconds for r in rebuilds)}) |"
    )
    print(f"| incremental / full refresh | {refresh_s / rebuild_s:.3f} |")
    print(f"| nothing changed / full refresh | {unchanged_s / rebuild_s:.3f} |")
    print(
        f"| CPU s (user + system): incremental, nothing changed, full refresh | "
        f"{refresh_cpu:.2f} ({shown(r.cpu_seconds for r in refreshes)}), "
        f"{unchanged_cpu:.2f} ({shown(r.cpu_seconds for r in unchanged)}), "
        f"{rebuild_cpu:.2f} ({shown(r.cpu_seconds for r in rebuilds)}) |"
    )
    print(f"| incremental / full refresh, CPU | {refresh_cpu / rebuild_cpu:.3f} |")
    print(f"| nothing changed / full refresh, CPU | {unchanged_cpu / rebuild_cpu:.3f} |")
    print(f"| incremental / first build | {refresh_s / first.seconds:.3f} |")
    print(
        f"| peak RSS, MB: first build, incremental, full refresh | {first.peak_rss_mb:.0f}, "
        f"{max(r.peak_rss_mb for r in refreshes):.0f}, {max(r.peak_rss_mb for r in rebuilds):.0f} |"
    )
    for name, timing in floors.items():
        print(
            f"| {name}, s (CPU s) | {timing.seconds:.2f} ({timing.cpu_seconds:.2f}) | "
            f"{timing.seconds / rebuild_s:.3f} ({timing.cpu_seconds / rebuild_cpu:.3f}) "
            "of the full refresh |"
        )
    print(f"| load average (1, 5, 15 min) at the end | {load_avg} |")
    print(f"| marts identical | {'yes' if not differ else 'NO: ' + ', '.join(differ)} |")


if __name__ == "__main__":
    main()
