"""How long a build's units take on N threads in each start order.

Replays the units of a build (`planning.plan_units` of the whole project,
each unit as long as its model and tests took in a `run_results.json`)
through a list scheduler with `--threads` threads, once starting the ready
unit with the most descendants first and once the one with the longest path
of seconds below it (`runner/scheduler.py`), and prints both makespans with
the two lower bounds: the work divided by the threads, and the critical
path.

    python bench/schedule_replay.py bench/out/incremental-1000000/full/target \\
        --raw-dir bench/out/incremental-1000000/export

`--estimates` takes the seconds the scheduler is given from another
`run_results.json` (the run before), while the replay takes the actual ones.
"""

from __future__ import annotations

import argparse
import heapq
import json
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runner.graph import Graph  # noqa: E402
from runner.planning import Unit, plan_units  # noqa: E402
from runner.project import Project  # noqa: E402
from runner.scheduler import priorities  # noqa: E402


def unit_seconds(units: Mapping[str, Unit], target: Path) -> dict[str, float]:
    """Each unit's seconds in the `run_results.json` of `target`."""
    results = json.loads((target / "run_results.json").read_text(encoding="utf-8"))["results"]
    took = {r["unique_id"]: float(r.get("execution_time") or 0.0) for r in results}
    return {key: sum(took.get(n.unique_id, 0.0) for n in u.nodes) for key, u in units.items()}


def makespan(
    graph: Graph,
    seconds: Mapping[str, float],
    weight: Mapping[str, tuple[float, ...]],
    threads: int,
) -> float:
    """When the last unit ends, each ready unit started by `weight` (smallest first)."""
    waiting = {n: len(graph.parents[n]) for n in graph.parents}
    ready = [(weight[n], n) for n, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    running: list[tuple[float, str]] = []
    now = 0.0
    while ready or running:
        while ready and len(running) < threads:
            _, unit = heapq.heappop(ready)
            heapq.heappush(running, (now + seconds[unit], unit))
        now, unit = heapq.heappop(running)
        for child in graph.children[unit]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, (weight[child], child))
    return now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("target", type=Path, help="the target folder of the build")
    parser.add_argument("--raw-dir", type=Path, default=None, help="the export it built")
    parser.add_argument("--estimates", type=Path, default=None, help="the target of the run before")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        project = Project.load(ROOT, target_path=Path(scratch), raw_dir=args.raw_dir)
        units, parents = plan_units(
            project.nodes, set(project.nodes), "build", project.loaded.graph
        )
    graph = Graph(parents)
    actual = unit_seconds(units, args.target)
    estimates = unit_seconds(units, args.estimates) if args.estimates else actual
    by_descendants = {n: (-len(graph.descendants(n)),) for n in graph.parents}
    critical = -min(w[0] for w in priorities(graph, actual).values())
    print(f"| units | {len(units)} |")
    print(f"| work, s | {sum(actual.values()):.2f} |")
    print(f"| work / threads, s | {sum(actual.values()) / args.threads:.2f} |")
    print(f"| critical path, s | {critical:.2f} |")
    old = makespan(graph, actual, by_descendants, args.threads)
    new = makespan(graph, actual, priorities(graph, estimates), args.threads)
    print(f"| most descendants first, s | {old:.2f} |")
    print(f"| longest path first, s | {new:.2f} |")


if __name__ == "__main__":
    main()
