"""runner/compiling.py: the SQL that runs, with ephemeral models inlined as CTEs
and `is_incremental()` decided against the warehouse."""

from __future__ import annotations

import pytest

from runner.compiling import Compiler, inject_ctes
from runner.errors import CompilationError
from runner.parsing import load_project
from runner.settings import load_settings

EPHEMERAL = "{{ config(materialized='ephemeral') }}\n"


def compile_all(root, existing=frozenset(), full_refresh=False):
    loaded = load_project(load_settings(root))
    compiler = Compiler(loaded, frozenset(existing), full_refresh)
    return {n.name: compiler.compile(n) for n in loaded.nodes.values()}


# -- inject_ctes (pure) ------------------------------------------------------------


def test_inject_ctes_prepends_a_with_clause() -> None:
    assert inject_ctes("select * from a", [("a", "select 1")]) == (
        'with "a" as (\nselect 1\n)\nselect * from a'
    )


def test_inject_ctes_without_ctes_returns_the_sql_unchanged() -> None:
    assert inject_ctes("select 1", []) == "select 1"


def test_inject_ctes_merges_with_the_models_own_with() -> None:
    sql = "with b as (select * from a) select * from b"
    assert inject_ctes(sql, [("a", "select 1")]) == (
        'with "a" as (\nselect 1\n), b as (select * from a) select * from b'
    )


def test_inject_ctes_finds_with_after_comments_and_in_upper_case() -> None:
    sql = "-- header\n/* block\ncomment */\n  WITH b as (select 1) select * from b"
    out = inject_ctes(sql, [("a", "select 1")])
    assert out.startswith('-- header\n/* block\ncomment */\n  WITH "a" as (\nselect 1\n), b as')


def test_inject_ctes_keeps_with_recursive() -> None:
    sql = "with recursive r(n) as (select 1 union all select n + 1 from r) select * from r"
    out = inject_ctes(sql, [("a", "select 1")])
    assert out.startswith('with recursive "a" as (\nselect 1\n), r(n) as')


def test_inject_ctes_ignores_a_with_that_is_not_leading() -> None:
    sql = "select * from (with b as (select 1) select * from b)"
    assert inject_ctes(sql, [("a", "select 1")]).startswith('with "a" as (')


@pytest.mark.parametrize(
    "sql",
    [
        "select * from a",
        "with b as (select * from a) select * from b",
        "-- c\nWITH b as (select * from a) select * from b",
    ],
)
def test_injected_sql_runs(con, sql: str) -> None:
    assert con.execute(inject_ctes(sql, [("a", "select 7 as id")])).fetchall() == [(7,)]


# -- ephemeral models --------------------------------------------------------------


def test_an_ephemeral_ref_becomes_a_cte(make_project) -> None:
    root = make_project(
        {
            "models/e.sql": EPHEMERAL + "select 1 as id",
            "models/m.sql": "select * from {{ ref('e') }}",
        }
    )
    sql = compile_all(root)["m"].sql
    assert sql == 'with "__kpi_cte__e" as (\nselect 1 as id\n)\nselect * from "__kpi_cte__e"'


def test_nested_ephemerals_are_injected_innermost_first_and_once(make_project, con) -> None:
    root = make_project(
        {
            "models/e1.sql": EPHEMERAL + "select 1 as id",
            "models/e2.sql": EPHEMERAL + "select id + 1 as id from {{ ref('e1') }}",
            "models/m.sql": (
                "select * from {{ ref('e2') }}\nunion all\nselect * from {{ ref('e1') }}"
            ),
        }
    )
    sql = compile_all(root)["m"].sql
    assert sql.index('"__kpi_cte__e1" as (') < sql.index('"__kpi_cte__e2" as (')
    assert sql.count('"__kpi_cte__e1" as (') == 1
    assert sorted(con.execute(sql).fetchall()) == [(1,), (2,)]


def test_an_ephemeral_with_its_own_with_is_a_valid_cte(make_project, con) -> None:
    root = make_project(
        {
            "models/e.sql": EPHEMERAL + "with base as (select 41 as n) select n + 1 as n from base",
            "models/m.sql": "with x as (select * from {{ ref('e') }}) select n from x",
        }
    )
    sql = compile_all(root)["m"].sql
    assert sql.startswith('with "__kpi_cte__e" as (')
    assert con.execute(sql).fetchall() == [(42,)]


def test_a_model_with_its_own_with_and_a_leading_comment_gets_ephemerals_merged(
    make_project, con
) -> None:
    root = make_project(
        {
            "models/e.sql": EPHEMERAL + "select 5 as n",
            "models/m.sql": "-- import CTEs first\nwith e as (select * from {{ ref('e') }})\n"
            "select n * 2 as n from e",
        }
    )
    sql = compile_all(root)["m"].sql
    assert sql.count("with ") == 1
    assert con.execute(sql).fetchall() == [(10,)]


def test_a_test_on_a_model_that_reads_an_ephemeral_compiles_its_ctes(make_project) -> None:
    root = make_project(
        {
            "models/e.sql": EPHEMERAL + "select 1 as id",
            "models/e.yml": "models:\n  - name: e\n    columns:\n      - name: id\n"
            "        data_tests: [not_null]\n",
        }
    )
    sql = compile_all(root)["not_null_e_id"].sql
    assert sql.startswith('with "__kpi_cte__e" as (\nselect 1 as id\n)')
    assert 'from "__kpi_cte__e"' in sql


def test_the_compiled_file_of_an_ephemeral_shows_what_it_selects(make_project, load) -> None:
    root = make_project({"models/e.sql": EPHEMERAL + "select 1 as id"})
    load(root).compile()
    text = (root / "target/compiled/models/e.sql").read_text()
    assert text == ('with "__kpi_cte__e" as (\nselect 1 as id\n)\nselect * from "__kpi_cte__e"\n')


# -- is_incremental -----------------------------------------------------------------

INCREMENTAL = """{{ config(materialized='incremental') }}
select 1 as id
{% if is_incremental() %}where id > (select max(id) from {{ this }}){% endif %}
"""


@pytest.mark.parametrize(
    ("exists", "full_refresh", "config_full_refresh", "expected"),
    [
        (False, False, None, False),  # first build
        (True, False, None, True),  # the table is there
        (True, True, None, False),  # --full-refresh
        (True, True, "false", True),  # config(full_refresh=false) wins over the flag
        (False, True, "false", False),
    ],
)
def test_is_incremental(make_project, exists, full_refresh, config_full_refresh, expected) -> None:
    sql = INCREMENTAL
    if config_full_refresh:
        sql = sql.replace("'incremental'", f"'incremental', full_refresh={config_full_refresh}")
    root = make_project({"models/inc.sql": sql})
    existing = {("main", "inc")} if exists else set()
    compiled = compile_all(root, existing, full_refresh)["inc"]
    assert compiled.is_incremental is expected
    assert ('where id > (select max(id) from "main"."inc")' in compiled.sql) is expected


def test_is_incremental_is_false_for_a_table_model(make_project) -> None:
    root = make_project(
        {"models/t.sql": "{{ config(materialized='table') }}{{ is_incremental() }}"}
    )
    assert compile_all(root, {("main", "t")})["t"].sql == "False"


def test_is_incremental_matches_the_relation_case_insensitively(make_project) -> None:
    root = make_project({"models/Inc.sql": INCREMENTAL})
    assert compile_all(root, {("main", "inc")})["Inc"].is_incremental


# -- what compiling records and refuses ---------------------------------------------------


def test_reads_lists_refs_sources_and_this(make_project) -> None:
    root = make_project(
        {
            "models/src.yml": "sources:\n  - name: crm\n    schema: raw\n    tables:\n"
            "      - name: users\n",
            "models/a.sql": "{{ config(schema='s') }}select 1 as id",
            "models/inc.sql": INCREMENTAL.replace(
                "select 1 as id", "select * from {{ ref('a') }}, {{ source('crm', 'users') }}"
            ),
        }
    )
    reads = {r.display for r in compile_all(root, {("main", "inc")})["inc"].reads}
    assert reads == {"s.a", "raw.users", "main.inc"}


def test_a_ref_not_seen_while_parsing_is_an_error_with_a_hint(make_project) -> None:
    root = make_project(
        {
            "models/a.sql": "select 1 as id",
            "models/b.sql": (
                "{{ config(materialized='incremental') }}\nselect 1 as id\n"
                "{% if is_incremental() %}\nunion all select * from {{ ref('a') }}{% endif %}"
            ),
        }
    )
    with pytest.raises(CompilationError) as info:
        compile_all(root, {("main", "b")})
    assert info.value.location == "models/b.sql:4"
    assert "-- depends_on: {{ ref('a') }}" in str(info.value)


def test_compile_writes_target_compiled_and_checks_the_sql(make_project, load) -> None:
    root = make_project(
        {
            "models/marts/m.sql": "select {{ 1 + 1 }} as two",
            "models/marts/m.yml": "models:\n  - name: m\n    columns:\n      - name: two\n"
            "        data_tests: [not_null]\n",
        }
    )
    compiled = load(root).compile()
    assert set(compiled) == {"model.project.m", "test.project.not_null_m_two"}
    assert (root / "target/compiled/models/marts/m.sql").read_text() == "select 2 as two"
    test_sql = (root / "target/compiled/models/marts/not_null_m_two.sql").read_text()
    assert 'from "main"."m"' in test_sql
