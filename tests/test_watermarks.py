"""The load a model or test had seen is bound as a number when it runs, so
that DuckDB skips the row groups of older loads; the compiled SQL keeps the
subquery, the same from run to run."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from runner import materializations
from runner.state_tables import NodeState, bind_last_seen, last_seen_load_id_sql

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


def state(load_id: int) -> NodeState:
    return NodeState(load_id, "", 0, datetime(2026, 1, 1), None)


def test_every_watermark_is_replaced_by_its_remembered_load() -> None:
    quoted = "t.it's"
    first, second = last_seen_load_id_sql("m.x"), last_seen_load_id_sql(quoted)
    sql = f"select 1 where a > {first} and b > {second}"
    assert bind_last_seen(sql, {"m.x": state(7), "t.it's": state(3)}) == (
        "select 1 where a > 7 and b > 3"
    )
    # never built: 0, as the subquery's coalesce gives
    assert bind_last_seen(f"select {last_seen_load_id_sql('m.y')}", {}) == "select 0"


def test_an_incremental_run_reads_its_watermark_as_a_number(
    make_project, load, query, tmp_path: Path, monkeypatch
) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "events.csv").write_text("event_id,n\ne1,1\n")
    root = make_project({"models/sources.yml": SOURCES, "models/seen.sql": MODEL})
    assert load(root, raw_dir=export).build().exit_code == 0
    ran: list[str] = []
    real = materializations.append_rows

    def spy(cur, relation, sql):  # type: ignore[no-untyped-def]
        ran.append(sql)
        return real(cur, relation, sql)

    monkeypatch.setattr(materializations, "append_rows", spy)
    (export / "events.part-2.csv").write_text("event_id,n\ne2,2\n")
    project = load(root, raw_dir=export)
    assert project.build().exit_code == 0
    assert len(ran) == 1 and "_load_id > 1" in ran[0] and "node_state" not in ran[0]
    compiled = Path(project.settings.target_path) / "compiled" / "models" / "seen.sql"
    assert "node_state" in compiled.read_text()
    assert query(root, "select event_id, _load_id from main.seen order by 1") == [
        ("e1", 1),
        ("e2", 2),
    ]
