"""runner/sql_checks.py: DuckDB's parser locates syntax errors before anything
runs; sqlglot finds tables read without ref() or source()."""

from __future__ import annotations

import pytest

from runner.errors import CompilationError
from runner.nodes import Relation
from runner.sql_checks import SqlCache, position_to_line_column, syntax_error, undeclared_reads

# -- syntax errors (in-memory DuckDB) ------------------------------------------------------


def test_valid_sql_has_no_syntax_error(con) -> None:
    assert syntax_error(con, "select 1 as id\nfrom range(3)") is None


def test_a_trailing_semicolon_is_one_statement(con) -> None:
    assert syntax_error(con, "select 1;\n") is None


@pytest.mark.parametrize(
    ("sql", "line", "column"),
    [
        ("select 1\nfrom from", 2, 6),
        ("select a,\n       b\nfrom t\nwhere and x", 4, 7),
        ("select 1 from t where", 1, 17),  # at or near "where"
        ("selec 1", 1, 1),
    ],
)
def test_a_syntax_error_is_located_by_line_and_column(con, sql, line, column) -> None:
    error = syntax_error(con, sql)
    assert error is not None
    message, got_line, got_column = error
    assert (got_line, got_column) == (line, column)
    assert "syntax error" in message


def test_a_model_must_be_exactly_one_statement(con) -> None:
    error = syntax_error(con, "select 1; select 2")
    assert error == ("expected exactly one SQL statement, found 2", 1, 1)


def test_position_to_line_column() -> None:
    text = "ab\ncd\nef"
    assert position_to_line_column(text, 0) == (1, 1)
    assert position_to_line_column(text, 4) == (2, 2)
    assert position_to_line_column(text, 6) == (3, 1)


# -- reads (pure) ----------------------------------------------------------------------------


def test_tables_read_skip_ctes_and_table_functions(tmp_path) -> None:
    cache = SqlCache(tmp_path / "sql.json")
    sql = """
        with recent as (select * from "marts"."orders")
        select * from recent
        join raw.users using (id)
        join read_csv('x.csv') as f using (id)
        join range(3) as r on true
        join lookup on true
    """
    assert sorted(cache.tables_read(sql)) == [("", "lookup"), ("marts", "orders"), ("raw", "users")]


def test_reads_cache_keeps_answers_on_disk(tmp_path) -> None:
    path = tmp_path / "sql.json"
    cache = SqlCache(path)
    cache.tables_read("select * from a.b")
    cache.save()
    again = SqlCache(path)
    assert again.tables_read("select * from a.b") == [("a", "b")]
    assert not again.changed


def test_sql_sqlglot_cannot_parse_reads_nothing(tmp_path) -> None:
    assert SqlCache(tmp_path / "r.json").tables_read("select from where (") == []


def test_undeclared_reads() -> None:
    declared = [Relation("marts", "orders"), Relation("raw", "Users")]
    reads = [("marts", "orders"), ("raw", "users"), ("", "orders"), ("marts", "other"), ("", "x")]
    assert undeclared_reads(reads, declared) == ["marts.other", "x"]


# -- through the project ------------------------------------------------------------------------


def test_a_model_reading_an_undeclared_table_gets_a_warning(make_project, load, output) -> None:
    root = make_project(
        {
            "models/a.sql": "select 1 as id",
            "models/b.sql": "select * from {{ ref('a') }} join main.a using (id)\n"
            "join raw.crm_users using (id)",
        }
    )
    project = load(root)
    project.compile()
    text = output(project)
    assert (
        "Warning: models/b.sql: reads raw.crm_users without ref() or source(); "
        "the build order cannot account for it."
    ) in text
    assert "reads main.a" not in text


def test_ctes_sources_and_this_are_not_undeclared(make_project, load, output) -> None:
    root = make_project(
        {
            "models/src.yml": "sources:\n  - name: crm\n    schema: raw\n    tables:\n"
            "      - name: users\n",
            "models/inc.sql": "{{ config(materialized='incremental') }}\n"
            "with users as (select * from {{ source('crm', 'users') }})\n"
            "select * from users where id > (select max(id) from {{ this }})",
        }
    )
    project = load(root)
    project.compile()
    assert "Warning" not in output(project)


def test_a_syntax_error_stops_the_run_before_any_table_is_touched(
    make_project, load, query
) -> None:
    root = make_project(
        {
            "models/good.sql": "{{ config(materialized='table') }}select 1 as id",
            "models/other.sql": "{{ config(materialized='table') }}select 1 as id",
        }
    )
    load(root).run()
    make_project(
        {
            "models/good.sql": "{{ config(materialized='table') }}select 2 as id",
            "models/bad.sql": "{{ config(materialized='table') }}\nselect 1 as id,\nfrom from t",
        },
        root=root,
    )
    with pytest.raises(CompilationError) as info:
        load(root).run()
    error = info.value
    assert "model 'bad' (models/bad.sql) does not parse" in error.message
    assert (error.path, error.line, error.column) == ("target/compiled/models/bad.sql", 3, 6)
    assert query(root, "select id from good") == [(1,)]
    assert query(
        root,
        "select table_name from information_schema.tables where table_schema = 'main' order by 1",
    ) == [
        ("good",),
        ("other",),
    ]
