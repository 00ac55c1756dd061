"""A small, generic dependency graph: plain Python, no SQL, no DuckDB.

Nodes are strings; `parents[n]` are the nodes `n` depends on. Edges to names
that are not nodes (sources, say) are ignored. Every order is deterministic:
ties are broken by the node's name.

    >>> g = Graph({"a": [], "b": ["a"], "c": ["b"]})
    >>> g.topological_order()
    ['a', 'b', 'c']
    >>> sorted(g.descendants("a", depth=1))
    ['b']
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping

from runner.errors import DependencyError


class Graph:
    """Parents and children of every node, with traversals."""

    def __init__(self, parents: Mapping[str, Iterable[str]]) -> None:
        self.parents: dict[str, tuple[str, ...]] = {
            node: tuple(sorted({p for p in deps if p in parents and p != node}))
            for node, deps in parents.items()
        }
        children: dict[str, list[str]] = {node: [] for node in self.parents}
        for node, deps in self.parents.items():
            for parent in deps:
                children[parent].append(node)
        self.children: dict[str, tuple[str, ...]] = {
            node: tuple(sorted(kids)) for node, kids in children.items()
        }

    def __contains__(self, node: object) -> bool:
        return node in self.parents

    def topological_order(self, subset: Iterable[str] | None = None) -> list[str]:
        """Every node (or those of `subset`) after all of its parents."""
        nodes = set(self.parents if subset is None else subset)
        waiting = {n: sum(1 for p in self.parents[n] if p in nodes) for n in nodes}
        ready = [n for n, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            node = heapq.heappop(ready)
            order.append(node)
            for child in self.children[node]:
                if child in waiting:
                    waiting[child] -= 1
                    if waiting[child] == 0:
                        heapq.heappush(ready, child)
        if len(order) != len(nodes):
            raise DependencyError(f"dependency cycle: {find_cycle(self.parents)}")
        return order

    def ancestors(self, node: str, depth: int | None = None) -> set[str]:
        return _walk(self.parents, node, depth)

    def descendants(self, node: str, depth: int | None = None) -> set[str]:
        return _walk(self.children, node, depth)


def _walk(edges: Mapping[str, Iterable[str]], start: str, depth: int | None) -> set[str]:
    seen: set[str] = set()
    frontier = [start]
    level = 0
    while frontier and (depth is None or level < depth):
        level += 1
        next_frontier = []
        for node in frontier:
            for other in edges.get(node, ()):
                if other not in seen:
                    seen.add(other)
                    next_frontier.append(other)
        frontier = next_frontier
    seen.discard(start)
    return seen


def find_cycle(
    parents: Mapping[str, Iterable[str]], label: Callable[[str], str] = str
) -> str | None:
    """One cycle as `a -> b -> c -> a` (a depends on c... read as data flow),
    or None when the graph is acyclic."""
    children: dict[str, list[str]] = {n: [] for n in parents}
    for node, deps in parents.items():
        for parent in deps:
            if parent in children:
                children[parent].append(node)
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    for root in sorted(children):
        if state.get(root):
            continue
        stack: list[tuple[str, Iterable[str]]] = [(root, iter(sorted(children[root])))]
        path = [root]
        state[root] = 1
        while stack:
            node, pending = stack[-1]
            nxt = next(iter(pending), None)  # type: ignore[call-overload]
            if nxt is None:
                state[node] = 2
                stack.pop()
                path.pop()
                continue
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                return " -> ".join(label(n) for n in cycle)
            if not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, iter(sorted(children[nxt]))))
    return None


def check_acyclic(parents: Mapping[str, Iterable[str]], label: Callable[[str], str] = str) -> None:
    """Raise a `DependencyError` that prints the cycle, if there is one."""
    cycle = find_cycle(parents, label)
    if cycle:
        raise DependencyError(
            f"dependency cycle: {cycle}.",
            hint="Every model on it refers to the next one; remove one of those refs.",
        )
