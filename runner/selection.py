"""Node selection, as dbt users type it.

`select(project_nodes, graph, ["+kpi_win_rate", "tag:daily,config.materialized:table"])`

- space (or separate arguments) = union, comma = intersection;
- `name`, `+name` (and ancestors), `name+` (and descendants), `2+name`,
  `name+1`, `@name` (descendants and all their ancestors); a bare word is a
  node's name or, as dbt's `fqn` method, a folder of its dotted path
  (`staging`, `staging.crm`, `marts+`);
- methods: `tag:`, `path:`, `file:`, `fqn:`, `config.<key>:`,
  `resource_type:`, `source:`, `test_type:`, `test_name:`; names accept `*`
  wildcards.

Tests are also selected indirectly, through the nodes they test, in dbt's
four modes (`--indirect-selection`): `eager` (the default) takes a test when
any node it tests is selected, `cautious` when all are, `buildable` when each
is selected or an ancestor of a selected node, `empty` never. A test is
excluded with any node it tests, whatever the mode.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from runner.errors import SelectionError
from runner.graph import Graph
from runner.nodes import Node, SourceTable

_ATOM = re.compile(
    r"^(?P<at>@)?(?:(?P<up_depth>\d*)(?P<up>\+))?(?P<body>[^+@]+?)(?:(?P<down>\+)(?P<down_depth>\d*))?$"
)
METHODS = (
    "tag",
    "path",
    "file",
    "fqn",
    "config",
    "resource_type",
    "source",
    "test_type",
    "test_name",
)
RESOURCE_TYPES = ("model", "seed", "test", "source")
INDIRECT_SELECTION = ("eager", "cautious", "buildable", "empty")


@dataclass(frozen=True)
class Selection:
    """What a `--select/--exclude` pair chose, and the terms that chose nothing."""

    unique_ids: frozenset[str]
    unmatched: tuple[str, ...]


def split_terms(values: Iterable[str] | None) -> list[str]:
    """`["a b", "c"]` -> `["a", "b", "c"]`: every argument may hold several."""
    return [term for value in values or () for term in value.split()]


def select(
    nodes: Mapping[str, Node],
    sources: Mapping[str, SourceTable],
    graph: Graph,
    include: Sequence[str] | None,
    exclude: Sequence[str] | None = None,
    resource_types: Iterable[str] | None = None,
    indirect_selection: str = "eager",
) -> Selection:
    """The unique ids of the executable nodes the selectors choose."""
    if indirect_selection not in INDIRECT_SELECTION:
        raise SelectionError(
            f"unknown indirect selection mode '{indirect_selection}'.",
            hint=f"Use one of {', '.join(INDIRECT_SELECTION)}.",
        )
    unmatched: list[str] = []
    include_terms = split_terms(include)
    if include_terms:
        chosen = _union(nodes, sources, graph, include_terms, unmatched)
        chosen |= _tests_of(nodes, graph, chosen, indirect_selection)
    else:
        chosen = set(nodes)
    exclude_terms = split_terms(exclude)
    if exclude_terms:
        dropped = _union(nodes, sources, graph, exclude_terms, unmatched)
        dropped |= _tests_of(nodes, graph, dropped, "eager")
        chosen -= dropped
    types = set(resource_types) if resource_types else None
    result = {
        uid
        for uid in chosen
        if uid in nodes and (types is None or nodes[uid].resource_type in types)
    }
    return Selection(frozenset(result), tuple(unmatched))


def _tests_of(nodes: Mapping[str, Node], graph: Graph, chosen: set[str], mode: str) -> set[str]:
    """The tests that `chosen` selects indirectly, in `mode`: each tests a
    chosen node, and in `cautious` only chosen nodes, in `buildable` only
    chosen nodes and their ancestors."""
    if mode == "empty":
        return set()
    within = set(chosen)
    if mode == "buildable":
        for uid in chosen:
            within |= graph.ancestors(uid)
    return {
        uid
        for uid, node in nodes.items()
        if node.is_test
        and any(dep in chosen for dep in node.depends_on)
        and (mode == "eager" or all(dep in within for dep in node.depends_on))
    }


def _union(
    nodes: Mapping[str, Node],
    sources: Mapping[str, SourceTable],
    graph: Graph,
    terms: Sequence[str],
    unmatched: list[str],
) -> set[str]:
    result: set[str] = set()
    for term in terms:
        matched: set[str] | None = None
        for atom in term.split(","):
            found = _atom(nodes, sources, graph, atom)
            matched = found if matched is None else matched & found
        if not matched:
            unmatched.append(term)
        result |= matched or set()
    return result


def _atom(
    nodes: Mapping[str, Node],
    sources: Mapping[str, SourceTable],
    graph: Graph,
    atom: str,
) -> set[str]:
    match = _ATOM.match(atom.strip())
    if not match:
        raise SelectionError(
            f"cannot read the selector '{atom}'.",
            hint="Use forms like name, +name, name+, 2+name, tag:x, path:models/marts.",
        )
    base = _method(nodes, sources, match.group("body"))
    result = set(base)
    if match.group("at"):
        for uid in base:
            result |= graph.descendants(uid)
        for uid in list(result):
            result |= graph.ancestors(uid)
        return result
    if match.group("up"):
        depth = int(match.group("up_depth")) if match.group("up_depth") else None
        for uid in base:
            result |= graph.ancestors(uid, depth)
    if match.group("down"):
        depth = int(match.group("down_depth")) if match.group("down_depth") else None
        for uid in base:
            result |= graph.descendants(uid, depth)
    return result


def _method(nodes: Mapping[str, Node], sources: Mapping[str, SourceTable], body: str) -> set[str]:
    if ":" not in body:
        if "/" in body or body.endswith(".sql") or body.endswith(".csv"):
            return _by_path(nodes, body)
        return {uid for uid, n in nodes.items() if _name_matches(n, body)}
    method, _, value = body.partition(":")
    key = None
    if method.startswith("config."):
        method, key = "config", method[len("config.") :]
    if method not in METHODS:
        raise SelectionError(
            f"unknown selector method '{method}:' in '{body}'.",
            hint=f"Known methods: {', '.join(m + ':' for m in METHODS)}.",
        )
    if method == "tag":
        return {
            uid for uid, n in nodes.items() if any(fnmatch.fnmatch(t, value) for t in n.config.tags)
        }
    if method in ("path", "file"):
        return (
            _by_path(nodes, value)
            if method == "path"
            else {
                uid
                for uid, n in nodes.items()
                if fnmatch.fnmatch(PurePosixPath(n.path).name, value)
            }
        )
    if method == "fqn":
        return {uid for uid, n in nodes.items() if _fqn_matches(n.fqn, value)}
    if method == "config":
        return {uid for uid, n in nodes.items() if _config_matches(n, key or "", value)}
    if method == "resource_type":
        if value not in RESOURCE_TYPES:
            raise SelectionError(
                f"unknown resource type '{value}'.",
                hint=f"Use one of {', '.join(RESOURCE_TYPES)}.",
            )
        if value == "source":
            return set(sources)
        return {uid for uid, n in nodes.items() if n.resource_type == value}
    if method == "source":
        return {
            uid
            for uid, s in sources.items()
            if fnmatch.fnmatch(s.source_name, value)
            or fnmatch.fnmatch(f"{s.source_name}.{s.name}", value)
        }
    if method == "test_type":
        want_generic = value == "generic"
        if value not in ("generic", "singular", "data"):
            raise SelectionError(f"test_type must be generic or singular, not '{value}'.")
        return {
            uid
            for uid, n in nodes.items()
            if n.is_test and (n.test_metadata is not None) == want_generic
        }
    # test_name
    return {
        uid
        for uid, n in nodes.items()
        if n.is_test and n.test_metadata and fnmatch.fnmatch(n.test_metadata["name"], value)
    }


def _name_matches(node: Node, pattern: str) -> bool:
    return fnmatch.fnmatch(node.name, pattern) or _fqn_matches(node.fqn, pattern)


def _fqn_matches(fqn: Sequence[str], selector: str) -> bool:
    """dbt's `fqn` method: the selector is the node's name or a prefix of its
    fully qualified name, with or without the project's name (`staging`,
    `staging.crm`, `sales-kpi-warehouse.marts`); from a part with a wildcard
    on, the rest of the name is matched as a pattern (`staging.*.stg_*`)."""
    return _fqn_prefix(fqn, selector) or _fqn_prefix(fqn[1:], selector)


def _fqn_prefix(fqn: Sequence[str], selector: str) -> bool:
    if fqn and fqn[-1] == selector:
        return True
    flat = [part for segment in fqn for part in segment.split(".")]
    wanted = selector.split(".")
    if len(flat) < len(wanted):
        return False
    for index, part in enumerate(wanted):
        if any(char in part for char in "*?["):
            return fnmatch.fnmatchcase(".".join(flat[index:]), ".".join(wanted[index:]))
        if flat[index] != part:
            return False
    return True


def _by_path(nodes: Mapping[str, Node], value: str) -> set[str]:
    wanted = PurePosixPath(value.rstrip("/"))
    result = set()
    for uid, node in nodes.items():
        path = PurePosixPath(node.path)
        if path == wanted or wanted in path.parents or fnmatch.fnmatch(str(path), str(wanted)):
            result.add(uid)
    return result


def _config_matches(node: Node, key: str, value: str) -> bool:
    config = node.config.as_dict()
    if key not in config:
        return False
    actual: Any = config[key]
    if isinstance(actual, list):
        return any(fnmatch.fnmatch(str(a), value) for a in actual)
    if isinstance(actual, bool):
        return str(actual).lower() == value.lower()
    return actual is not None and fnmatch.fnmatch(str(actual), value)
