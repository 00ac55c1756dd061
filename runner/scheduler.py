"""Running a dependency graph of work items on a thread pool.

Each item starts as soon as all of its parents have succeeded, not level by
level. A failed item's descendants are skipped while independent branches
go on; with `fail_fast`, nothing new starts after the first failure.

    >>> done = []
    >>> run_graph({"a": [], "b": ["a"]}, lambda n: done.append(n) or True,
    ...           threads=2, on_skip=lambda n, why: None)
    >>> done
    ['a', 'b']
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from runner.graph import Graph


def run_graph(
    parents: Mapping[str, Iterable[str]],
    run: Callable[[str], bool],
    *,
    threads: int,
    on_skip: Callable[[str, str], None],
    fail_fast: bool = False,
    seconds: Mapping[str, float] | None = None,
) -> None:
    """Run every item; `run(item)` returns False when the item failed.

    `on_skip(item, reason)` is called for every item that does not run.
    When several items are ready, the one with the longest path of work
    below it starts first: by `seconds` (how long each item took last time,
    when known), then by how many items depend on it.
    """
    graph = Graph(parents)
    weight = priorities(graph, seconds or {})
    waiting = {n: len(graph.parents[n]) for n in graph.parents}
    ready: list[tuple[tuple[float, int], str]] = [
        (weight[n], n) for n, c in waiting.items() if c == 0
    ]
    heapq.heapify(ready)
    skipped: set[str] = set()
    stopped = False

    def finish(item: str, ok: bool) -> None:
        nonlocal stopped
        if not ok:
            for child in graph.topological_order(graph.descendants(item)):
                if child not in skipped:
                    skipped.add(child)
                    on_skip(child, item)
            stopped = stopped or fail_fast
            return
        for child in graph.children[item]:
            waiting[child] -= 1
            if waiting[child] == 0 and child not in skipped:
                heapq.heappush(ready, (weight[child], child))

    started: set[str] = set()

    def start(item: str) -> bool:
        if item in skipped:
            return False
        started.add(item)
        return True

    if threads <= 1:
        while ready and not stopped:
            _, item = heapq.heappop(ready)
            if start(item):
                finish(item, run(item))
    else:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kpi") as pool:
            running: dict[Future[bool], str] = {}
            while (ready and not stopped) or running:
                while ready and not stopped and len(running) < threads:
                    _, item = heapq.heappop(ready)
                    if start(item):
                        running[pool.submit(run, item)] = item
                if running:
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in sorted(done, key=lambda f: running[f]):
                        finish(running.pop(future), future.result())
    for item in graph.topological_order():
        if item not in started and item not in skipped:
            skipped.add(item)
            on_skip(item, "")


def priorities(graph: Graph, seconds: Mapping[str, float]) -> dict[str, tuple[float, int]]:
    """Each item's priority, smallest first: minus the seconds of the longest
    path from it to the end of the graph, then minus its descendants."""
    path: dict[str, float] = {}
    for item in reversed(graph.topological_order()):
        below = max((path[c] for c in graph.children[item]), default=0.0)
        path[item] = seconds.get(item, 0.0) + below
    return {n: (-path[n], -len(graph.descendants(n))) for n in graph.parents}
