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
row for row.

    python bench/bench_incremental.py --opportunities 1000000 --repeat 3
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_build import KPI, OUT, export_for, kpi_env, run

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
    inc, full, before = work / "incremental", work / "full", work / "before-refresh"
    inc.mkdir()
    env = kpi_env(inc, args.memory_limit)
    first = run([*KPI, "build", "--raw-dir", str(export)], env)
    appended = run([*KPI, "generate", str(export), "--append", "--format", args.format])
    shutil.copytree(inc, full)
    shutil.copytree(inc, before)
    refreshes, unchanged, rebuilds = [], [], []
    for attempt in range(args.repeat):
        if attempt:
            # the same refresh again, from the warehouse as it was before it
            shutil.rmtree(inc)
            shutil.copytree(before, inc)
        refresh = run([*KPI, "build", "--raw-dir", str(export)], env)
        refreshes.append(refresh)
        unchanged.append(run([*KPI, "build", "--raw-dir", str(export)], env).seconds)
    full_env = kpi_env(full, args.memory_limit)
    # the copy has loaded the base export only: load the appended rows first,
    # so that the full refresh below times models and tests alone
    load = run([*KPI, "load", str(export)], full_env)
    for _ in range(args.repeat):
        rebuild = [*KPI, "build", "--full-refresh", "--raw-dir", str(export)]
        rebuilds.append(run(rebuild, full_env).seconds)
    differ = differing_marts(inc / "warehouse.duckdb", full / "warehouse.duckdb")
    refresh_s = statistics.median(r.seconds for r in refreshes)
    unchanged_s = statistics.median(unchanged)
    rebuild_s = statistics.median(rebuilds)
    shown = lambda values: ", ".join(f"{v:.2f}" for v in values)  # noqa: E731
    print(f"| opportunities | {args.opportunities} |")
    print("|---|---|")
    print(f"| first build (load + build), s | {first.seconds:.2f} |")
    print(f"| append ~1% (kpi generate --append), s | {appended.seconds:.2f} |")
    print(
        f"| incremental kpi build (load + build), s | {refresh_s:.2f} "
        f"({shown(r.seconds for r in refreshes)}) |"
    )
    print(f"| load of the appended export alone, s | {load.seconds:.2f} |")
    print(f"| kpi build with nothing changed, s | {unchanged_s:.2f} ({shown(unchanged)}) |")
    print(f"| full-refresh kpi build (raw loaded), s | {rebuild_s:.2f} ({shown(rebuilds)}) |")
    print(f"| incremental / full refresh | {refresh_s / rebuild_s:.3f} |")
    print(f"| nothing changed / full refresh | {unchanged_s / rebuild_s:.3f} |")
    print(f"| incremental / first build | {refresh_s / first.seconds:.3f} |")
    print(f"| incremental peak RSS, MB | {max(r.peak_rss_mb for r in refreshes):.0f} |")
    print(f"| marts identical | {'yes' if not differ else 'NO: ' + ', '.join(differ)} |")


if __name__ == "__main__":
    main()
