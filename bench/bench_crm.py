"""Build speed of a Salesforce export against the same deals as a contract export.

Generates (or reuses) the contract export and the Salesforce Data Export of the
same seed and size (`kpi generate --crm salesforce`), then times a clean
`kpi build` (load + every model and test, into a new warehouse) of each,
`--repeat` times, alternating (which goes first alternates too), and prints
the medians and their ratio (Salesforce / contract; the target is <= 1.3),
and the ratio within each repeat, whose two builds ran one after the other
under the same load: its median moves least with the machine. Beside wall time it prints the
CPU seconds the builds used (user + system): on a shared machine the wall
time moves with the other work running, the CPU time much less.

    python bench/bench_crm.py --opportunities 1000000
    python bench/bench_crm.py --opportunities 200000 --repeat 1
    python bench/bench_crm.py --opportunities 200000 --repeat 3 --baseline ../other-checkout

With `--baseline`, another checkout of the project (an earlier commit, say)
builds the same exports too, in the same run: each repeat builds with this
checkout and the baseline's, in turn (which goes first alternates), so that
the two are measured under the same load.

Exports and warehouses go to bench/out/ (ignored by git).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
KPI = [sys.executable, "-m", "runner"]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


CPU: dict[str, list[float]] = {}  # build name -> CPU seconds of each run


def timed(cmd: list[str], name: str | None = None, cwd: Path = ROOT) -> float:
    started, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    if name is not None:
        CPU.setdefault(name, []).append(_children_cpu() - cpu)
    return time.perf_counter() - started


def export(crm: str, opportunities: int, file_format: str) -> Path:
    path = OUT / f"crm-{crm}-{opportunities}-{file_format}"
    if not path.is_dir():
        args = ["generate", str(path), "--opportunities", str(opportunities), "--crm", crm]
        seconds = timed([*KPI, *args, "--format", file_format])
        print(f"generated {path.name} in {seconds:.1f}s", file=sys.stderr)
    return path


def clean_build(raw_dir: Path, name: str, checkout: Path = ROOT) -> float:
    """A clean `kpi build` of `raw_dir` by the project at `checkout`."""
    work = OUT / f"build-{name}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cmd = [
        *KPI,
        "build",
        "--raw-dir",
        str(raw_dir),
        "--warehouse",
        str(work / "warehouse.duckdb"),
        "--target-path",
        str(work / "target"),
    ]
    return timed(cmd, name, checkout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--opportunities", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--format", default="csv", choices=["csv", "parquet"])
    parser.add_argument(
        "--baseline", type=Path, help="another checkout of the project to build the same exports"
    )
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    exports = {c: export(c, args.opportunities, args.format) for c in ("contract", "salesforce")}
    # name prefix of the builds -> (how the output names it, checkout)
    checkouts = {"": ("", ROOT)}
    if args.baseline is not None:
        checkouts = {"baseline-": ("baseline ", args.baseline.resolve()), "": ("this ", ROOT)}
    times: dict[str, list[float]] = {}
    for repeat in range(args.repeat):
        order = list(checkouts.items())
        crms = list(exports.items())
        for prefix, (label, checkout) in order if repeat % 2 == 0 else order[::-1]:
            # which export builds first alternates too: neither always follows the other
            for crm, path in crms if repeat % 2 == 0 else crms[::-1]:
                seconds = clean_build(path, prefix + crm, checkout)
                times.setdefault(prefix + crm, []).append(seconds)
                cpu_s = CPU[prefix + crm][-1]
                print(
                    f"{label}{crm}: clean build in {seconds:.1f}s ({cpu_s:.1f} CPU s)",
                    file=sys.stderr,
                )
    print(f"deals: {args.opportunities:,} ({args.format})")
    for prefix, (label, _) in checkouts.items():
        contract = statistics.median(times[prefix + "contract"])
        salesforce = statistics.median(times[prefix + "salesforce"])
        print(f"{label}contract export:   {contract:.1f}s (median of {args.repeat})")
        print(f"{label}salesforce export: {salesforce:.1f}s (median of {args.repeat})")
        print(f"{label}ratio salesforce / contract: {salesforce / contract:.2f} (target <= 1.3)")
        cpu = {crm: statistics.median(CPU[prefix + crm]) for crm in exports}
        print(
            f"{label}CPU seconds: contract {cpu['contract']:.1f}, salesforce "
            f"{cpu['salesforce']:.1f}, ratio {cpu['salesforce'] / cpu['contract']:.2f}"
        )
        # each repeat's two builds ran one after the other, under the same load
        for what, runs in (("wall", times), ("CPU", CPU)):
            builds = zip(runs[prefix + "salesforce"], runs[prefix + "contract"], strict=True)
            pairs = [s / c for s, c in builds]
            over = sum(r > 1.3 for r in pairs)
            print(
                f"{label}ratio of each repeat's two builds, {what}: median "
                f"{statistics.median(pairs):.2f}, {min(pairs):.2f}-{max(pairs):.2f}, "
                f"{over} of {len(pairs)} above 1.3"
            )


if __name__ == "__main__":
    main()
