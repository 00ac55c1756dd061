"""Start-up: how long `kpi ls` and `kpi compile` take on this project.

Each command runs once to warm the parse and compile caches in target/, then
`--repeat` more times; the median wall time (Python start-up included) is
printed, with `python -c pass` as the floor any command pays.

    python bench/bench_startup.py --repeat 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_build import KPI, PYTHON, run


def median_seconds(cmd: list[str], env: dict[str, str], repeat: int) -> float:
    run(cmd, env)  # warm the caches
    return statistics.median(run(cmd, env).seconds for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        env = {"KPI_WAREHOUSE": f"{work}/w.duckdb", "KPI_TARGET_PATH": f"{work}/target"}
        run([*KPI, "build"], env)
        floor = median_seconds([PYTHON, "-c", "pass"], env, args.repeat)
        ls = median_seconds([*KPI, "ls"], env, args.repeat)
        compile_ = median_seconds([*KPI, "compile"], env, args.repeat)
    print("| command | median wall s |")
    print("|---|---|")
    print(f"| python -c pass | {floor:.3f} |")
    print(f"| kpi ls | {ls:.3f} |")
    print(f"| kpi compile | {compile_:.3f} |")


if __name__ == "__main__":
    main()
