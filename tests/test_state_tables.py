"""runner/state_tables.py: the `_kpi` tables, created, read and written
through the engine adapter (in-memory DuckDB)."""

from __future__ import annotations

import dataclasses

from runner import state_tables as st
from runner.engines.base import RelationKind
from runner.engines.duckdb import DuckDBAdapter
from runner.nodes import Relation


def test_ensure_creates_the_schema_and_every_table_once(engine: DuckDBAdapter) -> None:
    st.ensure(engine)
    st.ensure(engine)
    assert engine.relations([st.META_SCHEMA]) == {
        ("_kpi", "node_state"): RelationKind.TABLE,
        ("_kpi", "table_changes"): RelationKind.TABLE,
        ("_kpi", "load_state"): RelationKind.TABLE,
        ("_kpi", "seed_state"): RelationKind.TABLE,
    }
    for table, columns in st.COLUMNS.items():
        assert [c for c, _ in engine.columns(table)] == list(columns)


def test_ensure_adds_the_columns_an_older_node_state_lacks(engine: DuckDBAdapter) -> None:
    engine.create_schema("_kpi")
    engine.execute(
        "create table _kpi.node_state (unique_id varchar, load_id bigint, logic varchar, "
        "full_load_id bigint, built_at timestamp)"
    )
    engine.execute("insert into _kpi.node_state values ('model.a', 3, 'x', 2, now())")
    assert st.read_node_states(engine)["model.a"].full_built_at is None  # readable before
    st.ensure(engine, st.NODE_STATE)
    assert [c for c, _ in engine.columns(st.NODE_STATE)][-1] == "full_built_at"


def test_nothing_is_remembered_before_the_first_build(engine: DuckDBAdapter) -> None:
    assert st.read_node_states(engine) == {}
    assert st.current_load_id(engine) == 0
    assert st.raw_changes(engine) == st.RawChanges({}, {})
    assert st.loaded_files(engine) == {}


def test_record_build_keeps_the_last_full_rebuild_unless_this_one_is(
    engine: DuckDBAdapter,
) -> None:
    st.ensure(engine, st.NODE_STATE)
    st.record_build(engine, "model.a", 1, "v1", full=True)
    first = st.read_node_states(engine)["model.a"]
    assert (first.load_id, first.logic, first.full_load_id) == (1, "v1", 1)
    st.record_build(engine, "model.a", 5, "v1", full=False)
    second = st.read_node_states(engine)["model.a"]
    assert (second.load_id, second.full_load_id, second.full_built_at) == (
        5,
        1,
        first.full_built_at,
    )
    st.record_build(engine, "model.a", 7, "v2", full=True)
    assert st.read_node_states(engine)["model.a"].full_load_id == 7
    assert engine.fetchone("select count(*) from _kpi.node_state") == (1,)


def test_record_kept_writes_every_kept_node_at_once(engine: DuckDBAdapter) -> None:
    """The batch that records the relations a build kept follows the rule of
    `record_build` row by row: the last full rebuild is kept unless this one
    is full, or none is known."""
    st.ensure(engine, st.NODE_STATE)
    st.record_build(engine, "model.full", 1, "v1", full=True)
    st.record_build(engine, "model.inc", 1, "v1", full=True)
    st.record_build(engine, "model.inc", 2, "v1", full=False)
    # a row written before full_built_at existed
    engine.execute("insert into _kpi.node_state values ('model.old', 1, 'v0', 1, null, null)")
    before = st.read_node_states(engine)
    st.record_kept(
        engine,
        [
            ("model.full", 4, "v1", True),
            ("model.inc", 4, "v2", False),
            ("model.old", 4, "v0", False),
            ("model.new", 4, "v3", False),
        ],
    )
    after = st.read_node_states(engine)
    assert {u: (s.load_id, s.logic, s.full_load_id) for u, s in after.items()} == {
        "model.full": (4, "v1", 4),  # rebuilt in full now
        "model.inc": (4, "v2", 1),  # its last full rebuild, at load 1, is kept
        "model.old": (4, "v0", 4),  # no full rebuild known: this one counts
        "model.new": (4, "v3", 4),
    }
    assert after["model.inc"].full_built_at == before["model.inc"].full_built_at
    assert after["model.full"].full_built_at > before["model.full"].full_built_at
    assert all(s.built_at is not None and s.full_built_at is not None for s in after.values())
    assert engine.fetchone("select count(*) from _kpi.node_state") == (4,)
    st.record_kept(engine, [])  # nothing to write: no transaction, no error


def test_record_passes_replaces_tests_in_one_statement(engine: DuckDBAdapter) -> None:
    st.ensure(engine, st.NODE_STATE)
    st.record_passes(engine, {"test.a": "d1", "test.b": "d2"}, {"test.a": 3, "test.b": 4})
    st.record_passes(engine, {"test.a": "d3"}, {"test.a": 6})
    states = st.read_node_states(engine)
    assert {u: (s.load_id, s.logic) for u, s in states.items()} == {
        "test.a": (6, "d3"),
        "test.b": (4, "d2"),
    }
    assert engine.fetchone(f"select {st.last_seen_load_id_sql('test.a')}") == (6,)
    quoted = st.last_seen_load_id_sql("it's")
    assert engine.fetchone(f"select {quoted}") == (0,)


def test_table_changes_give_the_newest_load_and_the_last_losses(engine: DuckDBAdapter) -> None:
    st.ensure(engine, st.TABLE_CHANGES)
    st.record_table_change(engine, 1, "raw.Deals", "reload", 10, 0, 0)
    st.record_table_change(engine, 2, "raw.Deals", "reload", 1, 2, 3)
    st.record_table_change(engine, 3, "raw.users", "append", 1, 0, 0)
    assert st.current_load_id(engine) == 3
    assert st.raw_changes(engine) == st.RawChanges({"raw.deals": 2}, {"raw.deals": 2})


def test_load_state_remembers_files_per_table(engine: DuckDBAdapter) -> None:
    st.ensure(engine, st.LOAD_STATE)
    assert st.next_load_id(engine) == 1
    file = st.LoadedFile("deals", "deals.csv", 10, 99, "abc", 5, 0, 1, "reload")
    settled = dataclasses.replace(file, table="users", ctime_ns=98, inode=7, device=3)
    st.record_loaded_files(engine, [file, settled])
    assert st.loaded_files(engine) == {
        "deals": {"deals.csv": st.RecordedFile(10, 99, "abc", None)},
        "users": {"deals.csv": st.RecordedFile(10, 99, "abc", (10, 99, 98, 7, 3))},
    }
    assert st.next_load_id(engine) == 2
    st.forget_loaded_files(engine, "deals")
    assert set(st.loaded_files(engine)) == {"users"}


def test_seed_state_remembers_the_checksum(engine: DuckDBAdapter) -> None:
    st.ensure(engine, st.SEED_STATE)
    seed = Relation("main", "regions")
    assert st.seed_checksum(engine, seed) is None
    st.record_seed(engine, seed, "c1")
    st.record_seed(engine, seed, "c2")
    assert st.seed_checksum(engine, seed) == "c2"


def test_an_older_load_state_is_read_without_stats_and_gains_their_columns(
    engine: DuckDBAdapter,
) -> None:
    engine.create_schema("_kpi")
    engine.execute(
        "create table _kpi.load_state (table_name varchar, file_name varchar, size bigint, "
        "mtime_ns bigint, sha256 varchar, rows bigint, rejected bigint, load_id bigint, "
        "action varchar, loaded_at timestamp)"
    )
    engine.execute(
        "insert into _kpi.load_state values ('t', 't.csv', 5, 9, 'ab', 1, 0, 1, 'reload', now())"
    )
    # readable before: no stat recorded, so the bytes will decide
    assert st.loaded_files(engine) == {"t": {"t.csv": st.RecordedFile(5, 9, "ab", None)}}
    st.ensure(engine, st.LOAD_STATE)
    assert [c for c, _ in engine.columns(st.LOAD_STATE)][-3:] == ["ctime_ns", "inode", "device"]
    st.record_file_stat(engine, "t", "t.csv", "ab", (5, 10, 11, 12, 13))
    assert st.loaded_files(engine)["t"]["t.csv"] == st.RecordedFile(
        5, 10, "ab", (5, 10, 11, 12, 13)
    )
    # a stat is recorded only with the bytes it was found with
    st.record_file_stat(engine, "t", "t.csv", "other", (5, 20, 21, 22, 23))
    assert st.loaded_files(engine)["t"]["t.csv"].stat == (5, 10, 11, 12, 13)
