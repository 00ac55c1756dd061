"""The compile cache: reused while nothing a node's SQL depends on changed,
re-rendered as soon as something did."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.templating import Templates

FILES = {
    "models/base.sql": "{{ config(materialized='ephemeral') }}select {{ one() }} as id",
    "models/a.sql": "select id + {{ var('bump', 0) }} as id from {{ ref('base') }}",
    "models/b.sql": "select '{{ env_var('KPI_TEST_LABEL', 'none') }}' as label",
    "macros/one.sql": "{% macro one() %}1{% endmacro %}",
}


def compiled_sql(project, name: str) -> str:
    return next(c.sql for c in project.compile().values() if c.node.name == name)


@pytest.fixture
def no_rendering(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any Jinja rendering fail: only cached SQL can be returned."""

    def refuse(*args, **kwargs):
        raise AssertionError("rendered although the cache should have answered")

    monkeypatch.setattr(Templates, "render", refuse)
    monkeypatch.setattr(Templates, "call_macro", refuse)


def test_unchanged_project_compiles_without_rendering(make_project, load, request) -> None:
    root = make_project(FILES)
    first = compiled_sql(load(root), "a")
    request.getfixturevalue("no_rendering")
    assert compiled_sql(load(root), "a") == first


def test_editing_a_macro_recompiles_the_models_that_use_it(make_project, load) -> None:
    root = make_project(FILES)
    assert "select 1 as id" in compiled_sql(load(root), "a")
    make_project({"macros/one.sql": "{% macro one() %}2{% endmacro %}"}, root=root)
    assert "select 2 as id" in compiled_sql(load(root), "a")


def test_editing_an_ephemeral_model_recompiles_its_dependents(make_project, load) -> None:
    root = make_project(FILES)
    compiled_sql(load(root), "a")
    make_project(
        {"models/base.sql": "{{ config(materialized='ephemeral') }}select 5 as id"}, root=root
    )
    assert "select 5 as id" in compiled_sql(load(root), "a")


def test_new_vars_recompile(make_project, load) -> None:
    root = make_project(FILES)
    assert "id + 0" in compiled_sql(load(root), "a")
    assert "id + 7" in compiled_sql(load(root, vars={"bump": 7}), "a")


def test_an_environment_variable_read_by_env_var_recompiles(
    make_project, load, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project(FILES)
    monkeypatch.delenv("KPI_TEST_LABEL", raising=False)
    assert "'none'" in compiled_sql(load(root), "b")
    monkeypatch.setenv("KPI_TEST_LABEL", "green")
    assert "'green'" in compiled_sql(load(root), "b")


def test_the_cache_lives_in_the_target_folder(make_project, load) -> None:
    root = make_project(FILES)
    project = load(root)
    project.compile()
    assert (Path(project.settings.target_path) / "compile_cache.pickle").exists()


def test_an_env_var_read_only_in_the_incremental_branch_recompiles(
    make_project, load, query, monkeypatch
) -> None:
    """Item 13: `env_var()` inside `{% if is_incremental() %}` is part of the key."""
    root = make_project(
        {
            "models/inc.sql": "{{ config(materialized='incremental') }}\n"
            "select 1 as id, '{% if is_incremental() %}"
            "{{ env_var('KPI_TEST_BRANCH', 'unset') }}{% else %}first{% endif %}' as label"
        }
    )
    monkeypatch.setenv("KPI_TEST_BRANCH", "one")
    assert load(root).build().exit_code == 0
    assert load(root).build().exit_code == 0
    assert query(root, "select label from main.inc order by label") == [("first",), ("one",)]
    # a new value changes the model's logic: rebuilt in full, then incremental
    # runs render the new value (before: the cached SQL kept appending 'one')
    monkeypatch.setenv("KPI_TEST_BRANCH", "two")
    assert load(root).build().exit_code == 0
    assert load(root).build().exit_code == 0
    assert query(root, "select label from main.inc order by label") == [("first",), ("two",)]
