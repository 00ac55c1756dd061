"""runner/materializations.py (on an in-memory DuckDB) and each
materialization end to end: view, table, ephemeral, incremental, seed."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from runner import materializations as mat
from runner.nodes import Relation

T = Relation("main", "t")


@pytest.fixture
def con(engine):
    """The materializations run on the engine adapter (DuckDB, in memory)."""
    return engine


def rows(con, sql="select * from t order by all"):
    return con.execute(sql).fetchall()


def kind(con, name="t"):
    return mat.existing_kind(con, Relation("main", name))


# -- the SQL of each materialization (pure, in memory) ---------------------------------


def test_build_view_and_rebuild_it(con) -> None:
    mat.build_view(con, T, "select 1 as id;")
    mat.build_view(con, T, "select 2 as id\n;\n")
    assert (kind(con), rows(con)) == ("view", [(2,)])


def test_build_table_returns_its_row_count(con) -> None:
    assert mat.build_table(con, T, "select * from range(3) r(id)") == 3
    assert mat.build_table(con, T, "select 9 as id") == 1
    assert (kind(con), rows(con)) == ("table", [(9,)])


def test_a_view_can_become_a_table_and_back(con) -> None:
    mat.build_view(con, T, "select 1 as id")
    assert mat.build_table(con, T, "select 2 as id") == 1
    assert kind(con) == "table"
    mat.build_view(con, T, "select 3 as id")
    assert (kind(con), rows(con)) == ("view", [(3,)])


def test_a_failed_build_in_a_transaction_leaves_the_table_as_it_was(con) -> None:
    mat.build_table(con, T, "select 1 as id")
    con.execute("begin transaction")
    with pytest.raises(duckdb.ConversionException):
        mat.build_table(con, T, "select 'x'::int as id")
    con.execute("rollback")
    assert rows(con) == [(1,)]


def test_append_rows_inserts_by_column_name(con) -> None:
    mat.build_table(con, T, "select 1 as id, 'a' as name")
    assert mat.append_rows(con, T, "select 'b' as name, 2 as id") == 1
    assert rows(con) == [(1, "a"), (2, "b")]


def test_delete_insert_replaces_rows_with_the_same_key(con) -> None:
    mat.build_table(con, T, "select * from (values (1, 'old'), (2, 'old')) v(id, v)")
    written = mat.delete_insert(
        con, T, "select * from (values (2, 'new'), (3, 'new')) v(id, v)", ("id",)
    )
    assert written == 2
    assert rows(con) == [(1, "old"), (2, "new"), (3, "new")]


def test_delete_insert_matches_null_keys_and_composite_keys(con) -> None:
    mat.build_table(
        con,
        T,
        "select * from (values (1, null, 'old'), (1, 'a', 'old'), (2, null, 'old')) v(k, t, v)",
    )
    mat.delete_insert(con, T, "select 1 as k, null as t, 'new' as v", ("k", "t"))
    assert rows(con) == [(1, "a", "old"), (1, None, "new"), (2, None, "old")]


def test_delete_insert_leaves_no_batch_table_behind(con) -> None:
    mat.build_table(con, T, "select 1 as id")
    mat.delete_insert(con, T, "select 1 as id", ("id",))
    assert rows(con, "select count(*) from duckdb_tables() where table_name like '%batch%'") == [
        (0,)
    ]


def test_load_csv_table_with_column_types(con, tmp_path) -> None:
    csv = tmp_path / "regions.csv"
    csv.write_text("code,rate\n007,1\n010,2\n")
    assert mat.load_csv_table(con, T, csv, {"code": "varchar", "rate": "decimal(6,2)"}) == 2
    assert rows(con, "select code, rate::varchar from t order by code") == [
        ("007", "1.00"),
        ("010", "2.00"),
    ]


# -- end to end -------------------------------------------------------------------------


def test_each_materialization_creates_what_it_says(make_project, load, query) -> None:
    root = make_project(
        {
            "models/v.sql": "select 1 as id",
            "models/t.sql": "{{ config(materialized='table') }}select * from {{ ref('v') }}",
            "models/e.sql": "{{ config(materialized='ephemeral') }}select id + 1 as id from "
            "{{ ref('t') }}",
            "models/i.sql": "{{ config(materialized='incremental', schema='marts') }}"
            "select * from {{ ref('e') }}",
        }
    )
    result = load(root).run()
    assert result.exit_code == 0
    assert set(result.statuses()) == {"v", "t", "i"}  # an ephemeral does not run
    assert query(
        root,
        "select table_schema, table_name, table_type from information_schema.tables"
        " where table_schema <> '_kpi' order by table_name",  # _kpi: the runner's own state
    ) == [
        ("marts", "i", "BASE TABLE"),
        ("main", "t", "BASE TABLE"),
        ("main", "v", "VIEW"),
    ]
    assert query(root, "select id from marts.i") == [(2,)]


def test_a_failing_table_build_keeps_the_previous_table_exactly(
    make_project, load, query, output
) -> None:
    root = make_project(
        {"models/t.sql": "{{ config(materialized='table') }}select 1 as id, 'a' as v"}
    )
    assert load(root).run().exit_code == 0
    make_project(
        {"models/t.sql": "{{ config(materialized='table') }}select 2 as id, 'x'::int as v"},
        root=root,
    )
    project = load(root)
    result = project.run()
    assert result.exit_code == 1
    assert result.by_name()["t"].status == "error"
    assert "Could not convert string 'x'" in result.by_name()["t"].message
    assert query(root, "select * from t") == [(1, "a")]
    assert "ERROR creating table main.t" in output(project)


def test_a_failing_incremental_build_keeps_the_previous_rows(make_project, load, query) -> None:
    model = "{{ config(materialized='incremental') }}select %s as id"
    root = make_project({"models/i.sql": model % "1"})
    load(root).run()
    make_project({"models/i.sql": model % "'x'::int"}, root=root)
    assert load(root).run().exit_code == 1
    assert query(root, "select * from i") == [(1,)]


INCREMENTAL_APPEND = """{{ config(materialized='incremental') }}
select * from {{ ref('events') }}
{% if is_incremental() %}where id > (select max(id) from {{ this }}){% endif %}
"""
# The upstream data changes between runs while no model's definition does (a
# changed definition upstream rebuilds an incremental model in full).
APP_SOURCE = """
sources:
  - name: app
    schema: main
    tables:
      - name: raw_events
      - name: raw_batch
"""
EVENTS = "{{ config(materialized='table') }}select * from {{ source('app', 'raw_events') }}"


def set_source(root: Path, table: str, sql: str) -> None:
    con = duckdb.connect(str(root / "w.duckdb"))
    try:
        con.execute(f"create or replace table main.{table} as {sql}")
    finally:
        con.close()


def event_project(make_project, events: int) -> Path:
    root = make_project(
        {
            "models/sources.yml": APP_SOURCE,
            "models/events.sql": EVENTS,
            "models/inc.sql": INCREMENTAL_APPEND,
        }
    )
    set_source(root, "raw_events", f"select * from range({events}) r(id)")
    return root


def test_incremental_append_adds_only_new_rows(make_project, load, query, output) -> None:
    root = event_project(make_project, 3)
    assert load(root).run().exit_code == 0
    set_source(root, "raw_events", "select * from range(10) r(id)")
    project = load(root)
    result = project.run()
    assert result.by_name()["inc"].rows == 7
    assert "OK inserted into main.inc" in output(project)
    assert query(root, "select id from inc order by id") == [(i,) for i in range(10)]
    assert "without ref() or source()" not in output(project)  # {{ this }} is declared


def test_full_refresh_rebuilds_an_incremental_model(make_project, load, query) -> None:
    root = event_project(make_project, 3)
    load(root).run()
    con = duckdb.connect(str(root / "w.duckdb"))
    con.execute("insert into inc values (100)")
    con.close()
    result = load(root).run(full_refresh=True)
    assert result.by_name()["inc"].message == "created table"
    assert query(root, "select id from inc order by id") == [(0,), (1,), (2,)]


DELETE_INSERT = """{{ config(materialized='incremental', incremental_strategy='delete+insert',
                 unique_key=['team', 'month']) }}
select * from {{ ref('batch') }}
"""
BATCH = "{{ config(materialized='table') }}select * from {{ source('app', 'raw_batch') }}"
BATCH_ROWS = "select * from (values %s) v(team, month, amount)"


def test_delete_insert_replaces_rows_by_unique_key_including_null_keys(
    make_project, load, query, output
) -> None:
    root = make_project(
        {
            "models/sources.yml": APP_SOURCE,
            "models/batch.sql": BATCH,
            "models/kpi.sql": DELETE_INSERT,
        }
    )
    set_source(root, "raw_batch", BATCH_ROWS % "('a', 1, 10), (null, 1, 20), ('b', 1, 30)")
    load(root).run()
    set_source(root, "raw_batch", BATCH_ROWS % "('a', 1, 11), (null, 1, 21), ('a', 2, 400)")
    project = load(root)
    assert project.run().exit_code == 0
    assert "OK merged into main.kpi" in output(project)
    assert query(root, "select * from kpi order by all") == [
        ("a", 1, 11),
        ("a", 2, 400),
        ("b", 1, 30),
        (None, 1, 21),
    ]


def test_a_model_can_switch_from_view_to_table(make_project, load, query) -> None:
    root = make_project({"models/m.sql": "select 1 as id"})
    load(root).run()
    make_project({"models/m.sql": "{{ config(materialized='table') }}select 2 as id"}, root=root)
    assert load(root).run().exit_code == 0
    assert query(
        root,
        "select table_type, (select id from m) from information_schema.tables "
        "where table_schema = 'main'",
    ) == [("BASE TABLE", 2)]


# -- seeds ------------------------------------------------------------------------------

SEED_YML = """
seeds:
  - name: regions
    config:
      column_types:
        code: varchar
"""


def test_a_seed_loads_with_column_types_from_yml(make_project, load, query, output) -> None:
    root = make_project(
        {"seeds/regions.csv": "code,name\n007,North\n010,South\n", "seeds/regions.yml": SEED_YML}
    )
    project = load(root)
    result = project.seed()
    assert result.by_name()["regions"].rows == 2
    assert "OK loaded seed main.regions" in output(project)
    assert query(root, "select code from regions order by code") == [("007",), ("010",)]


def test_a_seed_is_reloaded_only_when_its_file_changes(make_project, load, query, output) -> None:
    root = make_project({"seeds/regions.csv": "id\n1\n"})
    load(root).seed()
    loaded_at = query(root, "select loaded_at from _kpi.seed_state")

    again = load(root)
    assert again.seed().by_name()["regions"].message == "unchanged seed"
    assert "OK unchanged seed main.regions" in output(again)
    assert query(root, "select loaded_at from _kpi.seed_state") == loaded_at

    make_project({"seeds/regions.csv": "id\n1\n2\n"}, root=root)
    assert load(root).seed().by_name()["regions"].message == "loaded seed"
    assert query(root, "select count(*) from regions") == [(2,)]


def test_a_seed_is_reloaded_when_its_column_types_change(make_project, load, query) -> None:
    root = make_project({"seeds/regions.csv": "code\n7\n"})
    load(root).seed()
    assert query(root, "select code from regions") == [(7,)]
    make_project({"seeds/regions.yml": SEED_YML}, root=root)
    assert load(root).seed().by_name()["regions"].message == "loaded seed"
    assert query(root, "select code from regions") == [("7",)]


def test_a_dropped_seed_table_is_reloaded(make_project, load, query) -> None:
    root = make_project({"seeds/regions.csv": "id\n1\n"})
    load(root).seed()
    con = duckdb.connect(str(root / "w.duckdb"))
    con.execute("drop table regions")
    con.close()
    assert load(root).seed().by_name()["regions"].message == "loaded seed"
    assert query(root, "select id from regions") == [(1,)]


def test_full_refresh_reloads_an_unchanged_seed(make_project, load) -> None:
    root = make_project({"seeds/regions.csv": "id\n1\n"})
    load(root).seed()
    assert load(root).seed(full_refresh=True).by_name()["regions"].message == "loaded seed"
