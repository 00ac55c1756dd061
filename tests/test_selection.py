"""runner/selection.py: every selector form, on a hand-made graph (no I/O).

    source crm.users          seed regions
          |                        |
    stg_users (view)          stg_regions (view, tag geo)
          |                        |
    int_users (table)              |
          |                        |
    dim_users (table, tag daily) --+
          |
    kpi_users (incremental, tags daily and kpi)

Tests: not_null_crm_users_id (on the source), relationships_int_users_region
(on int_users and stg_regions), unique_dim_users_id, and the singular
assert_kpi_positive (on kpi_users).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from runner.errors import SelectionError
from runner.graph import Graph
from runner.nodes import Node, NodeConfig, SourceTable
from runner.selection import Selection, select, split_terms


def _node(
    kind: str,
    name: str,
    path: str,
    depends_on: Sequence[str] = (),
    test_name: str | None = None,
    **config: Any,
) -> Node:
    return Node(
        unique_id=f"{kind}.p.{name}",
        resource_type=kind,
        name=name,
        path=path,
        raw_code="",
        checksum="",
        config=NodeConfig(**config),
        depends_on=tuple(depends_on),
        # as runner/parsing.py names them: a test by its name, a model or seed by its path
        fqn=("p", name) if kind == "test" else ("p", *Path(path).with_suffix("").parts[1:]),
        test_metadata=(
            MappingProxyType({"name": test_name, "kwargs": {}, "attached_node": depends_on[0]})
            if test_name
            else None
        ),
    )


NODES: dict[str, Node] = {
    n.unique_id: n
    for n in [
        _node("seed", "regions", "seeds/regions.csv", materialized="seed"),
        _node("model", "stg_users", "models/staging/stg_users.sql", ["source.crm.users"]),
        _node(
            "model",
            "stg_regions",
            "models/staging/stg_regions.sql",
            ["seed.p.regions"],
            tags=("geo",),
        ),
        _node(
            "model",
            "int_users",
            "models/intermediate/int_users.sql",
            ["model.p.stg_users"],
            materialized="table",
        ),
        _node(
            "model",
            "dim_users",
            "models/marts/dim_users.sql",
            ["model.p.int_users", "model.p.stg_regions"],
            materialized="table",
            tags=("daily",),
        ),
        _node(
            "model",
            "kpi_users",
            "models/marts/kpi/kpi_users.sql",
            ["model.p.dim_users"],
            materialized="incremental",
            tags=("daily", "kpi"),
        ),
        _node(
            "test",
            "unique_dim_users_id",
            "models/marts/dim_users.yml",
            ["model.p.dim_users"],
            test_name="unique",
            materialized="test",
        ),
        _node(
            "test",
            "relationships_int_users_region",
            "models/intermediate/int_users.yml",
            ["model.p.int_users", "model.p.stg_regions"],
            test_name="relationships",
            materialized="test",
        ),
        _node(
            "test",
            "not_null_crm_users_id",
            "models/staging/crm.yml",
            ["source.crm.users"],
            test_name="not_null",
            materialized="test",
        ),
        _node(
            "test",
            "assert_kpi_positive",
            "tests/data/assert_kpi_positive.sql",
            ["model.p.kpi_users"],
            materialized="test",
        ),
    ]
}
SOURCES = {
    "source.crm.users": SourceTable("crm", "users", "raw", "users", "models/staging/crm.yml"),
}
TESTS_OF_DIM = {"unique_dim_users_id"}
TESTS_OF_INT = {"relationships_int_users_region"}


def _graph(nodes: Mapping[str, Node] = NODES) -> Graph:
    parents: dict[str, Sequence[str]] = {uid: n.depends_on for uid, n in nodes.items()}
    parents.update({uid: () for uid in SOURCES})
    return Graph(parents)


def _select(include: Sequence[str] = (), exclude: Sequence[str] = (), **kw: Any) -> Selection:
    return select(NODES, SOURCES, _graph(), include, exclude, **kw)


def names(include: Sequence[str] = (), exclude: Sequence[str] = (), **kw: Any) -> set[str]:
    return {NODES[uid].name for uid in _select(include, exclude, **kw).unique_ids}


def models(include: Sequence[str] = (), exclude: Sequence[str] = ()) -> set[str]:
    return names(include, exclude, resource_types=["model"])


ALL = {n.name for n in NODES.values()}


def test_no_selector_selects_every_node() -> None:
    assert names() == ALL


def test_a_name_selects_the_node_and_its_tests() -> None:
    assert names(["dim_users"]) == {"dim_users", *TESTS_OF_DIM}


def test_a_test_on_two_models_follows_either_of_them_eagerly() -> None:
    assert "relationships_int_users_region" in names(["stg_regions"])
    assert "relationships_int_users_region" in names(["int_users"])


def test_indirect_selection_modes_choose_the_tests_of_the_selected_nodes_as_dbt_does() -> None:
    """relationships_int_users_region tests int_users and stg_regions;
    stg_regions is an ancestor of dim_users, not of int_users."""
    rel = "relationships_int_users_region"
    for mode in ("eager", "cautious", "buildable", "empty"):
        assert names(["int_users", "stg_regions"], indirect_selection=mode) >= {
            "int_users",
            "stg_regions",
        }
    # one of its two nodes selected: only eager takes it
    assert rel in names(["int_users"], indirect_selection="eager")
    assert rel not in names(["int_users"], indirect_selection="cautious")
    assert rel not in names(["int_users"], indirect_selection="buildable")
    # both selected: every mode but empty
    assert rel in names(["int_users", "stg_regions"], indirect_selection="cautious")
    assert rel not in names(["int_users", "stg_regions"], indirect_selection="empty")
    # one selected, the other an ancestor of a selected node: buildable, not cautious
    assert rel in names(["int_users", "dim_users"], indirect_selection="buildable")
    assert rel not in names(["int_users", "dim_users"], indirect_selection="cautious")
    # buildable still needs one of its nodes selected: an ancestor alone is not enough
    assert rel not in names(["dim_users"], indirect_selection="buildable")
    # a test of one node comes in every mode but empty
    assert names(["dim_users"], indirect_selection="cautious") == {"dim_users", *TESTS_OF_DIM}
    assert names(["dim_users"], indirect_selection="empty") == {"dim_users"}
    # a test selected directly is selected whatever the mode
    assert names(["unique_dim_users_id"], indirect_selection="empty") == TESTS_OF_DIM


def test_a_test_is_excluded_with_any_node_it_tests_in_every_mode() -> None:
    for mode in ("eager", "cautious", "buildable", "empty"):
        chosen = names(["+dim_users"], ["stg_regions"], indirect_selection=mode)
        assert "relationships_int_users_region" not in chosen
        assert "stg_regions" not in chosen


def test_an_unknown_indirect_selection_mode_is_an_error() -> None:
    with pytest.raises(SelectionError, match="eager, cautious, buildable, empty"):
        _select(["dim_users"], indirect_selection="lazy")


def test_plus_name_adds_every_ancestor() -> None:
    assert models(["+dim_users"]) == {"stg_users", "int_users", "stg_regions", "dim_users"}
    assert "regions" in names(["+dim_users"])


def test_name_plus_adds_every_descendant_and_their_tests() -> None:
    assert names(["int_users+"]) == {
        "int_users",
        "dim_users",
        "kpi_users",
        *TESTS_OF_DIM,
        *TESTS_OF_INT,
        "assert_kpi_positive",
    }


def test_plus_name_plus_adds_both_directions() -> None:
    assert models(["+int_users+"]) == {"stg_users", "int_users", "dim_users", "kpi_users"}


def test_depth_before_plus_limits_ancestors() -> None:
    assert models(["1+dim_users"]) == {"int_users", "stg_regions", "dim_users"}
    assert models(["2+dim_users"]) == {"stg_users", "int_users", "stg_regions", "dim_users"}


def test_depth_after_plus_limits_descendants() -> None:
    assert models(["stg_users+1"]) == {"stg_users", "int_users"}
    assert models(["stg_users+2"]) == {"stg_users", "int_users", "dim_users"}


def test_at_adds_descendants_and_all_of_their_ancestors() -> None:
    # stg_regions' descendants need int_users and stg_users too
    assert models(["@stg_regions"]) == {
        "stg_regions",
        "dim_users",
        "kpi_users",
        "int_users",
        "stg_users",
    }


def test_tag_method() -> None:
    assert models(["tag:daily"]) == {"dim_users", "kpi_users"}


def test_tag_method_with_a_wildcard() -> None:
    assert models(["tag:k*"]) == {"kpi_users"}


def test_path_method_selects_a_folder_and_its_subfolders() -> None:
    assert models(["path:models/marts"]) == {"dim_users", "kpi_users"}
    assert models(["path:models/marts/"]) == {"dim_users", "kpi_users"}


def test_path_method_does_not_match_a_folder_prefix() -> None:
    assert models(["path:models/mart"]) == set()


def test_path_method_selects_one_file_and_a_bare_path_works_too() -> None:
    assert models(["path:models/staging/stg_users.sql"]) == {"stg_users"}
    assert models(["models/staging/stg_users.sql"]) == {"stg_users"}
    assert models(["models/staging"]) == {"stg_users", "stg_regions"}


def test_file_method_matches_the_file_name() -> None:
    assert models(["file:stg_*.sql"]) == {"stg_users", "stg_regions"}


def test_config_materialized_method() -> None:
    assert models(["config.materialized:table"]) == {"int_users", "dim_users"}
    assert models(["config.materialized:incremental"]) == {"kpi_users"}


def test_config_method_on_a_list_valued_key() -> None:
    assert models(["config.tags:kpi"]) == {"kpi_users"}


def test_resource_type_method() -> None:
    assert names(["resource_type:test"]) == {
        "unique_dim_users_id",
        "relationships_int_users_region",
        "not_null_crm_users_id",
        "assert_kpi_positive",
    }
    assert names(["resource_type:seed"]) == {"regions"}


def test_resource_type_method_rejects_an_unknown_type() -> None:
    with pytest.raises(SelectionError, match="unknown resource type 'snapshot'"):
        names(["resource_type:snapshot"])


def test_source_method_selects_the_source_tests_and_with_plus_its_models() -> None:
    assert names(["source:crm"]) == {"not_null_crm_users_id"}
    assert models(["source:crm.users+"]) == {"stg_users", "int_users", "dim_users", "kpi_users"}
    assert models(["source:c*+1"]) == {"stg_users"}


def test_test_type_method() -> None:
    assert names(["test_type:singular"]) == {"assert_kpi_positive"}
    assert names(["test_type:generic"]) == {
        "unique_dim_users_id",
        "relationships_int_users_region",
        "not_null_crm_users_id",
    }


def test_test_type_method_rejects_an_unknown_type() -> None:
    with pytest.raises(SelectionError, match="generic or singular"):
        names(["test_type:unit"])


def test_test_name_method_matches_the_generic_test() -> None:
    assert names(["test_name:unique"]) == {"unique_dim_users_id"}
    assert names(["test_name:not_*"]) == {"not_null_crm_users_id"}


def test_name_wildcards() -> None:
    assert models(["stg_*"]) == {"stg_users", "stg_regions"}
    assert models(["*_users"]) == {"stg_users", "int_users", "dim_users", "kpi_users"}


def test_fqn_with_dots_matches_the_folder_path_and_its_subfolders() -> None:
    assert models(["p.marts.*"]) == {"dim_users", "kpi_users"}
    assert models(["fqn:p.marts.kpi.*"]) == {"kpi_users"}


def test_a_folder_name_selects_the_folder_as_dbt_does() -> None:
    """dbt's default method is `fqn`: a bare word is a node's name or a
    prefix of its dotted path, with or without the project's name."""
    assert models(["marts"]) == {"dim_users", "kpi_users"}
    assert models(["marts.kpi"]) == {"kpi_users"}
    assert models(["p.marts.kpi"]) == {"kpi_users"}
    assert models(["fqn:staging"]) == {"stg_users", "stg_regions"}
    assert models(["staging+"]) == {
        "stg_users",
        "stg_regions",
        "int_users",
        "dim_users",
        "kpi_users",
    }
    assert models(["marts.*_users"]) == {"dim_users", "kpi_users"}  # kpi.kpi_users too
    # a prefix is made of whole parts: `mart` is no folder
    assert models(["mart"]) == set()
    assert models(["marts.kpi.kpi_users.x"]) == set()


def test_space_separated_terms_are_a_union() -> None:
    assert models(["stg_users int_users"]) == {"stg_users", "int_users"}
    assert models(["stg_users", "int_users"]) == {"stg_users", "int_users"}


def test_comma_separated_atoms_are_an_intersection() -> None:
    assert models(["tag:daily,config.materialized:table"]) == {"dim_users"}
    assert models(["+kpi_users,path:models/staging"]) == {"stg_users", "stg_regions"}


def test_union_of_intersections() -> None:
    assert models(["tag:daily,config.materialized:incremental tag:geo"]) == {
        "kpi_users",
        "stg_regions",
    }


def test_exclude_removes_nodes_and_their_tests() -> None:
    assert names(["+dim_users"], ["int_users"]) == {
        "regions",
        "stg_users",
        "stg_regions",
        "dim_users",
        "not_null_crm_users_id",
        *TESTS_OF_DIM,
    }


def test_exclude_with_graph_operators() -> None:
    assert models([], ["int_users+"]) == {"stg_users", "stg_regions"}


def test_exclude_without_select_starts_from_everything() -> None:
    assert names([], ["resource_type:test"]) == ALL - {
        "unique_dim_users_id",
        "relationships_int_users_region",
        "not_null_crm_users_id",
        "assert_kpi_positive",
    }


def test_resource_types_filter_the_result() -> None:
    assert names(["+kpi_users"], resource_types=["seed"]) == {"regions"}


def test_a_term_that_matches_nothing_is_reported_unmatched() -> None:
    selection = _select(["nope", "dim_users", "tag:daily,tag:geo"], ["ghost"])
    assert selection.unmatched == ("nope", "tag:daily,tag:geo", "ghost")
    assert {NODES[u].name for u in selection.unique_ids} == {"dim_users", *TESTS_OF_DIM}


def test_an_unknown_method_is_an_error_that_lists_the_known_ones() -> None:
    with pytest.raises(SelectionError, match=r"unknown selector method 'colour:'.*tag:, path:"):
        names(["colour:red"])


@pytest.mark.parametrize("bad", ["+", "a@b", "++x"])
def test_an_unreadable_selector_is_an_error(bad: str) -> None:
    with pytest.raises(SelectionError, match="cannot read the selector"):
        names([bad])


def test_split_terms_splits_every_argument_on_whitespace() -> None:
    assert split_terms(["a b", " c ", "d,e"]) == ["a", "b", "c", "d,e"]
    assert split_terms(None) == []


def test_project_select_warns_about_a_selector_that_matched_nothing_and_orders_nodes(
    make_project, load, output
) -> None:
    root = make_project(
        {
            "models/b.sql": "select * from {{ ref('a') }}",
            "models/a.sql": "select 1 as id",
            "models/c.sql": "select * from {{ ref('b') }}",
        }
    )
    project = load(root)
    chosen = project.select(["c+ +c", "missing_model"])
    assert [n.name for n in chosen] == ["a", "b", "c"]
    assert "Warning: the selector 'missing_model' matched nothing." in output(project)
