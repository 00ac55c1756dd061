"""Would fusing a relation's data tests pay on DuckDB? A timing, not a runner change.

For every relation with two tests or more, on a warehouse `bench_build.py`
left behind, time its tests the way a build counts them (one
`select count(*)` per test) against one fused query per relation (a
`union all` of the counts, as the Spark target runs them), `--repeat` times
each, alternating; it prints the medians.

    python bench/bench_build.py --scales demo,10000 --repeat 3
    python bench/bench_fused_tests.py bench/out/build-demo/warehouse.duckdb runner/crm/demo_export
    python bench/bench_fused_tests.py bench/out/build-10000/warehouse.duckdb \\
        bench/out/data/10000-parquet
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path

import duckdb

from runner.compiling import Compiler
from runner.materializations import strip_statement
from runner.planning import plan_units
from runner.project import Project
from runner.reporting import Reporter

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("raw_dir", type=Path)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    project = Project.load(
        ROOT,
        warehouse=args.warehouse,
        raw_dir=args.raw_dir,
        target_path=ROOT / "bench" / "out" / "fused-target",
        reporter=Reporter(stream=io.StringIO()),
    )
    loaded = project.loaded
    units, _ = plan_units(loaded.nodes, set(loaded.nodes), "build", loaded.graph)
    compiler = Compiler(loaded)
    groups = [
        [strip_statement(compiler.compile(test).sql) for test in unit.tests]
        for unit in units.values()
        if not unit.node.is_test and len(unit.tests) >= 2
    ]
    con = duckdb.connect(str(args.warehouse), read_only=True)

    def each(tests: list[str]) -> None:
        for sql in tests:
            con.execute(f"select count(*) from (\n{sql}\n) as kpi_test").fetchone()

    def fused(tests: list[str]) -> None:
        parts = [
            f"select {i} as test_index, count(*) as failures from (\n{sql}\n) as test_{i}"
            for i, sql in enumerate(tests)
        ]
        con.execute("\nunion all\n".join(parts)).fetchall()

    seconds: dict[str, list[float]] = {"one query per test": [], "one per relation": []}
    for _ in range(args.repeat):
        for label, run in (("one query per test", each), ("one per relation", fused)):
            started = time.perf_counter()
            for tests in groups:
                run(tests)
            seconds[label].append(time.perf_counter() - started)
    print(f"{len(groups)} relations, {sum(len(g) for g in groups)} tests")
    for label, times in seconds.items():
        print(f"{label}: median {statistics.median(times):.3f} s")


if __name__ == "__main__":
    main()
