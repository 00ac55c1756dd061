"""DuckDB against Spark (local mode) on the same export: `kpi build` and
`kpi build --target spark`, each a full build (`--full-refresh`) after a
first build that loaded the export, and the ratio Spark / DuckDB.

    python bench/bench_spark.py --scales demo,200000 --repeat 1

Spark's time includes starting its JVM (a new `kpi` process each run), which
is most of a small build. Exports and warehouses go to bench/out/ (ignored
by git).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_build import KPI, OUT, export_for, run


def time_build(export: Path, workdir: Path, target: str, repeat: int) -> list[float]:
    env = {
        "KPI_WAREHOUSE": str(workdir / "warehouse.duckdb"),
        "KPI_TARGET_PATH": str(workdir / "target"),
    }
    build = [*KPI, "build", "--raw-dir", str(export), "--target", target]
    run(build, env)  # load the export and build once
    return [run([*build, "--full-refresh"], env).seconds for _ in range(repeat)]


def differing_marts(duckdb_file: Path, spark_dir: Path) -> list[str]:
    """The marts whose rows differ between the two builds (floats at 1e-9
    relative), read with DuckDB from Spark's Parquet files."""
    import math

    import duckdb

    differing = []
    with duckdb.connect(str(duckdb_file), read_only=True) as con:
        tables = con.execute(
            "select table_name from information_schema.tables "
            "where table_schema = 'marts' and table_type = 'BASE TABLE'"
        ).fetchall()
        for (table,) in tables:
            columns = [
                d[0] for d in con.execute(f"select * from marts.{table} limit 0").description
            ]
            listed = ", ".join(f'"{c}"' for c in columns)
            ours = con.execute(f"select {listed} from marts.{table} order by {listed}").fetchall()
            files = spark_dir / "marts" / table / "*.parquet"
            theirs = con.execute(
                f"select {listed} from read_parquet('{files}') order by {listed}"
            ).fetchall()
            same = len(ours) == len(theirs) and all(
                (
                    math.isclose(a, b, rel_tol=1e-9)
                    if isinstance(a, float) and b is not None
                    else a == b
                )
                for row, other in zip(ours, theirs, strict=True)
                for a, b in zip(row, other, strict=True)
            )
            if not same:
                differing.append(table)
    return sorted(differing)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", default="demo,200000")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--format", default="parquet", choices=["csv", "parquet"])
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; Spark local[*]")
    print(f"{'scale':>8} {'duckdb s':>9} {'spark s':>9} {'spark/duckdb':>13}")
    for scale in args.scales.split(","):
        export = export_for(scale, args.format)
        seconds = {}
        for target in ("duckdb", "spark"):
            workdir = OUT / f"spark-bench-{scale}-{target}"
            seconds[target] = statistics.median(time_build(export, workdir, target, args.repeat))
        ratio = seconds["spark"] / seconds["duckdb"]
        differing = differing_marts(
            OUT / f"spark-bench-{scale}-duckdb" / "warehouse.duckdb",
            OUT / f"spark-bench-{scale}-spark" / "warehouse-spark",
        )
        same = "marts equal" if not differing else "DIFFER: " + ", ".join(differing)
        print(
            f"{scale:>8} {seconds['duckdb']:>9.1f} {seconds['spark']:>9.1f} {ratio:>12.1f}x  {same}"
        )


if __name__ == "__main__":
    main()
