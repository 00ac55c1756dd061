"""Build speed at every scale: `kpi build` against the raw replay of its SQL.

For each scale, generate (or reuse) a CRM export, load and build it once,
then time, `--repeat` times each and alternating: `kpi build --full-refresh`
(every model rebuilt, every test run; the raw files are unchanged and only
checked) and `bench/raw_replay.py` (the same compiled SQL in one DuckDB
connection). It prints the medians, their ratio and the peak RSS of each.

    python bench/bench_build.py --scales demo,10000 --repeat 3
    python bench/bench_build.py --scales 1000000 --memory-limit 4GB

Exports and warehouses go to bench/out/ (ignored by git).
"""

from __future__ import annotations

import argparse
import compileall
import functools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
PYTHON = sys.executable
KPI = [PYTHON, "-m", "runner"]


@dataclass
class Timing:
    seconds: float
    peak_rss_mb: float
    cpu_seconds: float = 0.0  # user + system of the process tree that was waited for


@functools.cache
def compile_runner() -> None:
    """Compile the runner's modules to bytecode once, as Python does on its
    first run of an installed package: where `PYTHONDONTWRITEBYTECODE` is
    set, every `kpi` process would otherwise compile them again (0.08 s of
    each command's start)."""
    compileall.compile_dir(ROOT / "runner", quiet=1)


def run(cmd: list[str], env: dict[str, str] | None = None, check: bool = True) -> Timing:
    """Run a command; its wall time and the peak RSS of its process tree's
    largest process."""
    compile_runner()
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if check and os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{stderr[-3000:]}")
    return Timing(seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime)


def export_for(scale: str, file_format: str) -> Path:
    if scale == "demo":
        return ROOT / "runner" / "crm" / "demo_export"
    path = OUT / "data" / f"{scale}-{file_format}"
    if not (path / f"opportunities.{file_format}").exists():
        shutil.rmtree(path, ignore_errors=True)
        timing = run(
            [*KPI, "generate", str(path), "--opportunities", scale, "--format", file_format]
        )
        print(f"  generated {scale} opportunities in {timing.seconds:.1f}s", file=sys.stderr)
    return path


def kpi_env(workdir: Path, memory_limit: str | None) -> dict[str, str]:
    env = {
        "KPI_WAREHOUSE": str(workdir / "warehouse.duckdb"),
        "KPI_TARGET_PATH": str(workdir / "target"),
    }
    if memory_limit:
        env["KPI_DUCKDB_MEMORY_LIMIT"] = memory_limit
    return env


def bench_scale(
    scale: str, repeat: int, threads: int | None, memory_limit: str | None, file_format: str
) -> dict[str, float]:
    export = export_for(scale, file_format)
    workdir = OUT / f"build-{scale}"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    env = kpi_env(workdir, memory_limit)
    thread_args = ["--threads", str(threads)] if threads else []
    first = run([*KPI, "build", "--raw-dir", str(export), *thread_args], env)
    kpi_times, raw_times = [], []
    replay = [
        PYTHON,
        "bench/raw_replay.py",
        "--project-dir",
        str(ROOT),
        "--target-path",
        env["KPI_TARGET_PATH"],
        "--warehouse",
        env["KPI_WAREHOUSE"],
    ]
    if memory_limit:
        replay += ["--memory-limit", memory_limit]
    for _ in range(repeat):
        kpi_times.append(
            run([*KPI, "build", "--full-refresh", "--raw-dir", str(export), *thread_args], env)
        )
        raw_times.append(run(replay))
    kpi = statistics.median(t.seconds for t in kpi_times)
    raw = statistics.median(t.seconds for t in raw_times)
    results = json.loads((workdir / "target" / "run_results.json").read_text())["results"]
    nodes = sum(1 for r in results if r["status"] != "skipped")
    return {
        "nodes": nodes,
        "overhead_ms": (kpi - raw) / nodes * 1000,
        "first_build": first.seconds,
        "raw": raw,
        "kpi": kpi,
        "ratio": kpi / raw,
        "kpi_rss": max(t.peak_rss_mb for t in kpi_times),
        "raw_rss": max(t.peak_rss_mb for t in raw_times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", default="demo,10000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--memory-limit", default=None)
    parser.add_argument("--format", default="parquet", choices=["csv", "parquet"])
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    columns = ["scale", "first build s", "raw s", "kpi build s", "ratio", "nodes"]
    columns += ["overhead per node ms", "kpi peak RSS MB", "raw peak RSS MB"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for scale in args.scales.split(","):
        r = bench_scale(scale, args.repeat, args.threads, args.memory_limit, args.format)
        print(
            f"| {scale} | {r['first_build']:.2f} | {r['raw']:.2f} | {r['kpi']:.2f} | "
            f"{r['ratio']:.3f} | {r['nodes']} | {r['overhead_ms']:.2f} | "
            f"{r['kpi_rss']:.0f} | {r['raw_rss']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
