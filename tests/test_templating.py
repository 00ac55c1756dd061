"""runner/templating.py: the Jinja context of a model, macros, `return`, and
where rendering errors point. Pure: templates are given as text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from runner.errors import CompilationError
from runner.nodes import Relation
from runner.templating import ModelContext, Target, Templates, sql_literal, translate_test_blocks

MODEL = "models/m.sql"


def render(
    sql: str,
    macros: Mapping[str, str] | None = None,
    vars: Mapping[str, Any] | None = None,
    **context: Any,
) -> str:
    templates = Templates({MODEL: sql}, macros or {})
    ctx = ModelContext(path=MODEL, vars=vars or {}, this=context.pop("this", None), **context)
    return templates.render(MODEL, ctx.namespace())


def render_error(sql: str, macros: Mapping[str, str] | None = None) -> CompilationError:
    with pytest.raises(CompilationError) as info:
        render(sql, macros)
    return info.value


# -- context functions ---------------------------------------------------------


def test_ref_and_source_are_recorded_with_their_line() -> None:
    ctx = ModelContext(path=MODEL, vars={}, this=None)
    sql = "select *\nfrom {{ ref('a') }}\njoin {{ source('crm', 'users') }} using (id)"
    Templates({MODEL: sql}, {}).render(MODEL, ctx.namespace())
    assert ctx.refs == [("a", 2)]
    assert ctx.sources == [("crm", "users", 3)]


def test_ref_renders_what_the_resolver_returns() -> None:
    sql = "select * from {{ ref('a') }}"
    out = render(sql, resolve_ref=lambda name, line: Relation("marts", name))
    assert out == 'select * from "marts"."a"'


def test_ref_takes_a_model_name() -> None:
    with pytest.raises(CompilationError, match="ref\\(\\) takes a model name"):
        render("{{ ref() }}")


def test_config_is_recorded() -> None:
    ctx = ModelContext(path=MODEL, vars={}, this=None)
    sql = (
        "{{ config(materialized='incremental', schema='marts', tags=['daily'],"
        " unique_key='id', incremental_strategy='delete+insert') }}select 1"
    )
    assert Templates({MODEL: sql}, {}).render(MODEL, ctx.namespace()) == "select 1"
    assert ctx.config == {
        "materialized": "incremental",
        "schema": "marts",
        "tags": ["daily"],
        "unique_key": "id",
        "incremental_strategy": "delete+insert",
    }


def test_var_comes_from_the_vars_mapping() -> None:
    assert render("{{ var('start') }}", vars={"start": "2025-01-01"}) == "2025-01-01"


def test_var_default_is_used_only_when_the_var_is_unset() -> None:
    assert render("{{ var('x', 7) }}") == "7"
    assert render("{{ var('x', 7) }}", vars={"x": 1}) == "1"


def test_var_without_value_or_default_names_file_line_and_how_to_set_it() -> None:
    error = render_error("select\n{{ var('start_month') }}")
    assert error.location == "models/m.sql:2"
    assert "var('start_month') has no value and no default" in str(error)
    assert "--vars" in str(error)


def test_env_var_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPI_TEST_REGION", "emea")
    assert render("{{ env_var('KPI_TEST_REGION') }}") == "emea"


def test_env_var_default_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KPI_TEST_REGION", raising=False)
    assert render("{{ env_var('KPI_TEST_REGION', 'global') }}") == "global"


def test_env_var_unset_without_default_is_an_error_at_its_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KPI_TEST_REGION", raising=False)
    error = render_error("select 1,\n\n{{ env_var('KPI_TEST_REGION') }}")
    assert error.location == "models/m.sql:3"
    assert "KPI_TEST_REGION" in error.message


def test_env_var_records_what_it_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPI_TEST_REGION", "emea")
    ctx = ModelContext(path=MODEL, vars={}, this=None)
    Templates({MODEL: "{{ env_var('KPI_TEST_REGION') }}"}, {}).render(MODEL, ctx.namespace())
    assert ctx.env_reads == {"KPI_TEST_REGION": "emea"}


def test_is_incremental_this_and_target() -> None:
    sql = "{{ is_incremental() }} {{ this }} {{ target.name }} {{ target.type }} {{ this.name }}"
    out = render(sql, this=Relation("marts", "kpi"), incremental=True)
    assert out == 'True "marts"."kpi" dev duckdb kpi'
    assert render("{{ is_incremental() }}") == "False"


def test_target_carries_the_warehouse_path_and_threads() -> None:
    out = render("{{ target.path }}:{{ target.threads }}", target=Target(path="/w.db", threads=4))
    assert out == "/w.db:4"


def test_raise_compiler_error_names_the_line() -> None:
    error = render_error("select 1\n{{ exceptions.raise_compiler_error('bad grain') }}")
    assert error.location == "models/m.sql:2"
    assert error.message == "bad grain"


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("it's", "'it''s'"),
        (3, "3"),
        (2.5, "2.5"),
        (True, "true"),
        (None, "null"),
        # item 19: `--vars '{x: .nan}'` is a number, not a column named nan
        (float("nan"), "cast('nan' as double)"),
        (float("-inf"), "cast('-inf' as double)"),
    ],
)
def test_sql_literal(value: Any, literal: str) -> None:
    assert sql_literal(value) == literal
    import duckdb

    duckdb.sql(f"select {literal}").fetchall()  # valid SQL that DuckDB runs


# -- macros ----------------------------------------------------------------------


def test_a_project_macro_is_callable_from_a_model() -> None:
    macros = {"macros/cents.sql": "{% macro cents(col) %}({{ col }} * 100)::bigint{% endmacro %}"}
    assert render("select {{ cents('amount') }}", macros) == "select (amount * 100)::bigint"


def test_macros_call_macros_of_other_files() -> None:
    macros = {
        "macros/a.sql": "{% macro outer(x) %}[{{ inner(x) }}]{% endmacro %}",
        "macros/b.sql": "{% macro inner(x) %}<{{ x }}>{% endmacro %}",
    }
    assert render("{{ outer(1) }}", macros) == "[<1>]"


def test_return_hands_a_value_back_from_a_macro() -> None:
    macros = {"macros/m.sql": "{% macro twice(x) %}{{ return(x * 2) }}{% endmacro %}"}
    assert render("{{ twice(21) + 0 }}", macros) == "42"


def test_return_of_a_list_keeps_its_type() -> None:
    macros = {"macros/m.sql": "{% macro cols() %}{{ return(['a', 'b']) }}{% endmacro %}"}
    assert render("{{ cols() | join(', ') }}", macros) == "a, b"


def test_return_from_a_macro_of_the_same_file_ends_only_that_macro() -> None:
    macros = {
        "macros/m.sql": """
            {% macro double(x) %}{{ return(x * 2) }}{% endmacro %}
            {% macro quadruple(x) %}{{ return(double(double(x))) }}{% endmacro %}
            {% macro plus_then_times_ten(x) %}
                {%- set y = double(x) + 1 -%}
                {{ return(y * 10) }}
            {% endmacro %}
        """
    }
    assert render("{{ quadruple(1) }} {{ plus_then_times_ten(1) }}", macros) == "4 30"


def test_return_from_a_macro_of_another_file() -> None:
    macros = {
        "macros/a.sql": "{% macro triple(x) %}{{ return(x * 3) }}{% endmacro %}",
        "macros/b.sql": "{% macro triple_plus_one(x) %}{{ return(triple(x) + 1) }}{% endmacro %}",
    }
    assert render("{{ triple_plus_one(2) }}", macros) == "7"


def test_a_macro_sees_the_models_context() -> None:
    macros = {
        "macros/m.sql": "{% macro from_a() %}from {{ ref('a') }} -- {{ var('v') }}{% endmacro %}"
    }
    ctx = ModelContext(path=MODEL, vars={"v": 3}, this=None)
    out = Templates({MODEL: "select 1\n{{ from_a() }}"}, macros).render(MODEL, ctx.namespace())
    assert out == 'select 1\nfrom "__ref__"."a" -- 3'
    assert ctx.refs == [("a", 2)]  # the line of the model that called the macro


def test_a_project_macro_replaces_a_built_in_test_of_the_same_name() -> None:
    builtin = Templates({}, {}).macro_names["test_not_null"]
    custom = "{% test not_null(model, column_name) %}select 1{% endtest %}"
    templates = Templates({}, {"macros/not_null.sql": custom})
    assert builtin.startswith("<runner>/")
    assert templates.macro_names["test_not_null"] == "macros/not_null.sql"


def test_generic_tests_lists_built_in_and_user_tests() -> None:
    user = "{% test is_even(model, column_name) %}select 1{% endtest %}"
    known = Templates({}, {"macros/t.sql": user}).generic_tests()
    assert {"not_null", "unique", "accepted_values", "relationships", "is_even"} <= known
    assert {"accepted_range", "expression_is_true", "unique_combination_of_columns"} <= known


def test_translate_test_blocks_keeps_whitespace_control() -> None:
    source = "{%- test x(model) -%}select 1{%- endtest -%}"
    assert translate_test_blocks(source) == "{%- macro test_x(model) -%}select 1{%- endmacro -%}"


# -- errors point at the file and line -----------------------------------------


def test_an_undefined_name_in_a_model_names_file_and_line() -> None:
    error = render_error("select 1\nfrom t\nwhere {{ region }} = 1")
    assert error.location == "models/m.sql:3"
    assert "'region' is undefined" in error.message


def test_an_undefined_macro_names_file_and_line() -> None:
    error = render_error("select\n  {{ cents('amount') }}")
    assert error.location == "models/m.sql:2"
    assert "'cents' is undefined" in error.message


def test_an_undefined_name_inside_a_macro_names_the_macro_and_the_calling_model() -> None:
    macros = {"macros/m.sql": "{% macro f() %}\n{{ missing_thing }}\n{% endmacro %}"}
    error = render_error("select\n\n{{ f() }}", macros)
    assert error.location == "macros/m.sql:2"
    assert "called from models/m.sql:3" in error.message


def test_a_jinja_syntax_error_names_file_and_line() -> None:
    error = render_error("select 1\n{% if %}\n")
    assert error.location == "models/m.sql:2"
    assert "Jinja syntax error" in error.message


def test_a_jinja_syntax_error_in_a_macro_file_fails_when_macros_load() -> None:
    with pytest.raises(CompilationError) as info:
        Templates({}, {"macros/broken.sql": "{% macro f() %}\n\n{{ x }"})
    assert info.value.path == "macros/broken.sql"
    assert info.value.line == 3


def test_a_python_error_while_rendering_is_located() -> None:
    error = render_error("select\n{{ 1 / 0 }}")
    assert error.location == "models/m.sql:2"
    assert "ZeroDivisionError" in error.message


# -- vars through the project: pyproject < --vars ---------------------------------


def test_cli_vars_override_project_vars_and_defaults_fill_the_rest(make_project, load) -> None:
    root = make_project(
        {
            "pyproject.toml": '[tool.kpi]\n[tool.kpi.vars]\nregion = "emea"\nyear = 2024\n',
            "models/m.sql": "select '{{ var('region') }}' as r, {{ var('year') }} as y, "
            "{{ var('limit', 10) }} as l",
        }
    )
    project = load(root, vars={"year": 2025})
    sql = project.compile()["model.project.m"].sql
    assert sql == "select 'emea' as r, 2025 as y, 10 as l"


def test_project_macros_reach_singular_tests(make_project, load) -> None:
    root = make_project(
        {
            "macros/zero.sql": "{% macro no_rows() %}where false{% endmacro %}",
            "models/m.sql": "select 1 as id",
            "tests/data/assert_nothing.sql": "select * from {{ ref('m') }} {{ no_rows() }}",
        }
    )
    compiled = load(root).compile()
    assert compiled["test.project.assert_nothing"].sql == 'select * from "main"."m" where false'
