"""runner/graph.py: order, traversals and cycles of a plain dependency graph."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from runner.errors import DependencyError
from runner.graph import Graph, check_acyclic, find_cycle

#   a   b
#   |\ /
#   | c
#   |  \
#   d   e
DIAMOND = {"a": [], "b": [], "c": ["a", "b"], "d": ["a"], "e": ["c"]}


def test_topological_order_puts_parents_first_and_breaks_ties_by_name() -> None:
    assert Graph(DIAMOND).topological_order() == ["a", "b", "c", "d", "e"]


def test_topological_order_ties_by_name_not_by_insertion_order() -> None:
    graph = Graph({"z": [], "y": [], "x": ["z"]})
    assert graph.topological_order() == ["y", "z", "x"]


def test_topological_order_of_a_subset_ignores_the_rest() -> None:
    assert Graph(DIAMOND).topological_order(["e", "a", "c"]) == ["a", "c", "e"]


def test_parents_that_are_not_nodes_are_ignored() -> None:
    graph = Graph({"m": ["source.crm.users", "n"], "n": []})
    assert graph.parents["m"] == ("n",)
    assert graph.children["n"] == ("m",)


def test_ancestors_and_descendants_at_any_depth() -> None:
    graph = Graph(DIAMOND)
    assert graph.ancestors("e") == {"a", "b", "c"}
    assert graph.descendants("a") == {"c", "d", "e"}
    assert graph.ancestors("a") == set()
    assert graph.descendants("e") == set()


@pytest.mark.parametrize(
    ("depth", "expected"),
    [(0, set()), (1, {"c", "d"}), (2, {"c", "d", "e"}), (9, {"c", "d", "e"})],
)
def test_descendants_stop_at_depth(depth: int, expected: set[str]) -> None:
    assert Graph(DIAMOND).descendants("a", depth=depth) == expected


def test_ancestors_stop_at_depth_one_giving_only_parents() -> None:
    assert Graph(DIAMOND).ancestors("e", depth=1) == {"c"}


def test_node_membership() -> None:
    graph = Graph(DIAMOND)
    assert "c" in graph
    assert "source.crm.users" not in graph


def test_find_cycle_is_none_for_an_acyclic_graph() -> None:
    assert find_cycle(DIAMOND) is None


def test_find_cycle_names_every_node_in_data_flow_order() -> None:
    # b reads a, c reads b, a reads c
    parents = {"a": ["c"], "b": ["a"], "c": ["b"], "d": []}
    assert find_cycle(parents) == "a -> b -> c -> a"


def test_find_cycle_uses_the_label_function() -> None:
    parents = {"model.p.a": ["model.p.b"], "model.p.b": ["model.p.a"]}
    assert find_cycle(parents, lambda uid: uid.rsplit(".", 1)[-1]) == "a -> b -> a"


def test_find_cycle_of_a_node_that_depends_on_itself() -> None:
    assert find_cycle({"a": ["a"]}) == "a -> a"


def test_find_cycle_only_reports_the_nodes_on_the_cycle() -> None:
    parents = {"root": [], "x": ["root", "z"], "y": ["x"], "z": ["y"]}
    assert find_cycle(parents) == "x -> y -> z -> x"


def test_check_acyclic_raises_a_dependency_error_that_prints_the_cycle() -> None:
    with pytest.raises(DependencyError, match=r"dependency cycle: a -> b -> a\."):
        check_acyclic({"a": ["b"], "b": ["a"]})


def test_check_acyclic_accepts_an_acyclic_graph() -> None:
    check_acyclic(DIAMOND)


def test_topological_order_of_a_cyclic_graph_raises() -> None:
    with pytest.raises(DependencyError, match="a -> b -> a"):
        Graph({"a": ["b"], "b": ["a"]}).topological_order()


# -- properties over random graphs ---------------------------------------------------------


# a DAG: node i may only depend on nodes with a smaller number
def _dag(size: int) -> st.SearchStrategy[dict[str, list[str]]]:
    names = [f"n{i:02d}" for i in range(size)]
    return st.fixed_dictionaries(
        {
            name: st.lists(st.sampled_from(names[:i]), max_size=4) if i else st.just([])
            for i, name in enumerate(names)
        }
    )


dags = st.integers(min_value=1, max_value=12).flatmap(_dag)


@settings(max_examples=50)
@given(dags)
def test_every_node_comes_after_its_parents_in_any_dag(parents: dict[str, list[str]]) -> None:
    order = Graph(parents).topological_order()
    position = {node: i for i, node in enumerate(order)}
    assert sorted(order) == sorted(parents)
    for node, deps in parents.items():
        assert all(position[dep] < position[node] for dep in deps)
    assert find_cycle(parents) is None


@settings(max_examples=50)
@given(dags, st.data())
def test_a_back_edge_makes_a_cycle_whose_every_step_is_an_edge(
    parents: dict[str, list[str]], data: st.DataObject
) -> None:
    graph = Graph(parents)
    node = data.draw(st.sampled_from(sorted(parents)))
    ancestors = sorted(graph.ancestors(node))
    assume(ancestors)
    ancestor = data.draw(st.sampled_from(ancestors))
    cyclic = {**parents, ancestor: [*parents[ancestor], node]}  # ancestor now reads node
    cycle = find_cycle(cyclic)
    assert cycle is not None
    steps = cycle.split(" -> ")
    assert steps[0] == steps[-1]
    for parent, child in itertools.pairwise(steps):
        assert parent in cyclic[child]
