"""Work a build proves it need not do: tables whose raw inputs did not change
since they were built are kept, and new-rows tests with no new rows pass
without running; anything that could differ is rebuilt or run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from runner import data_tests

SOURCES = """
sources:
  - name: shop
    schema: raw
    meta: {load_from_export: true}
    tables:
      - name: events
        meta: {primary_key: [event_id]}
        columns:
          - {name: event_id, data_type: id, meta: {required: true}}
          - {name: n, data_type: integer}
      - name: users
        meta: {primary_key: [user_id]}
        columns:
          - {name: user_id, data_type: id, meta: {required: true}}
  - name: outside
    schema: other
    tables:
      - name: notes
"""
FILES = {
    "models/sources.yml": SOURCES,
    "models/stg_events.sql": "select event_id, n, _load_id from {{ source('shop', 'events') }}",
    "models/stg_events.yml": """
models:
  - name: stg_events
    columns:
      - name: n
        data_tests: [not_null]
""",
    "models/stg_users.sql": "select user_id, _load_id from {{ source('shop', 'users') }}",
    "models/stg_users.yml": """
models:
  - name: stg_users
    columns:
      - name: user_id
        data_tests: [not_null]
""",
    "models/event_totals.sql": (
        "{{ config(materialized='table') }}\nselect sum(n) as total from {{ ref('stg_events') }}"
    ),
    "models/user_count.sql": (
        "{{ config(materialized='table') }}\nselect count(*) as users from {{ ref('stg_users') }}"
    ),
    "models/clocked.sql": (
        "{{ config(materialized='table') }}\n"
        "select count(*) as users, current_date as built_on from {{ ref('stg_users') }}"
    ),
}


@pytest.fixture
def shop(make_project, tmp_path: Path):
    export = tmp_path / "export"
    export.mkdir()
    (export / "events.csv").write_text("event_id,n\ne1,1\ne2,2\n")
    (export / "users.csv").write_text("user_id\nu1\n")
    return make_project(FILES), export


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files of the tests whose query runs (alone or counted in a fused query)."""
    paths: list[str] = []
    real = data_tests.run_test

    def spy(cur, sql, config, path=None, failures=None):  # type: ignore[no-untyped-def]
        paths.append(str(path))
        return real(cur, sql, config, path, failures)

    monkeypatch.setattr(data_tests, "run_test", spy)
    return paths


def actions(result) -> dict[str, str]:
    return {r.name: r.message for r in result.results if r.resource_type == "model"}


def test_a_table_whose_raw_tables_did_not_change_is_kept(shop, load, query) -> None:
    root, export = shop
    assert load(root, raw_dir=export).build().exit_code == 0
    again = load(root, raw_dir=export).build()
    assert again.exit_code == 0
    assert actions(again)["event_totals"] == "up to date"
    assert actions(again)["user_count"] == "up to date"
    # a view created from the same definition is not created again
    assert actions(again)["stg_events"] == "up to date"
    # new events: the table over them is rebuilt, the one over users is kept
    (export / "events.part-2.csv").write_text("event_id,n\ne3,30\n")
    third = load(root, raw_dir=export).build()
    assert third.exit_code == 0
    assert actions(third)["event_totals"] == "created table"
    assert actions(third)["user_count"] == "up to date"
    assert query(root, "select total from main.event_totals") == [(33,)]


def test_a_snapshot_rewritten_with_the_same_rows_keeps_the_table(shop, load) -> None:
    root, export = shop
    assert load(root, raw_dir=export).build().exit_code == 0
    # new bytes, same rows: compared, nothing inserted, updated or deleted
    (export / "users.csv").write_text("user_id\r\nu1\r\n")
    again = load(root, raw_dir=export).build()
    assert again.exit_code == 0
    assert actions(again)["user_count"] == "up to date"


def test_a_changed_definition_or_a_full_refresh_rebuilds(shop, load, make_project) -> None:
    root, export = shop
    assert load(root, raw_dir=export).build().exit_code == 0
    make_project(
        {"models/stg_events.sql": FILES["models/stg_events.sql"].replace("n,", "n * 2 as n,")},
        root=root,
    )
    changed = load(root, raw_dir=export).build()
    assert actions(changed)["event_totals"] == "created table"
    assert actions(changed)["user_count"] == "up to date"
    # the view whose SQL changed is created again; the other one is kept
    assert actions(changed)["stg_events"] == "created view"
    assert actions(changed)["stg_users"] == "up to date"
    full = load(root, raw_dir=export).build(full_refresh=True)
    assert actions(full)["user_count"] == "created table"
    assert actions(full)["stg_users"] == "created view"


def test_a_kept_view_reads_what_its_inputs_hold_now(shop, load, make_project, query) -> None:
    root, export = shop
    files = {
        "models/event_rows.sql": "{{ config(materialized='table') }}\n"
        "select event_id, n from {{ ref('stg_events') }}",
        "models/events_seen.sql": "select * from {{ ref('event_rows') }}",
    }
    make_project(files, root=root)
    assert load(root, raw_dir=export).build().exit_code == 0
    # the table under the view gains a column and a row; the view's own SQL
    # is the same, so it is kept, and reads the new column and row
    make_project(
        {
            "models/event_rows.sql": files["models/event_rows.sql"].replace(
                "n from", "n, n * 10 as tens from"
            )
        },
        root=root,
    )
    (export / "events.part-2.csv").write_text("event_id,n\ne3,3\n")
    again = load(root, raw_dir=export).build()
    assert again.exit_code == 0
    assert actions(again)["event_rows"] == "created table"
    assert actions(again)["events_seen"] == "up to date"
    assert query(root, "select event_id, n, tens from main.events_seen order by 1") == [
        ("e1", 1, 10),
        ("e2", 2, 20),
        ("e3", 3, 30),
    ]


def test_a_view_dropped_or_replaced_outside_the_build_is_created_again(shop, load, query) -> None:
    root, export = shop
    assert load(root, raw_dir=export).build().exit_code == 0
    project = load(root, raw_dir=export)
    with project.writing("test") as adapter:
        adapter.execute("drop view main.stg_events")
        adapter.execute("drop view main.stg_users")
        adapter.execute("create table main.stg_users as select 'someone else' as user_id")
    again = load(root, raw_dir=export).build()
    assert again.exit_code == 0
    assert actions(again)["stg_events"] == "created view"
    assert actions(again)["stg_users"] == "created view"
    assert query(root, "select user_id from main.stg_users") == [("u1",)]


def test_a_copied_warehouse_keeps_its_tables_and_one_that_reads_its_path_does_not(
    shop, load, make_project
) -> None:
    root, export = shop
    make_project(
        {
            "models/increments.sql": "{{ config(materialized='incremental', "
            "unique_key='event_id') }}\nselect event_id, n, _load_id from {{ ref('stg_events') }}"
            "\n{% if is_incremental() %}where _load_id > {{ last_seen_load_id() }}{% endif %}"
        },
        root=root,
    )
    assert load(root, raw_dir=export).build().exit_code == 0
    copy = root / "copy.duckdb"
    shutil.copyfile(root / "w.duckdb", copy)
    # the same warehouse at another path, built with one thread: nothing to redo
    moved = load(root, raw_dir=export, warehouse=copy).build(threads=1)
    assert moved.exit_code == 0
    assert actions(moved)["increments"] == "up to date"
    assert actions(moved)["event_totals"] == "up to date"
    # a model that renders the warehouse's path makes the path part of every
    # definition: a copy elsewhere then rebuilds
    make_project({"models/where.sql": "select '{{ target.path }}' as built_in"}, root=root)
    assert load(root, raw_dir=export).build().exit_code == 0
    shutil.copyfile(root / "w.duckdb", copy)
    moved = load(root, raw_dir=export, warehouse=copy).build()
    assert moved.exit_code == 0
    assert actions(moved)["increments"] == "created table"


def test_a_table_that_reads_the_clock_is_always_rebuilt(shop, load) -> None:
    root, export = shop
    assert load(root, raw_dir=export).build().exit_code == 0
    again = load(root, raw_dir=export).build()
    assert actions(again)["clocked"] == "created table"


def test_a_table_over_a_raw_table_the_loader_does_not_fill_is_rebuilt(
    shop, load, make_project, query
) -> None:
    root, export = shop
    make_project(
        {
            "models/note_count.sql": "{{ config(materialized='table') }}\n"
            "select count(*) as notes from {{ source('outside', 'notes') }}"
        },
        root=root,
    )
    project = load(root, raw_dir=export)
    with project.writing("setup") as con:
        con.execute("create schema if not exists other")
        con.execute("create table other.notes (note varchar)")
    assert project.build().exit_code == 0
    with load(root, raw_dir=export).writing("setup") as con:
        con.execute("insert into other.notes values ('a')")
    again = load(root, raw_dir=export).build()
    assert actions(again)["note_count"] == "created table"
    assert query(root, "select notes from main.note_count") == [(1,)]


def test_a_table_dropped_behind_the_runner_is_rebuilt(shop, load, query) -> None:
    root, export = shop
    assert load(root, raw_dir=export).build().exit_code == 0
    with load(root, raw_dir=export).writing("setup") as con:
        con.execute("drop table main.user_count")
    again = load(root, raw_dir=export).build()
    assert actions(again)["user_count"] == "created table"
    assert query(root, "select users from main.user_count") == [(1,)]


def test_a_new_rows_test_with_no_new_rows_passes_without_running(shop, load, ran) -> None:
    root, export = shop
    assert load(root, raw_dir=export).build().exit_code == 0
    assert load(root, raw_dir=export).build().exit_code == 0  # the tests pass on new rows
    ran.clear()
    (export / "events.part-2.csv").write_text("event_id,n\ne3,\n")
    result = load(root, raw_dir=export).build()
    # the new event breaks not_null: that test runs; the users' one has nothing new
    assert result.statuses()["not_null_stg_events_n"] == "fail"
    assert result.statuses()["not_null_stg_users_user_id"] == "pass"
    assert any("stg_events" in p for p in ran)
    assert not any("stg_users" in p for p in ran)


TEST_FILES = {
    "models/user_count.yml": """
models:
  - name: user_count
    data_tests:
      - expression_is_true:
          arguments: {expression: "users >= 0"}
""",
    "tests/data/assert_users_exist.sql": "select * from {{ ref('user_count') }} where users = 0",
    "tests/data/assert_not_ahead.sql": (
        "select * from {{ ref('stg_users') }} where now() < timestamp '2000-01-01'"
    ),
    "tests/data/assert_few_events.sql": (
        "{{ config(warn_if='> 5', error_if='> 5') }}\nselect * from {{ ref('stg_events') }}"
    ),
}


def test_a_test_whose_inputs_did_not_change_since_a_clean_pass_is_not_run(
    shop, load, make_project, ran
) -> None:
    root, export = shop
    make_project(TEST_FILES, root=root)
    assert load(root, raw_dir=export).build().exit_code == 0
    ran.clear()
    again = load(root, raw_dir=export).build()
    assert again.exit_code == 0
    assert again.statuses()["assert_users_exist"] == "pass"
    assert not any("assert_users_exist" in p for p in ran)
    assert not any("expression_is_true_user_count" in p for p in ran)
    # a test that reads the clock always runs; one that passed with failing
    # rows (under its threshold) runs again, to report them
    assert any("assert_not_ahead" in p for p in ran)
    assert any("assert_few_events" in p for p in ran)
    assert again.by_name()["assert_few_events"].failures == 2
    # a new user: the tests over users run again
    ran.clear()
    (export / "users.csv").write_text("user_id\nu1\nu2\n")
    assert load(root, raw_dir=export).build().exit_code == 0
    assert any("assert_users_exist" in p for p in ran)
