"""The baseline of every benchmark: the same SQL, replayed with nothing around it.

Reads `target/manifest.json` and `target/run_results.json` of the last
`kpi build`, and executes the compiled SQL of the same nodes (models as
`create or replace table/view ... as <sql>`, data tests as
`select count(*) from (<sql>)`) in topological order, in one Python process
with one DuckDB connection. Start-up (Python, `import duckdb`) is part of
what it measures, as it is for `kpi`.

    python bench/raw_replay.py --project-dir . --warehouse /tmp/w.duckdb
"""

from __future__ import annotations

import argparse
import heapq
import json
import time
from pathlib import Path


def replay_plan(project_dir: Path, target: Path) -> list[tuple[str, str]]:
    """(kind, sql) of every node the last build executed, in dependency order."""
    manifest = json.loads((target / "manifest.json").read_text())
    results = json.loads((target / "run_results.json").read_text())["results"]
    ran = {r["unique_id"] for r in results if r["status"] not in ("skipped",)}
    nodes = {uid: n for uid, n in manifest["nodes"].items() if uid in ran}
    parents = {uid: [p for p in manifest["parent_map"].get(uid, []) if p in nodes] for uid in nodes}
    order = _topological(parents)
    plan = []
    for uid in order:
        node = nodes[uid]
        if node["resource_type"] == "seed":
            continue  # unchanged seeds are not reloaded by kpi either
        sql = (project_dir / node["compiled_path"]).read_text()
        materialized = node["config"]["materialized"]
        if node["resource_type"] == "test":
            plan.append(("test", f"select count(*) from (\n{sql}\n)"))
        elif materialized == "view":
            plan.append(("view", f"create or replace view {node['relation_name']} as\n{sql}\n"))
        elif materialized in ("table", "incremental"):
            plan.append(("table", f"create or replace table {node['relation_name']} as\n{sql}\n"))
    return plan


def _topological(parents: dict[str, list[str]]) -> list[str]:
    waiting = {n: len(ps) for n, ps in parents.items()}
    children: dict[str, list[str]] = {n: [] for n in parents}
    for node, ps in parents.items():
        for p in ps:
            children[p].append(node)
    ready = [n for n, c in waiting.items() if c == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        node = heapq.heappop(ready)
        order.append(node)
        for child in children[node]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, child)
    return order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project-dir", type=Path, default=Path("."))
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--target-path", type=Path, default=None)
    parser.add_argument("--memory-limit", default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    import duckdb

    plan = replay_plan(args.project_dir, args.target_path or args.project_dir / "target")
    con = duckdb.connect(str(args.warehouse))
    if args.memory_limit:
        con.execute(f"set memory_limit = '{args.memory_limit}'")
    for kind, sql in plan:
        if kind == "test":
            con.execute(sql).fetchall()
        else:
            con.execute(sql)
    con.close()
    print(f"{len(plan)} statements in {time.perf_counter() - started:.3f}s")


if __name__ == "__main__":
    main()
