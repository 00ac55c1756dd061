"""Incremental refresh: the build after appending ~1% new rows to the export.

Builds a fresh warehouse from a generated export (load + build), appends ~1%
new rows with `kpi generate --append` (new part files for activities, leads
and stage history; rewritten snapshot tables), then times `kpi build` (the
incremental refresh: it loads only what changed, and incremental models
process only new rows), and `kpi build --full-refresh` on a copy of the same
warehouse (every model rebuilt from the same raw data). Every mart of the
two warehouses is compared row for row.

    python bench/bench_incremental.py --opportunities 1000000
"""

from __future__ import annotations

import argparse
import shutil
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
    args = parser.parse_args()
    base = export_for(args.opportunities, args.format)
    work = OUT / f"incremental-{args.opportunities}"
    shutil.rmtree(work, ignore_errors=True)
    export = work / "export"
    shutil.copytree(base, export)
    inc, full = work / "incremental", work / "full"
    inc.mkdir()
    env = kpi_env(inc, None)
    first = run([*KPI, "build", "--raw-dir", str(export)], env)
    appended = run([*KPI, "generate", str(export), "--append", "--format", args.format])
    shutil.copytree(inc, full)
    refresh = run([*KPI, "build", "--raw-dir", str(export)], env)
    full_env = kpi_env(full, None)
    # the copy has loaded the base export only: load the appended rows first,
    # so that the full refresh below times models and tests alone
    load = run([*KPI, "load", str(export)], full_env)
    rebuild = run([*KPI, "build", "--full-refresh", "--raw-dir", str(export)], full_env)
    differ = differing_marts(inc / "warehouse.duckdb", full / "warehouse.duckdb")
    print(f"| opportunities | {args.opportunities} |")
    print("|---|---|")
    print(f"| first build (load + build), s | {first.seconds:.2f} |")
    print(f"| append ~1% (kpi generate --append), s | {appended.seconds:.2f} |")
    print(f"| incremental kpi build (load + build), s | {refresh.seconds:.2f} |")
    print(f"| load of the appended export alone, s | {load.seconds:.2f} |")
    print(f"| full-refresh kpi build (raw loaded), s | {rebuild.seconds:.2f} |")
    print(f"| incremental / full refresh | {refresh.seconds / rebuild.seconds:.3f} |")
    print(f"| incremental / first build | {refresh.seconds / first.seconds:.3f} |")
    print(f"| incremental peak RSS, MB | {refresh.peak_rss_mb:.0f} |")
    print(f"| marts identical | {'yes' if not differ else 'NO: ' + ', '.join(differ)} |")


if __name__ == "__main__":
    main()
