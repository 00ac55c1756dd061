"""Planning the work of a command: which nodes run, grouped into units.

A unit is a model or seed together with the data tests that audit it (in
`build`), or a standalone test; each unit gets the units it waits for. The
plan is pure Python over the graph: no DuckDB, no SQL.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum

from runner.graph import Graph
from runner.nodes import Materialization, Node, ResourceType


class Command(StrEnum):
    """The commands that run nodes, and the kinds of node each runs."""

    BUILD = "build"
    RUN = "run"
    SEED = "seed"
    TEST = "test"

    @property
    def kinds(self) -> tuple[ResourceType, ...]:
        return {
            Command.BUILD: (ResourceType.MODEL, ResourceType.SEED, ResourceType.TEST),
            Command.RUN: (ResourceType.MODEL,),
            Command.SEED: (ResourceType.SEED,),
            Command.TEST: (ResourceType.TEST,),
        }[self]


@dataclass(frozen=True)
class Unit:
    """A model or seed and its attached tests, or one standalone test."""

    node: Node
    tests: tuple[Node, ...] = ()

    @property
    def nodes(self) -> list[Node]:
        return [self.node, *self.tests]


def plan_units(
    nodes: Mapping[str, Node], selected: set[str], mode: str, graph: Graph | None = None
) -> tuple[dict[str, Unit], dict[str, set[str]]]:
    """Group the selected nodes into units and give each unit its parents.

    `mode` is build, run, seed or test. In build, a test is attached to the
    tested model that all its other tested nodes lead to; other tests run on
    their own after their parents.
    """
    kinds = Command(mode).kinds
    if graph is None:
        graph = Graph({uid: n.depends_on for uid, n in nodes.items()})
    chosen = {
        uid
        for uid in selected
        if nodes[uid].resource_type in kinds
        and nodes[uid].config.materialized != Materialization.EPHEMERAL
    }
    hosts = {uid for uid in chosen if not nodes[uid].is_test}
    attached: dict[str, list[Node]] = {uid: [] for uid in hosts}
    standalone: list[Node] = []
    for uid in sorted(u for u in chosen if nodes[u].is_test):
        test = nodes[uid]
        host = _host_of(test, nodes, hosts, graph) if mode == Command.BUILD else None
        if host is None:
            standalone.append(test)
        else:
            attached[host].append(test)
    units = {uid: Unit(nodes[uid], tuple(tests)) for uid, tests in attached.items()}
    units.update({test.unique_id: Unit(test) for test in standalone})

    parents: dict[str, set[str]] = {key: set() for key in units}
    for key, unit in units.items():
        parents[key] = _nearest_units(unit.node.unique_id, units, graph)
    for test in standalone:
        sources = {d for d in test.depends_on if d.startswith("source.")}
        if not sources or mode != Command.BUILD:
            continue
        tested = {d for d in test.depends_on if d in nodes}
        for key, unit in units.items():
            node = unit.node
            if node.is_test or not sources & set(node.depends_on):
                continue
            if tested <= graph.ancestors(node.unique_id):
                parents[key].add(test.unique_id)
    return units, parents


def _host_of(
    test: Node, nodes: Mapping[str, Node], hosts: Collection[str], graph: Graph
) -> str | None:
    tested = [d for d in test.depends_on if d in nodes]
    for candidate in tested:
        if candidate in hosts and all(
            other == candidate or other in graph.ancestors(candidate) for other in tested
        ):
            return candidate
    return None


def _nearest_units(uid: str, units: Mapping[str, Unit], graph: Graph) -> set[str]:
    found: set[str] = set()
    stack = list(graph.parents.get(uid, ()))
    seen: set[str] = set()
    while stack:
        parent = stack.pop()
        if parent in seen:
            continue
        seen.add(parent)
        if parent in units:
            found.add(parent)
        else:
            stack.extend(graph.parents.get(parent, ()))
    return found
