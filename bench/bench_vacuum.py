"""Nightly refreshes in a row: deleted rows vacuumed at every checkpoint, or
deferred until they are a fifth of a table (the runner's default).

A single refresh from a freshly built warehouse never reaches the threshold,
so `bench_incremental.py` alone would show only the cheap refreshes. This
runs `--rounds` refreshes in a row, each after another `kpi generate
--append`, on two copies of the warehouse `bench_incremental.py` left before
its refresh: one with DuckDB's own vacuum at every checkpoint
(`KPI_DUCKDB_MAX_VACUUM_TASKS=100`, DuckDB's default), one with the
runner's. The two take turns round by round (the first one alternating), so
that the machine's drift falls on both. Printed: every round's wall and CPU
seconds, the means and their ratio, the rows each big table stores and
holds live at the end, the size of each warehouse file, and one
`kpi build --full-refresh` on a copy of the last deferred warehouse, to
express the mean refresh as a share of a full refresh.

    python bench/bench_incremental.py --opportunities 1000000   # first
    python bench/bench_vacuum.py --opportunities 1000000 --rounds 8
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_build import KPI, OUT, Timing, kpi_env, run
from bench_incremental import copy

POLICIES = {
    "vacuum at every checkpoint": {"KPI_DUCKDB_MAX_VACUUM_TASKS": "100"},
    "deferred (the runner's)": {},
}


def exports(work: Path, first: Path, rounds: int, file_format: str) -> list[Path]:
    """The export of each round: the bench's appended export, then one more
    `kpi generate --append` per round."""
    found = [first]
    for k in range(2, rounds + 1):
        path = work / f"export-{k}"
        if not path.exists():
            shutil.copytree(found[-1], path)
            run([*KPI, "generate", str(path), "--append", "--format", file_format])
        found.append(path)
    return found


def stored_and_live(warehouse: Path) -> list[tuple[str, int, int]]:
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = con.execute(
            "select schema_name || '.' || table_name, estimated_size from duckdb_tables() "
            "where estimated_size > 122880 order by 1"
        ).fetchall()
        return [
            (name, stored, con.execute(f"select count(*) from {name}").fetchone()[0])  # type: ignore[index]
            for name, stored in tables
        ]
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--opportunities", default="1000000")
    parser.add_argument("--format", default="parquet", choices=["csv", "parquet"])
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    bench = OUT / f"incremental-{args.opportunities}"
    before = bench / "before-refresh"
    if not (before / "warehouse.duckdb").exists():
        raise SystemExit(
            f"{before} is missing: run `python bench/bench_incremental.py --opportunities "
            f"{args.opportunities}` first."
        )
    work = OUT / f"vacuum-{args.opportunities}"
    work.mkdir(parents=True, exist_ok=True)
    rounds = exports(work, bench / "export", args.rounds, args.format)
    folders = {name: work / f"warehouse-{i}" for i, name in enumerate(POLICIES)}
    for folder in folders.values():
        shutil.rmtree(folder, ignore_errors=True)
        copy(before, folder)
    times: dict[str, list[Timing]] = {name: [] for name in POLICIES}
    names = list(POLICIES)
    for k, export in enumerate(rounds):
        for name in names if k % 2 == 0 else reversed(names):
            env = {**kpi_env(folders[name], None), **POLICIES[name]}
            times[name].append(run([*KPI, "build", "--raw-dir", str(export)], env))
    full = work / "full"
    shutil.rmtree(full, ignore_errors=True)
    copy(folders[names[-1]], full)
    rebuild_cmd = [*KPI, "build", "--full-refresh", "--raw-dir", str(rounds[-1])]
    rebuild = run(rebuild_cmd, kpi_env(full, None))
    shutil.rmtree(full)

    print(f"| round | {' | '.join(f'{n}, s (CPU s)' for n in names)} |")
    print(f"|---|{'---|' * len(names)}")
    for k in range(len(rounds)):
        cells = [f"{times[n][k].seconds:.2f} ({times[n][k].cpu_seconds:.2f})" for n in names]
        print(f"| {k + 1} | {' | '.join(cells)} |")
    means = {n: statistics.mean(t.seconds for t in times[n]) for n in names}
    cpus = {n: statistics.mean(t.cpu_seconds for t in times[n]) for n in names}
    print(f"| mean | {' | '.join(f'{means[n]:.2f} ({cpus[n]:.2f})' for n in names)} |")
    print(
        f"| mean / full refresh ({rebuild.seconds:.2f} s, {rebuild.cpu_seconds:.2f} CPU s) | "
        + " | ".join(
            f"{means[n] / rebuild.seconds:.3f} ({cpus[n] / rebuild.cpu_seconds:.3f})" for n in names
        )
        + " |"
    )
    first, last = names
    print(
        f"\ndeferred / every checkpoint, mean refresh: {means[last] / means[first]:.3f} wall, "
        f"{cpus[last] / cpus[first]:.3f} CPU"
    )
    for name in names:
        warehouse = folders[name] / "warehouse.duckdb"
        print(f"\n{name}: {warehouse.stat().st_size / 2**20:.0f} MB")
        for table, stored, live in stored_and_live(warehouse):
            share = (stored - live) / stored
            print(f"  {table}: {stored} stored, {live} live ({share:.1%} deleted)")
    load_avg = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"\nload average (1, 5, 15 min) at the end: {load_avg}")


if __name__ == "__main__":
    main()
