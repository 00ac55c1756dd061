"""runner/parsing.py (and settings, yml_files): loading a project folder into
nodes, and every load error naming its file and line."""

from __future__ import annotations

import os

import pytest

from runner.errors import DependencyError, ProjectError
from runner.parsing import generic_test_name, load_project
from runner.settings import load_settings

ID_TESTS = """\
models:
  - name: m
    columns:
      - name: id
        {key}:
{tests}
"""


def parse(root, vars=None):
    return load_project(load_settings(root), vars)


def by_name(loaded):
    return {n.name: n for n in loaded.nodes.values()}


def load_error(make_project, files, kind=ProjectError):
    root = make_project(files)
    with pytest.raises(kind) as info:
        parse(root)
    return info.value


# -- the project folder ----------------------------------------------------------


def test_an_empty_tool_kpi_table_and_a_models_folder_is_a_project(make_project) -> None:
    root = make_project({"pyproject.toml": "[tool.kpi]\n", "models/a.sql": "select 1"})
    loaded = parse(root)
    assert list(loaded.nodes) == ["model.project.a"]
    assert loaded.settings.warehouse == root / "warehouse.duckdb"


def test_a_folder_without_pyproject_is_not_a_project(tmp_path) -> None:
    with pytest.raises(ProjectError, match=r"no pyproject\.toml"):
        load_settings(tmp_path)


def test_a_pyproject_without_tool_kpi_is_not_a_project(make_project) -> None:
    root = make_project({"pyproject.toml": "[project]\nname = 'x'\n"})
    with pytest.raises(ProjectError, match=r"no \[tool.kpi\] table"):
        load_settings(root)


def test_warehouse_argument_beats_env_beats_pyproject(make_project, monkeypatch) -> None:
    root = make_project({"pyproject.toml": '[tool.kpi]\nwarehouse = "from_toml.duckdb"\n'})
    monkeypatch.delenv("KPI_WAREHOUSE", raising=False)
    assert load_settings(root).warehouse == root / "from_toml.duckdb"
    monkeypatch.setenv("KPI_WAREHOUSE", "/tmp/from_env.duckdb")
    assert str(load_settings(root).warehouse) == "/tmp/from_env.duckdb"
    assert load_settings(root, "arg.duckdb").warehouse == root / "arg.duckdb"


def test_all_kinds_of_files_become_nodes(make_project) -> None:
    root = make_project(
        {
            "models/staging/stg_a.sql": "select * from {{ ref('regions') }}",
            "models/staging/stg_a.yml": "models:\n  - name: stg_a\n    columns:\n"
            "      - name: id\n        data_tests: [not_null]\n",
            "seeds/regions.csv": "id\n1\n",
            "macros/util.sql": "{% macro f() %}1{% endmacro %}",
            "tests/data/assert_x.sql": "select * from {{ ref('stg_a') }} where false",
        }
    )
    loaded = parse(root)
    kinds = {n.name: n.resource_type for n in loaded.nodes.values()}
    assert kinds == {
        "stg_a": "model",
        "regions": "seed",
        "not_null_stg_a_id": "test",
        "assert_x": "test",
    }
    nodes = by_name(loaded)
    assert nodes["stg_a"].depends_on == ("seed.project.regions",)
    assert nodes["assert_x"].depends_on == ("model.project.stg_a",)
    assert nodes["stg_a"].fqn == ("project", "staging", "stg_a")


def test_a_models_name_is_its_file_stem(make_project) -> None:
    root = make_project({"models/deep/er/kpi_churn.sql": "select 1"})
    assert list(by_name(parse(root))) == ["kpi_churn"]


def test_two_models_with_one_name_name_both_files(make_project) -> None:
    error = load_error(
        make_project,
        {"models/a/orders.sql": "select 1", "models/b/orders.sql": "select 2"},
        DependencyError,
    )
    assert "two nodes are named 'orders'" in str(error)
    assert "models/a/orders.sql" in str(error)
    assert "models/b/orders.sql" in str(error)


def test_a_model_and_a_seed_with_one_name_name_both_files(make_project) -> None:
    error = load_error(
        make_project, {"models/regions.sql": "select 1", "seeds/regions.csv": "id\n1\n"}
    )
    assert "models/regions.sql and seeds/regions.csv" in str(error)


# -- configs -----------------------------------------------------------------------


FOLDERS = """
[tool.kpi]
[tool.kpi.models]
"+tags" = "all"
[tool.kpi.models.marts]
"+materialized" = "table"
"+schema" = "marts"
"+tags" = ["mart"]
[tool.kpi.models.marts.finance]
"+schema" = "finance"
"""


def test_folder_configs_apply_below_their_folder_deepest_last(make_project) -> None:
    root = make_project(
        {
            "pyproject.toml": FOLDERS,
            "models/stg.sql": "select 1",
            "models/marts/dim.sql": "select 1",
            "models/marts/finance/revenue.sql": "select 1",
        }
    )
    nodes = by_name(parse(root))
    assert (nodes["stg"].config.materialized, nodes["stg"].config.schema) == ("view", "main")
    assert (nodes["dim"].config.materialized, nodes["dim"].config.schema) == ("table", "marts")
    assert nodes["revenue"].config.schema == "finance"
    assert nodes["revenue"].config.materialized == "table"
    assert nodes["revenue"].config.tags == ("all", "mart")
    assert str(nodes["revenue"].relation) == '"finance"."revenue"'


def test_config_in_the_file_beats_yml_beats_folder_and_tags_add_up(make_project) -> None:
    root = make_project(
        {
            "pyproject.toml": FOLDERS,
            "models/marts/dim.sql": "{{ config(materialized='view', tags=['sql']) }}select 1",
            "models/marts/dim.yml": """
                models:
                  - name: dim
                    config:
                      schema: from_yml
                      materialized: incremental
                      tags: [yml]
            """,
        }
    )
    config = by_name(parse(root))["dim"].config
    assert config.materialized == "view"
    assert config.schema == "from_yml"
    assert config.tags == ("all", "mart", "yml", "sql")


def test_an_unknown_config_key_names_the_file_and_the_known_keys(make_project) -> None:
    error = load_error(make_project, {"models/a.sql": "{{ config(materialised='table') }}select 1"})
    assert error.path == "models/a.sql"
    assert "unknown config key(s): materialised" in str(error)
    assert "materialized" in (error.hint or "")


def test_an_unknown_materialization_is_an_error(make_project) -> None:
    error = load_error(make_project, {"models/a.sql": "{{ config(materialized='snapshot') }}"})
    assert "materialized 'snapshot' is not one of view, table, ephemeral, incremental" in str(error)


def test_delete_insert_without_unique_key_is_an_error(make_project) -> None:
    sql = "{{ config(materialized='incremental', incremental_strategy='delete+insert') }}"
    error = load_error(make_project, {"models/a.sql": sql + "select 1"})
    assert "needs a unique_key" in str(error)


def test_an_unreadable_test_threshold_fails_the_load_at_its_yml_line(make_project) -> None:
    tests = "          - not_null:\n              config:\n                warn_if: many"
    error = load_error(
        make_project,
        {
            "models/m.sql": "select 1 as id",
            "models/m.yml": ID_TESTS.format(key="tests", tests=tests),
        },
    )
    assert error.location == "models/m.yml:6"
    assert "warn_if 'many' is not a threshold" in str(error)


def test_a_disabled_model_is_not_a_node(make_project) -> None:
    root = make_project({"models/a.sql": "{{ config(enabled=false) }}select 1"})
    assert dict(parse(root).nodes) == {}


def test_properties_for_a_model_that_does_not_exist_is_a_warning(make_project) -> None:
    root = make_project(
        {"models/a.sql": "select 1", "models/props.yml": "models:\n  - name: a\n  - name: gone\n"}
    )
    assert parse(root).warnings == (
        "models/props.yml:3: properties for 'gone', but there is no model or seed of that name.",
    )


def test_yml_description_and_columns_reach_the_node(make_project) -> None:
    root = make_project(
        {
            "models/a.sql": "select 1 as id",
            "models/a.yml": """
                models:
                  - name: a
                    description: One row per thing.
                    columns:
                      - name: id
                        description: The key.
                        data_type: integer
            """,
        }
    )
    node = by_name(parse(root))["a"]
    assert node.description == "One row per thing."
    assert node.columns["id"].description == "The key."
    assert node.columns["id"].data_type == "integer"
    assert node.yml_path == "models/a.yml"


# -- dependencies --------------------------------------------------------------------


def test_a_missing_ref_names_file_line_and_a_close_name(make_project) -> None:
    error = load_error(
        make_project,
        {
            "models/orders.sql": "select 1",
            "models/report.sql": "select *\nfrom {{ ref('order') }}",
        },
        DependencyError,
    )
    assert error.location == "models/report.sql:2"
    assert "ref('order') names a model that does not exist" in str(error)
    assert "Did you mean 'orders'?" in str(error)


def test_a_ref_to_a_disabled_model_says_it_is_disabled(make_project) -> None:
    error = load_error(
        make_project,
        {
            "models/old/orders.sql": "{{ config(enabled=false) }}\nselect 1",
            "models/report.sql": "select *\nfrom {{ ref('orders') }}",
        },
        DependencyError,
    )
    assert error.location == "models/report.sql:2"
    assert "ref('orders') names models/old/orders.sql, which is disabled" in str(error)
    assert "its `enabled` config is false" in str(error)


def test_a_missing_ref_with_no_close_name_says_so(make_project) -> None:
    error = load_error(
        make_project, {"models/a.sql": "select * from {{ ref('zzzzzz') }}"}, DependencyError
    )
    assert "No model has a similar name." in str(error)


def test_a_missing_source_names_file_line_and_a_close_name(make_project) -> None:
    error = load_error(
        make_project,
        {
            "models/src.yml": "sources:\n  - name: crm\n    tables:\n      - name: users\n",
            "models/a.sql": "\n\nselect * from {{ source('crm', 'user') }}",
        },
        DependencyError,
    )
    assert error.location == "models/a.sql:3"
    assert "source('crm', 'user')" in str(error)
    assert "Did you mean 'crm.users'?" in str(error)


def test_a_cycle_names_every_model_on_it(make_project) -> None:
    error = load_error(
        make_project,
        {
            "models/a.sql": "select * from {{ ref('c') }}",
            "models/b.sql": "select * from {{ ref('a') }}",
            "models/c.sql": "select * from {{ ref('b') }}",
            "models/d.sql": "select * from {{ ref('a') }}",
        },
        DependencyError,
    )
    assert "dependency cycle: a -> b -> c -> a." in str(error)


def test_a_model_that_refs_itself_is_a_cycle(make_project) -> None:
    error = load_error(
        make_project, {"models/a.sql": "select * from {{ ref('a') }}"}, DependencyError
    )
    assert "a -> a" in str(error)


def test_sources_are_dependencies_with_their_schema(make_project) -> None:
    root = make_project(
        {
            "models/src.yml": """
                sources:
                  - name: crm
                    schema: raw
                    tables:
                      - name: users
                        identifier: crm_users
            """,
            "models/a.sql": "select * from {{ source('crm', 'users') }}",
        }
    )
    loaded = parse(root)
    assert by_name(loaded)["a"].depends_on == ("source.crm.users",)
    assert str(loaded.sources["source.crm.users"].relation) == '"raw"."crm_users"'


def test_an_undefined_name_fails_the_load_with_file_and_line(make_project) -> None:
    error = load_error(make_project, {"models/a.sql": "select 1,\n{{ oops }}"})
    assert error.location == "models/a.sql:2"


# -- yml -------------------------------------------------------------------------------


def test_a_yml_syntax_error_names_file_line_and_column(make_project) -> None:
    error = load_error(
        make_project,
        {
            "models/a.sql": "select 1",
            "models/a.yml": "models:\n  - name: a\n    columns:\n      - name: id\n     tests: x\n",
        },
    )
    assert error.path == "models/a.yml"
    assert error.line == 5
    assert error.column is not None
    assert "yml syntax error" in error.message


def test_a_yml_file_that_is_not_a_mapping_is_an_error(make_project) -> None:
    error = load_error(make_project, {"models/a.yml": "- just\n- a list\n"})
    assert error.location == "models/a.yml:1"


def test_a_model_described_twice_is_an_error(make_project) -> None:
    error = load_error(
        make_project,
        {
            "models/a.sql": "select 1",
            "models/one.yml": "models:\n  - name: a\n",
            "models/two.yml": "\nmodels:\n  - name: a\n",
        },
    )
    assert error.location == "models/two.yml:3"
    assert "described twice" in error.message


# -- generic tests ---------------------------------------------------------------------


def test_an_unknown_test_names_yml_line_and_suggests_a_close_name(make_project) -> None:
    error = load_error(
        make_project,
        {
            "models/m.sql": "select 1 as id",
            "models/m.yml": ID_TESTS.format(key="data_tests", tests="          - not_nul"),
        },
    )
    assert error.location == "models/m.yml:6"
    assert "unknown test 'not_nul' (did you mean 'not_null'?)" in str(error)


@pytest.mark.parametrize("key", ["data_tests", "tests"])
def test_tests_are_read_from_data_tests_and_the_older_tests_key(make_project, key) -> None:
    tests = "          - unique\n          - accepted_values:\n              values: [a, b]"
    root = make_project(
        {"models/m.sql": "select 1 as id", "models/m.yml": ID_TESTS.format(key=key, tests=tests)}
    )
    nodes = by_name(parse(root))
    assert nodes["unique_m_id"].test_metadata["name"] == "unique"
    assert nodes["accepted_values_m_id__a__b"].test_metadata["kwargs"] == {"values": ["a", "b"]}
    assert nodes["unique_m_id"].depends_on == ("model.project.m",)
    assert nodes["unique_m_id"].column_name == "id"


def test_arguments_nesting_and_config_are_separated(make_project) -> None:
    tests = """
          - accepted_range:
              arguments:
                min_value: 0
                max_value: 10
              config:
                severity: warn
              where: "id > 0"
"""
    root = make_project(
        {
            "models/m.sql": "select 1 as id",
            "models/m.yml": ID_TESTS.format(key="tests", tests=tests),
        }
    )
    test = by_name(parse(root))["accepted_range_m_id__10__0"]
    assert test.test_metadata["kwargs"] == {"min_value": 0, "max_value": 10}
    assert test.config.severity == "warn"
    assert test.config.where == "id > 0"
    assert test.config.schema == "audit"


def test_a_test_with_a_ref_argument_depends_on_both_models(make_project) -> None:
    tests = "          - relationships:\n              to: ref('n')\n              field: id"
    root = make_project(
        {
            "models/m.sql": "select 1 as id",
            "models/n.sql": "select 1 as id",
            "models/m.yml": ID_TESTS.format(key="data_tests", tests=tests),
        }
    )
    test = by_name(parse(root))["relationships_m_id__id__ref_n_"]
    assert test.depends_on == ("model.project.m", "model.project.n")


def test_a_missing_ref_in_a_test_argument_names_the_yml_line(make_project) -> None:
    tests = "          - relationships:\n              to: ref('nn')\n              field: id"
    error = load_error(
        make_project,
        {
            "models/m.sql": "select 1 as id",
            "models/n.sql": "select 1 as id",
            "models/m.yml": ID_TESTS.format(key="data_tests", tests=tests),
        },
        DependencyError,
    )
    assert error.location == "models/m.yml:6"
    assert "Did you mean 'n'?" in str(error)


def test_a_custom_test_name_replaces_the_generated_one(make_project) -> None:
    tests = "          - unique:\n              name: ids_are_unique"
    root = make_project(
        {
            "models/m.sql": "select 1 as id",
            "models/m.yml": ID_TESTS.format(key="tests", tests=tests),
        }
    )
    assert "ids_are_unique" in by_name(parse(root))


def test_a_model_level_test_has_no_column(make_project) -> None:
    root = make_project(
        {
            "models/m.sql": "select 1 as a, 2 as b",
            "models/m.yml": """
                models:
                  - name: m
                    data_tests:
                      - dbt_utils.unique_combination_of_columns:
                          combination_of_columns: [a, b]
            """,
        }
    )
    test = by_name(parse(root))["unique_combination_of_columns_m__a__b"]
    assert test.column_name is None
    assert test.test_metadata["name"] == "unique_combination_of_columns"


def test_source_tests_are_named_after_source_and_table(make_project) -> None:
    root = make_project(
        {
            "models/src.yml": """
                sources:
                  - name: crm
                    tables:
                      - name: users
                        columns:
                          - name: id
                            data_tests: [not_null]
            """
        }
    )
    test = by_name(parse(root))["not_null_crm_users_id"]
    assert test.depends_on == ("source.crm.users",)


def test_a_user_generic_test_is_a_known_test(make_project) -> None:
    root = make_project(
        {
            "macros/is_even.sql": "{% test is_even(model, column_name) %}select 1{% endtest %}",
            "models/m.sql": "select 2 as id",
            "models/m.yml": ID_TESTS.format(key="tests", tests="          - is_even"),
        }
    )
    assert by_name(parse(root))["is_even_m_id"].test_metadata["name"] == "is_even"


def test_two_tests_with_one_generated_name_are_an_error(make_project) -> None:
    tests = "          - unique\n          - unique"
    error = load_error(
        make_project,
        {
            "models/m.sql": "select 1 as id",
            "models/m.yml": ID_TESTS.format(key="tests", tests=tests),
        },
        DependencyError,
    )
    assert "two nodes are named 'unique_m_id'" in str(error)


def test_singular_tests_take_config_from_the_file(make_project) -> None:
    root = make_project(
        {
            "models/m.sql": "select 1 as id",
            "tests/data/assert_m.sql": "{{ config(severity='warn') }}select * from {{ ref('m') }}",
        }
    )
    test = by_name(parse(root))["assert_m"]
    assert test.config.severity == "warn"
    assert test.test_metadata is None


# -- test naming (pure) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("not_null", "orders", "id", {}), "not_null_orders_id"),
        (
            ("accepted_values", "stg_users", "role", {"values": ["rep", "manager"]}),
            "accepted_values_stg_users_role__rep__manager",
        ),
        (
            ("relationships", "orders", "user_id", {"to": "ref('users')", "field": "id"}),
            "relationships_orders_user_id__id__ref_users_",
        ),
        (
            ("unique_combination_of_columns", "m", None, {"combination_of_columns": ["a", "b"]}),
            "unique_combination_of_columns_m__a__b",
        ),
        (("expression_is_true", "m", None, {"expression": "a >= 0"}), "expression_is_true_m__a_0"),
    ],
)
def test_generic_test_names_follow_dbt(args, expected) -> None:
    assert generic_test_name(*args) == expected


def test_a_long_generic_test_name_is_cut_to_64_characters_with_a_hash() -> None:
    values = {"values": [f"value_number_{i}" for i in range(20)]}
    name = generic_test_name("accepted_values", "stg_users", "role", values)
    other = generic_test_name("accepted_values", "stg_users", "role", {"values": ["x"] * 40})
    assert len(name) == 64
    assert name.startswith("accepted_values_stg_users_role__value_number_0")
    assert name != other


# -- the parse cache ------------------------------------------------------------------------


def test_the_parse_cache_sees_an_edited_model(make_project, load) -> None:
    root = make_project({"models/a.sql": "select 1 as id"})
    assert load(root).nodes["model.project.a"].raw_code == "select 1 as id"
    make_project({"models/a.sql": "select 22 as id"}, root=root)
    assert load(root).nodes["model.project.a"].raw_code == "select 22 as id"


def test_the_parse_cache_sees_an_edit_that_keeps_size_and_mtime(make_project, load) -> None:
    root = make_project({"models/a.sql": "select 1 as id"})
    load(root)
    path = root / "models/a.sql"
    stat = path.stat()
    path.write_text("select 2 as id")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert load(root).nodes["model.project.a"].raw_code == "select 2 as id"
