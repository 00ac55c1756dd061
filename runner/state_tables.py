"""The warehouse's own state: the `_kpi` schema, its tables and their SQL.

This module alone names the state tables; everything else asks it.

| table | one row per | written by |
|---|---|---|
| `_kpi.node_state` | relation built, test passed | the build (`record_build`, `record_passes`) |
| `_kpi.table_changes` | raw table and load | the loader (`record_table_change`) |
| `_kpi.load_state` | raw file loaded | the loader (`record_loaded_file`) |
| `_kpi.seed_state` | seed loaded | the seed runner (`record_seed`) |

What the rows mean (what a node has seen, when an incremental model rebuilds
in full) is `build_state.py`'s and `raw_files.py`'s business; this module
creates the tables (through the engine adapter), reads them and writes them.
The SQL keeps to what DuckDB and Spark SQL share (`?` parameters, `case`
rather than `filter`) except in the two writes on every build's path:
`record_build` (`delete ... returning`, one statement per node) and
`record_passes` (lists bound to `unnest(?)`, one statement for all rows).

    state_tables.ensure(adapter, state_tables.NODE_STATE)
    state_tables.current_load_id(adapter)   # 0 before the first load
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from runner.nodes import Relation, quote_literal

if TYPE_CHECKING:
    from runner.engines.base import EngineAdapter

META_SCHEMA = "_kpi"

NODE_STATE = Relation(META_SCHEMA, "node_state")
TABLE_CHANGES = Relation(META_SCHEMA, "table_changes")
LOAD_STATE = Relation(META_SCHEMA, "load_state")
SEED_STATE = Relation(META_SCHEMA, "seed_state")

COLUMNS: Mapping[Relation, Mapping[str, str]] = {
    NODE_STATE: {
        "unique_id": "varchar",
        "load_id": "bigint",
        "logic": "varchar",
        "full_load_id": "bigint",
        "built_at": "timestamp",
        "full_built_at": "timestamp",
    },
    TABLE_CHANGES: {
        "load_id": "bigint",
        "relation": "varchar",
        "action": "varchar",
        "inserted_rows": "bigint",
        "updated_rows": "bigint",
        "deleted_rows": "bigint",
        "loaded_at": "timestamp",
    },
    LOAD_STATE: {
        "table_name": "varchar",
        "file_name": "varchar",
        "size": "bigint",
        "mtime_ns": "bigint",
        "sha256": "varchar",
        "ctime_ns": "bigint",
        "inode": "bigint",
        "device": "bigint",
        "rows": "bigint",
        "rejected": "bigint",
        "load_id": "bigint",
        "action": "varchar",
        "loaded_at": "timestamp",
    },
    SEED_STATE: {"relation": "varchar", "checksum": "varchar", "loaded_at": "timestamp"},
}
# columns added after the first release: added to older warehouses' tables
ADDED_COLUMNS: Mapping[Relation, tuple[str, ...]] = {
    NODE_STATE: ("full_built_at",),
    LOAD_STATE: ("ctime_ns", "inode", "device"),
}
NOW = "cast(current_timestamp as timestamp)"  # UTC: the session's time zone


def ensure(adapter: EngineAdapter, *tables: Relation) -> None:
    """Create the `_kpi` schema and `tables` (all four when none are named)
    unless they exist."""
    adapter.create_schema(META_SCHEMA)
    for table in tables or tuple(COLUMNS):
        adapter.create_table(table, COLUMNS[table])
        for column in ADDED_COLUMNS.get(table, ()):
            adapter.add_column(table, column, COLUMNS[table][column])


def _exists(adapter: EngineAdapter, table: Relation) -> bool:
    return adapter.relation_kind(table) is not None


# -- node_state ---------------------------------------------------------------------


@dataclass(frozen=True)
class NodeState:
    """What `_kpi.node_state` remembers of one node."""

    load_id: int  # the newest raw load whose rows it holds (a test: checked)
    logic: str  # a view: its own definition; else what its rows were built from
    full_load_id: int  # the load it was last rebuilt in full at
    built_at: datetime | None  # when it was last built (a test: last passed)
    full_built_at: datetime | None  # when it was last rebuilt in full


def read_node_states(adapter: EngineAdapter) -> dict[str, NodeState]:
    """Every node's remembered state (empty before the first build)."""
    columns = {c.lower() for c, _ in adapter.columns(NODE_STATE)}
    if not columns:
        return {}
    full_built_at = "full_built_at" if "full_built_at" in columns else "null"
    rows = adapter.fetchall(
        f"select unique_id, load_id, logic, full_load_id, built_at, {full_built_at} "
        f"from {NODE_STATE}"
    )
    return {
        uid: NodeState(int(load or 0), str(logic or ""), int(full or 0), built, full_built)
        for uid, load, logic, full, built, full_built in rows
    }


def last_seen_load_id_sql(unique_id: str) -> str:
    """SQL for the newest raw load `unique_id` had seen when it was last built,
    or the load a test last passed on (0 when never): a subquery, so the
    compiled SQL stays the same from run to run."""
    return (
        f"(select coalesce(max(load_id), 0) from {NODE_STATE} "
        f"where unique_id = {quote_literal(unique_id)})"
    )


_LAST_SEEN = re.compile(
    re.escape(f"(select coalesce(max(load_id), 0) from {NODE_STATE} where unique_id = ")
    + r"'((?:[^']|'')*)'\)"
)


def bind_last_seen(sql: str, states: Mapping[str, NodeState]) -> str:
    """`sql` with each `last_seen_load_id_sql(...)` replaced by its value in
    `states` (as read when the build was planned: a node's own row changes
    only once it has run). DuckDB prunes a table's row groups by
    `_load_id > 7`, not by `_load_id > (select ...)`, which reads them all."""

    def value(match: re.Match[str]) -> str:
        remembered = states.get(match.group(1).replace("''", "'"))
        return str(remembered.load_id if remembered else 0)

    return _LAST_SEEN.sub(value, sql)


def record_build(
    adapter: EngineAdapter, unique_id: str, load_id: int, logic: str, full: bool
) -> None:
    """Remember, inside the build's transaction, the load a node has now seen,
    and (`full`) that it was rebuilt in full now."""
    prior = adapter.fetchone(
        f"delete from {NODE_STATE} where unique_id = ? returning full_load_id, full_built_at",
        [unique_id],
    )
    full_load, full_at = _last_full_rebuild(load_id, full, prior)
    insert = f"insert into {NODE_STATE} values (?, ?, ?, ?, {NOW}, "
    if full_at is None:
        adapter.execute(insert + f"{NOW})", [unique_id, load_id, logic, full_load])
    else:
        adapter.execute(insert + "?)", [unique_id, load_id, logic, full_load, full_at])


def record_kept(adapter: EngineAdapter, kept: Sequence[tuple[str, int, str, bool]]) -> None:
    """`record_build` for the relations a build kept as they were (their rows
    already committed), each (unique_id, load, logic, full), in one
    transaction of two statements after the run."""
    if not kept:
        return
    ids = [uid for uid, _, _, _ in kept]
    with adapter.transaction():
        prior = {
            str(uid): (full_load, full_at)
            for uid, full_load, full_at in adapter.fetchall(
                f"delete from {NODE_STATE} where unique_id in (select unnest(?)) "
                "returning unique_id, full_load_id, full_built_at",
                [ids],
            )
        }
        rebuilds = [_last_full_rebuild(load, full, prior.get(uid)) for uid, load, _, full in kept]
        adapter.execute(
            f"insert into {NODE_STATE} select uid, load_id, logic, full_load_id, {NOW}, "
            f"coalesce(full_built_at, {NOW}) from (select unnest(?) as uid, "
            "unnest(?) as load_id, unnest(?) as logic, unnest(?) as full_load_id, "
            "cast(unnest(?) as timestamp) as full_built_at)",
            [
                ids,
                [load for _, load, _, _ in kept],
                [logic for _, _, logic, _ in kept],
                [full_load for full_load, _ in rebuilds],
                [full_at for _, full_at in rebuilds],
            ],
        )


def _last_full_rebuild(
    load_id: int, full: bool, prior: tuple[Any, ...] | None
) -> tuple[int, datetime | None]:
    """The (load, time) of a node's last full rebuild once it is recorded as
    built at `load_id`: the one before (`prior`: the row's full_load_id and
    full_built_at) unless this build is full or none is known; a time of
    None stands for now."""
    if full or prior is None or prior[1] is None:
        return load_id, None
    return int(prior[0]), prior[1]


def record_passes(
    adapter: EngineAdapter, passed: Mapping[str, str], seen: Mapping[str, int]
) -> None:
    """Remember the tests that passed, with their lineage digest and the load
    their rows were checked up to, in one transaction."""
    if not passed:
        return
    ids = sorted(passed)
    with adapter.transaction():
        adapter.execute(f"delete from {NODE_STATE} where unique_id in (select unnest(?))", [ids])
        # one statement for all rows: executemany would run one insert per row
        adapter.execute(
            f"insert into {NODE_STATE} select unnest(?), unnest(?), unnest(?), 0, {NOW}, null",
            [ids, [seen[uid] for uid in ids], [passed[uid] for uid in ids]],
        )


# -- table_changes --------------------------------------------------------------------


def current_load_id(adapter: EngineAdapter) -> int:
    """The newest raw load in the warehouse (0 when nothing was loaded)."""
    if not _exists(adapter, TABLE_CHANGES):
        return 0
    row = adapter.fetchone(f"select coalesce(max(load_id), 0) from {TABLE_CHANGES}")
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class RawChanges:
    """Per raw relation (`schema.table`, lowercased): the newest load that
    deleted rows from it, and the newest that updated rows."""

    last_delete: Mapping[str, int]
    last_update: Mapping[str, int]


def raw_changes(adapter: EngineAdapter) -> RawChanges:
    if not _exists(adapter, TABLE_CHANGES):
        return RawChanges({}, {})
    rows = adapter.fetchall(
        "select relation, max(case when deleted_rows > 0 then load_id end), "
        f"max(case when updated_rows > 0 then load_id end) from {TABLE_CHANGES} group by 1"
    )
    return RawChanges(
        {r.lower(): int(d) for r, d, _ in rows if d is not None},
        {r.lower(): int(u) for r, _, u in rows if u is not None},
    )


def newest_load(adapter: EngineAdapter) -> tuple[int, frozenset[str]]:
    """The newest load (0 when nothing was loaded) and the raw relations it
    recorded a change for (`schema.table`, as the loader wrote them)."""
    if not _exists(adapter, TABLE_CHANGES):
        return 0, frozenset()
    rows = adapter.fetchall(
        f"select load_id, relation from {TABLE_CHANGES} "
        f"where load_id = (select max(load_id) from {TABLE_CHANGES})"
    )
    if not rows:
        return 0, frozenset()
    return int(rows[0][0]), frozenset(str(relation) for _, relation in rows)


def last_changes(adapter: EngineAdapter) -> dict[str, int]:
    """Per raw relation the loader fills (`schema.table`, lowercased), the
    newest load that inserted, updated or deleted a row of it (0: none did)."""
    if not _exists(adapter, TABLE_CHANGES):
        return {}
    rows = adapter.fetchall(
        "select relation, coalesce(max(case when inserted_rows > 0 or updated_rows > 0 "
        f"or deleted_rows > 0 then load_id end), 0) from {TABLE_CHANGES} group by 1"
    )
    return {str(relation).lower(): int(load_id) for relation, load_id in rows}


def record_table_change(
    adapter: EngineAdapter,
    load_id: int,
    relation: str,
    action: str,
    inserted: int,
    updated: int,
    deleted: int,
) -> None:
    adapter.execute(
        f"insert into {TABLE_CHANGES} values (?, ?, ?, ?, ?, ?, {NOW})",
        [load_id, relation, action, inserted, updated, deleted],
    )


# -- load_state ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedFile:
    """What `_kpi.load_state` remembers of one loaded file. `stat` is the
    file's (size, mtime_ns, ctime_ns, inode, device) when it was settled as
    loaded (see `raw_files.ExportFile.settled_stat`), else None."""

    size: int
    mtime_ns: int
    sha256: str
    stat: tuple[int, int, int, int, int] | None


def loaded_files(adapter: EngineAdapter) -> dict[str, dict[str, RecordedFile]]:
    """`{table: {file name: RecordedFile}}` of what was loaded."""
    columns = {c.lower() for c, _ in adapter.columns(LOAD_STATE)}
    if not columns:
        return {}
    stat = "ctime_ns, inode, device" if "ctime_ns" in columns else "null, null, null"
    rows = adapter.fetchall(
        f"select table_name, file_name, size, mtime_ns, sha256, {stat} from {LOAD_STATE}"
    )
    state: dict[str, dict[str, RecordedFile]] = {}
    for table, file, size, mtime_ns, sha, ctime_ns, inode, device in rows:
        known = None if ctime_ns is None else (size, mtime_ns, ctime_ns, inode, device)
        state.setdefault(table, {})[file] = RecordedFile(size, mtime_ns, sha, known)
    return state


def record_file_stat(
    adapter: EngineAdapter,
    table: str,
    file_name: str,
    sha256: str,
    stat: tuple[int, int, int, int, int],
) -> None:
    """Remember the settled stat (size, mtime_ns, ctime_ns, inode, device) of
    a loaded file whose bytes were found to be the ones recorded."""
    _, mtime_ns, ctime_ns, inode, device = stat
    adapter.execute(
        f"update {LOAD_STATE} set mtime_ns = ?, ctime_ns = ?, inode = ?, device = ? "
        "where table_name = ? and file_name = ? and sha256 = ?",
        [mtime_ns, ctime_ns, inode, device, table, file_name, sha256],
    )


def next_load_id(adapter: EngineAdapter) -> int:
    row = adapter.fetchone(f"select coalesce(max(load_id), 0) + 1 from {LOAD_STATE}")
    return int(row[0]) if row else 1


def forget_loaded_files(adapter: EngineAdapter, table: str) -> None:
    adapter.execute(f"delete from {LOAD_STATE} where table_name = ?", [table])


@dataclass(frozen=True)
class LoadedFile:
    """One row of `_kpi.load_state`."""

    table: str
    file_name: str
    size: int
    mtime_ns: int
    sha256: str
    rows: int
    rejected: int
    load_id: int
    action: str
    ctime_ns: int | None = None  # the settled stat, else None (the bytes decide next time)
    inode: int | None = None
    device: int | None = None


def record_loaded_files(adapter: EngineAdapter, files: Sequence[LoadedFile]) -> None:
    for f in files:
        adapter.execute(
            f"insert into {LOAD_STATE} (table_name, file_name, size, mtime_ns, sha256, ctime_ns, "
            "inode, device, rows, rejected, load_id, action, loaded_at) "
            f"values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {NOW})",
            [
                f.table,
                f.file_name,
                f.size,
                f.mtime_ns,
                f.sha256,
                f.ctime_ns,
                f.inode,
                f.device,
                f.rows,
                f.rejected,
                f.load_id,
                f.action,
            ],
        )


# -- seed_state -----------------------------------------------------------------------------


def seed_checksum(adapter: EngineAdapter, relation: Relation) -> str | None:
    """The checksum the seed's table was last loaded with (None when unknown)."""
    row = adapter.fetchone(
        f"select checksum from {SEED_STATE} where relation = ?", [relation.display]
    )
    return str(row[0]) if row else None


def record_seed(adapter: EngineAdapter, relation: Relation, checksum: str) -> None:
    adapter.execute(f"delete from {SEED_STATE} where relation = ?", [relation.display])
    adapter.execute(f"insert into {SEED_STATE} values (?, ?, {NOW})", [relation.display, checksum])


def is_state_schema(schema: str) -> bool:
    return schema.lower() == META_SCHEMA
