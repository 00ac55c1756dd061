"""Incremental models over raw loads: `last_seen_load_id()` picks the rows that
are new since the model's last build, and a raw table that lost rows forces a
full rebuild."""

from __future__ import annotations

from pathlib import Path

import pytest

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
"""
MODEL = """
{{ config(materialized='incremental', incremental_strategy='append') }}
select event_id, n, _load_id from {{ source('shop', 'events') }}
{% if is_incremental() %}
where _load_id > {{ last_seen_load_id() }}
{% endif %}
"""


@pytest.fixture
def shop(make_project, tmp_path: Path):
    export = tmp_path / "export"
    export.mkdir()
    (export / "events.csv").write_text("event_id,n\ne1,1\ne2,2\n")
    root = make_project({"models/sources.yml": SOURCES, "models/seen.sql": MODEL})
    return root, export


def test_an_appended_part_reaches_the_model_once(shop, load, query) -> None:
    root, export = shop
    assert load(root, raw_dir=export).build().exit_code == 0
    (export / "events.part-2.csv").write_text("event_id,n\ne3,3\n")
    project = load(root, raw_dir=export)
    assert project.build().exit_code == 0
    assert query(root, "select event_id, _load_id from main.seen order by 1") == [
        ("e1", 1),
        ("e2", 1),
        ("e3", 2),
    ]
    assert query(root, "select unique_id, load_id from _kpi.node_state") == [
        (f"model.{project.settings.name}.seen", 2)
    ]
    # nothing new: the next build adds nothing
    assert load(root, raw_dir=export).build().exit_code == 0
    assert query(root, "select count(*) from main.seen") == [(3,)]


def test_a_raw_table_that_lost_rows_rebuilds_the_model_in_full(shop, load, query, output) -> None:
    root, export = shop
    assert load(root, raw_dir=export).build().exit_code == 0
    (export / "events.csv").write_text("event_id,n\ne2,20\n")
    project = load(root, raw_dir=export)
    assert project.build().exit_code == 0
    assert "Rebuilding seen in full: raw.events lost rows since its last build." in output(project)
    assert query(root, "select event_id, n from main.seen") == [("e2", 20)]


def test_a_changed_row_keeps_its_key_and_gets_the_new_load(shop, load, query) -> None:
    root, export = shop
    assert load(root, raw_dir=export).build().exit_code == 0
    (export / "events.csv").write_text("event_id,n\ne1,1\ne2,22\ne4,4\n")
    assert load(root, raw_dir=export).build().exit_code == 0
    # append strategy: the changed e2 arrives again with load 2 (delete+insert
    # on a unique_key is what replaces it)
    assert query(root, "select event_id, n, _load_id from main.seen order by 1, 3") == [
        ("e1", 1, 1),
        ("e2", 2, 1),
        ("e2", 22, 2),
        ("e4", 4, 2),
    ]


def test_a_changed_model_rebuilds_in_full(shop, load, query, output, make_project) -> None:
    root, export = shop
    assert load(root, raw_dir=export).build().exit_code == 0
    make_project(
        {"models/seen.sql": MODEL.replace("select event_id, n,", "select event_id, n * 10 as n,")},
        root=root,
    )
    project = load(root, raw_dir=export)
    assert project.build().exit_code == 0
    assert "Rebuilding seen in full: its SQL, config or inputs' definitions changed" in output(
        project
    )
    assert query(root, "select event_id, n from main.seen order by 1") == [("e1", 10), ("e2", 20)]


def test_updated_rows_of_an_append_only_source_rebuild_in_full(
    shop, load, query, output, make_project
) -> None:
    root, export = shop
    append_only = MODEL.replace(
        "incremental_strategy='append'",
        "incremental_strategy='append', append_only=['shop.events']",
    )
    make_project({"models/seen.sql": append_only}, root=root)
    assert load(root, raw_dir=export).build().exit_code == 0
    (export / "events.csv").write_text("event_id,n\ne1,1\ne2,22\n")
    project = load(root, raw_dir=export)
    assert project.build().exit_code == 0
    assert "raw.events had rows updated since its last build" in output(project)
    assert query(root, "select event_id, n from main.seen order by 1") == [("e1", 1), ("e2", 22)]


TESTED = {
    "models/stg_events.sql": "select event_id, n, _load_id from {{ source('shop', 'events') }}",
    "models/stg_events.yml": """
models:
  - name: stg_events
    columns:
      - name: n
        data_tests: [not_null, unique]
""",
}


def compiled_test(project, name_part: str) -> str:
    folder = Path(project.settings.target_path) / "compiled" / "models"
    return next(folder.glob(f"{name_part}*.sql")).read_text()


def test_tests_check_only_rows_loaded_since_they_last_passed(shop, load, make_project) -> None:
    root, export = shop
    make_project(TESTED, root=root)
    first = load(root, raw_dir=export)
    assert first.build().exit_code == 0
    assert "_load_id >" not in compiled_test(first, "not_null_stg_events_n")  # first run: all rows
    (export / "events.part-2.csv").write_text("event_id,n\ne3,3\n")
    second = load(root, raw_dir=export)
    assert second.build().exit_code == 0
    assert "_load_id >" in compiled_test(second, "not_null_stg_events_n")
    assert "_load_id >" in compiled_test(second, "unique_stg_events_n")


def test_a_new_row_that_breaks_a_test_is_caught(shop, load, make_project) -> None:
    root, export = shop
    make_project(TESTED, root=root)
    assert load(root, raw_dir=export).build().exit_code == 0
    # e4 repeats n = 1 of e1 (an old row) and e5 has no n: both must be caught
    (export / "events.part-2.csv").write_text("event_id,n\ne4,1\ne5,\n")
    result = load(root, raw_dir=export).build()
    assert result.exit_code == 1
    statuses = result.statuses()
    assert statuses["unique_stg_events_n"] == "fail"
    assert statuses["not_null_stg_events_n"] == "fail"
    assert result.by_name()["unique_stg_events_n"].failures == 1


def test_a_changed_test_lineage_runs_the_test_in_full(shop, load, make_project) -> None:
    root, export = shop
    make_project(TESTED, root=root)
    assert load(root, raw_dir=export).build().exit_code == 0
    make_project(
        {"models/stg_events.sql": TESTED["models/stg_events.sql"].replace("n,", "n * 2 as n,")},
        root=root,
    )
    project = load(root, raw_dir=export)
    assert project.build().exit_code == 0
    assert "_load_id >" not in compiled_test(project, "unique_stg_events_n")


def test_a_test_failing_on_an_incremental_run_points_to_full_refresh(shop, load) -> None:
    """A blocking test that fails after an incremental run says how to rebuild
    the model from scratch, instead of leaving it stale build after build."""
    root, export = shop
    (root / "models" / "seen.yml").write_text(
        "models:\n  - name: seen\n    columns:\n      - name: n\n"
        "        data_tests:\n          - accepted_values: {values: [1, 2, 3]}\n"
    )
    assert load(root, raw_dir=export).build().exit_code == 0
    (export / "events.part-2.csv").write_text("event_id,n\ne3,30\n")
    result = load(root, raw_dir=export).build()
    assert result.exit_code == 1
    message = result.by_name()["seen"].message
    assert "not published" in message
    assert "`kpi build --full-refresh -s seen`" in message
