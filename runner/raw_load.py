"""Loading a raw export into the warehouse, validated against its contract.

The contract is the sources yml: a source whose `meta` has
`load_from_export: true` names the tables of an export folder. For each table
the columns' `data_type` (id, text, integer, number, money, bool, date,
timestamp), `meta.required`, and the table's `meta.primary_key` and
`meta.reject_when` rules say what a valid row is. A project without such a
source loads nothing.

An export folder holds `<table>.csv` or `<table>.parquet` per table, plus any
appended parts `<table>.<part>.csv|parquet` (loaded after it, in name order).
Files whose content has not changed since the last load are skipped; new
parts of a table whose other files are unchanged, and that sort after them,
are appended; anything else reloads the table. Every file is opened once and
read through that descriptor (see `raw_files`), by DuckDB (CSV with the
contract's dialect, all columns as text, then parsed; Parquet as typed
columns, held to the same rules), never row by row in Python. Header names
match the contract's after trimming spaces and ignoring case.

Reading one file and checking its rows is `raw_read`'s; this module plans
the load, compares snapshots with the loaded rows, writes the raw tables and
reports. Rows that break a rule are rejected with file, line and reason. With
`on_bad_rows="fail"` any rejection stops the load; with `"quarantine"` the
good rows load and the rejected ones are kept in `raw.rejected_rows`. Either
way the raw tables change in one transaction, only when the whole load
succeeded.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from runner import state_tables
from runner.engines.base import RelationKind
from runner.errors import LoadError, ProjectError
from runner.nodes import Relation, quote_identifier, quote_literal
from runner.raw_contract import TableContract
from runner.raw_encoding import check_encoding
from runner.raw_files import (
    ExportFile,
    TablePlan,
    close_export_files,
    find_export_files,
    plan_tables,
)
from runner.raw_read import (
    LOAD_ID_COLUMN,
    FileReader,
    Rejection,
    Source,
    error_line,
    locate_rejections,
)
from runner.warehouse import duckdb_failure

if TYPE_CHECKING:
    from runner.engines.duckdb import DuckDBAdapter

REJECTED_ROWS_TABLE = "rejected_rows"
REJECTED_ROWS = {
    "table_name": "varchar",
    "file_name": "varchar",
    "line_number": "bigint",
    "reason": "varchar",
    "raw_row": "varchar",
    "load_id": "bigint",
    "rejected_at": "timestamp",
}
SHOWN_PER_FILE = 10


@dataclass
class FileResult:
    file: ExportFile
    rows: int = 0
    rejected: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> rows left out
    rejections: list[Rejection] = field(default_factory=list)


@dataclass
class LoadReport:
    """What a load did, table by table."""

    export_dir: Path
    actions: dict[str, str] = field(default_factory=dict)
    files: list[FileResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    load_id: int | None = None
    # table -> (how: "append", "load" or "compare", inserted, updated, deleted)
    changes: dict[str, tuple[str, int, int, int]] = field(default_factory=dict)

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    def dropped(self, table: str | None = None) -> dict[str, int]:
        """Rows left out by a `drop_when` rule (deleted in the CRM), by reason."""
        out: dict[str, int] = {}
        for result in self.files:
            if table is None or result.file.table == table:
                for reason, rows in result.dropped.items():
                    out[reason] = out.get(reason, 0) + rows
        return out

    def rejection_text(self) -> str:
        lines = []
        for result in self.files:
            if not result.rejected:
                continue
            lines.append(f"  {result.file.path}: {result.rejected:,} rejected row(s)")
            for rejection in result.rejections[:SHOWN_PER_FILE]:
                where = f"{rejection.unit} {rejection.line}" if rejection.line else "?"
                lines.append(f"    {where}: {rejection.reason}")
            if result.rejected > SHOWN_PER_FILE:
                lines.append(f"    ... and {result.rejected - SHOWN_PER_FILE:,} more")
        return "\n".join(lines)


# -- the whole load -----------------------------------------------------------------------


class _Loader(FileReader):
    """The file reader of one load, with the report it fills."""

    def __init__(
        self, cur: DuckDBAdapter, report: LoadReport, load_id: int, encoding: str | None = None
    ) -> None:
        super().__init__(cur, report.warnings, load_id, encoding)
        self.report = report


def load_export(
    adapter: DuckDBAdapter,
    export_dir: Path,
    contracts: Sequence[TableContract],
    *,
    on_bad_rows: str = "fail",
    force: bool = False,
    encoding: str | None = None,
) -> LoadReport:
    """Load `export_dir` into the raw tables of `contracts`, all or nothing
    (on DuckDB, whatever the build's target: see `runner/engines/duckdb.py`);
    `encoding` is that of every CSV file (else UTF-8, or the contract's
    fallback for a file that is not)."""
    if on_bad_rows not in ("fail", "quarantine"):
        raise ProjectError(f"--on-bad-rows must be fail or quarantine, not '{on_bad_rows}'.")
    if encoding is not None:
        check_encoding(encoding)
    started = time.perf_counter()
    report = LoadReport(export_dir)
    if not contracts:
        return report
    files, problems, warnings = find_export_files(export_dir, contracts)
    report.warnings += warnings
    try:
        if problems:
            raise LoadError(
                "the export does not follow the contract; nothing was loaded:\n  "
                + "\n  ".join(problems),
                path=export_dir,
            )
        _load_files(adapter, contracts, files, report, on_bad_rows, force, encoding)
    finally:
        close_export_files(files)
    report.seconds = time.perf_counter() - started
    return report


def _load_files(
    adapter: DuckDBAdapter,
    contracts: Sequence[TableContract],
    files: dict[str, list[ExportFile]],
    report: LoadReport,
    on_bad_rows: str,
    force: bool,
    encoding: str | None = None,
) -> None:
    """Load the opened files of an export, in one transaction."""
    import duckdb

    export_dir = report.export_dir
    try:
        state_tables.ensure(
            adapter, state_tables.NODE_STATE, state_tables.TABLE_CHANGES, state_tables.LOAD_STATE
        )
        plans = plan_tables(adapter, contracts, files, force)
    except duckdb.Error as exc:
        raise duckdb_failure(adapter.connection, exc) or LoadError(
            f"loading failed, nothing was loaded: {error_line(exc)}", path=export_dir
        ) from exc
    for plan in plans:
        report.actions[plan.contract.name] = plan.action
    for file in (f for p in plans if p.action != "reload" for f in p.restat):
        # its bytes were read and found unchanged: next time its stat will do
        if file.settled_stat is not None:
            state_tables.record_file_stat(
                adapter, file.table, file.name, file.sha256, file.settled_stat
            )
    if all(p.action == "skip" for p in plans):
        return
    cur = adapter.cursor()
    try:
        # a descriptor number may name another file in the next load
        with contextlib.suppress(duckdb.Error):
            cur.execute("set enable_external_file_cache = false")
        with cur.transaction():
            load_id = state_tables.next_load_id(cur)
            report.load_id = load_id
            loader = _Loader(cur, report, load_id, encoding)
            schemas = {p.contract.relation.schema for p in plans}
            for schema in sorted(schemas):
                cur.create_schema(schema)
            cur.create_table(Relation(sorted(schemas)[0], REJECTED_ROWS_TABLE), REJECTED_ROWS)
            try:
                for plan in plans:
                    if plan.action != "skip":
                        _load_table(loader, plan, on_bad_rows)
            finally:
                loader.close()
            if report.rejected and on_bad_rows == "fail":
                also = "".join(f"\n  Also: {w}" for w in report.warnings)
                raise LoadError(  # rolls the transaction back
                    f"{report.rejected:,} row(s) of the export break the contract; nothing was "
                    "loaded, and the raw tables and marts are as they were:\n"
                    + report.rejection_text()
                    + also,
                    path=export_dir,
                    hint="\nFix the rows, or load with --on-bad-rows quarantine to load the "
                    "other rows and keep these in raw.rejected_rows.",
                )
    except duckdb.Error as exc:
        raise duckdb_failure(cur.connection, exc) or LoadError(
            f"loading failed, nothing was loaded: {error_line(exc)}", path=export_dir
        ) from exc
    finally:
        cur.close()


def _load_table(loader: _Loader, plan: TablePlan, on_bad_rows: str) -> None:
    """Load the new files of one table.

    The fast path reads and checks each file in one scan into a temp table
    (types, required values, row rules, drop rules; the reader's own refusals
    beside it), counts and checks repeated keys there and, when nothing is
    wrong, which is the common case, writes the table from it. A table the
    load creates (a first load) is that table itself: its checked rows are
    kept as they were written. Only an export with rejected rows takes the
    staged path, which keeps file order to report lines and keep first rows.
    """
    cur = loader.cur
    contract = plan.contract
    schema_rejects = Relation(contract.relation.schema, REJECTED_ROWS_TABLE)
    if plan.action == "reload":
        cur.execute(f"delete from {schema_rejects} where table_name = ?", [contract.name])
    if not plan.files:
        # an optional table left out of the export: an empty table of its columns
        empty = ", ".join(
            f"cast(null as {c.sql_type}) as {quote_identifier(c.name)}" for c in contract.columns
        )
        _write_rows(loader, plan, f"select {empty} where false")
        _record_state(loader, plan)
        return
    opened = [(file, loader.open_source(file, contract)) for file in plan.new_files]
    # a table this load creates is checked in place (no temp table to copy from)
    into = None
    if plan.action != "append" and _row_count(cur, contract.relation) is None:
        into = contract.relation
    checked = loader.check(opened, contract, into)

    def drop_checked() -> None:
        if into is not None:
            cur.drop_relation(into, RelationKind.TABLE, if_exists=False)
        else:
            cur.drop_temp(checked, if_exists=False)

    tally: dict[int, tuple[int, int]] = {}  # file index -> (rows kept, rows rejected)
    dropped: dict[str, dict[str, int]] = {file.name: {} for file, _ in opened}
    for index, drop, rows, bad in cur.execute(
        f"select __kpi_file, __kpi_drop, count(*), count(*) filter (where __kpi_bad) "
        f"from {checked} group by all"
    ).fetchall():
        if drop is None:  # a dropped row takes part in no other rule
            tally[int(index)] = (int(rows), int(bad))
        else:
            dropped[opened[int(index)][0].name][str(drop)] = int(rows)
    counts = [(file, source, loader.reader_rejections(file, source)) for file, source in opened]
    clean = all(
        tally.get(index, (0, 0))[1] == 0 and not refused
        for index, (_, _, refused) in enumerate(counts)
    )
    names = ", ".join(quote_identifier(c.name) for c in contract.columns)
    kept = f"select {names} from {checked} where __kpi_drop is null"
    if clean and not _has_duplicates(cur, plan, kept):
        if into is not None:
            kept_rows = sum(rows for rows, _ in tally.values())
            _keep_checked_rows(loader, plan, any(dropped.values()), kept_rows)
        else:
            _write_rows(loader, plan, kept)
            drop_checked()
        for index, (file, _, _) in enumerate(counts):
            rows = tally.get(index, (0, 0))[0]
            loader.report.files.append(FileResult(file, rows, 0, dropped[file.name]))
        _record_state(loader, plan)
        return
    drop_checked()  # the staged path writes the table, if it does
    _load_table_staged(loader, plan, on_bad_rows, counts, dropped)


def _keep_checked_rows(loader: _Loader, plan: TablePlan, dropped: bool, rows: int) -> None:
    """Make the checked rows written into a new raw table (`FileReader.check`
    with `into`) the table as `_write_rows` would have created it: without
    the rows a drop rule left out and without the checking columns."""
    relation = plan.contract.relation
    if dropped:
        loader.cur.execute(f"delete from {relation} where __kpi_drop is not null")
    loader.cur.drop_columns(relation, ["__kpi_file", "__kpi_bad", "__kpi_drop"])
    _record_changes(loader, plan, inserted=rows)


def _has_duplicates(cur: DuckDBAdapter, plan: TablePlan, typed: str) -> bool:
    """Whether a key repeats within the new rows, or (appending) an old row's."""
    contract = plan.contract
    if not contract.primary_key:
        return False
    key = [quote_identifier(k) for k in contract.primary_key]
    # equal keys hash alike, so no repeated hash means no repeated key; the
    # hashes group faster than long keys (Salesforce's 18-character ids), and
    # only a repeated hash takes the keys themselves
    for grouped in (f"hash({', '.join(key)})", ", ".join(key)):
        row = cur.execute(
            f"select count(*) from (select {grouped} from ({typed}) "
            "group by all having count(*) > 1)"
        ).fetchone()
        if not (row and row[0]):
            break
    else:
        return True
    if plan.action != "append":
        return False
    # joined with `=`, DuckDB skips the loaded row groups outside the range of
    # the new keys (zone maps; new ids mostly sort after the loaded ones):
    # 0.001 s against 0.08 s (0.15 CPU s) for 108k new activity ids beside
    # 10M loaded. A
    # NULL key repeats a NULL key only under `is not distinct from`, which
    # reads every row group: it runs only for new rows with a NULL in their key.
    for join, new_rows in (
        (" and ".join(f"new_rows.{k} = old.{k}" for k in key), typed),
        (
            " and ".join(f"new_rows.{k} is not distinct from old.{k}" for k in key),
            f"select * from ({typed}) where {' or '.join(f'{k} is null' for k in key)}",
        ),
    ):
        row = cur.execute(
            f"select count(*) from ({new_rows}) as new_rows "
            f"semi join {contract.relation} as old on {join}"
        ).fetchone()
        if row and row[0]:
            return True
    return False


def _write_rows(loader: _Loader, plan: TablePlan, rows_sql: str) -> None:
    """Create (reload) or append to the raw table from `rows_sql`, and record
    in `_kpi.table_changes` how many rows were inserted, updated and deleted.

    Reloading a table writes only what changed: rows identical to loaded ones
    keep their `_load_id`, so a snapshot export that changed in 1% of its rows
    costs 1% of a write, and incremental models downstream see only those rows
    (change data capture). A table without a primary key (an association
    table) is compared as a multiset of whole rows.
    """
    cur = loader.cur
    contract = plan.contract
    relation = contract.relation
    names = ", ".join(quote_identifier(c.name) for c in contract.columns)
    typed = f"select {names} from ({rows_sql})"
    load_id = f"cast({loader.load_id} as bigint)"
    if plan.action == "append":
        row = cur.execute(f"insert into {relation} select *, {load_id} from ({typed})").fetchone()
        _record_changes(loader, plan, inserted=int(row[0]) if row else 0, how="append")
        return
    old_rows = _row_count(cur, relation)
    if old_rows is None or plan.new_columns:
        written = cur.create_table_as(
            relation, f"select *, {load_id} as {LOAD_ID_COLUMN} from ({typed})"
        )
        _record_changes(loader, plan, inserted=written, deleted=old_rows or 0)
        return
    changes = _compare_with_loaded(loader, plan, typed)
    _record_changes(loader, plan, *changes, how="compare")


def _compare_with_loaded(loader: _Loader, plan: TablePlan, typed: str) -> tuple[int, int, int]:
    """Write a snapshot's differences from the loaded rows, found in one join
    on the primary key: new and changed rows are written with the new load,
    rows that disappeared are deleted (by row id, with no second search), and
    identical rows are left as they are. (inserted, updated, deleted)."""
    cur = loader.cur
    contract = plan.contract
    relation = contract.relation
    columns = [quote_identifier(c.name) for c in contract.columns]
    old_rows = f"(select rowid, * from {relation})"
    if contract.primary_key:
        key = [quote_identifier(k) for k in contract.primary_key]
    else:
        # no key: a row is its values, and the n-th copy of a repeated row
        # matches the n-th loaded copy (so duplicates count as a multiset)
        copy = f"row_number() over (partition by {', '.join(columns)}) as __kpi_copy"
        typed = f"select *, {copy} from ({typed})"
        old_rows = f"(select rowid, *, {copy} from {relation})"
        key = [*columns, "__kpi_copy"]
    on_key = " and ".join(f"new_rows.{k} is not distinct from old.{k}" for k in key)
    same_row = " and ".join(f"new_rows.{c} is not distinct from old.{c}" for c in columns)
    diff = loader.temp_name("diff")
    # __kpi_old: the loaded row's id (NULL: a new key); __kpi_new: the row is in
    # the snapshot (false: its key disappeared)
    cur.create_temp_table_as(
        diff,
        f"select {', '.join(f'new_rows.{c}' for c in columns)}, old.rowid as __kpi_old, "
        f"new_rows.__kpi_new is not null as __kpi_new "
        f"from (select *, true as __kpi_new from ({typed})) as new_rows full outer join "
        f"{old_rows} as old on {on_key} "
        f"where old.rowid is null or new_rows.__kpi_new is null or not ({same_row})",
        replace=False,
    )
    row = cur.execute(
        f"select count(*) filter (where __kpi_old is null), "
        f"count(*) filter (where __kpi_old is not null and __kpi_new), "
        f"count(*) filter (where not __kpi_new) from {diff}"
    ).fetchone()
    inserted, updated, deleted = (int(n) for n in row) if row else (0, 0, 0)
    if updated or deleted:
        cur.execute(
            f"delete from {relation} where rowid in "
            f"(select __kpi_old from {diff} where __kpi_old is not null)"
        )
    if inserted or updated:
        cur.execute(
            f"insert into {relation} select {', '.join(columns)}, "
            f"cast({loader.load_id} as bigint) from {diff} where __kpi_new"
        )
    cur.drop_temp(diff, if_exists=False)
    return inserted, updated, deleted


def _row_count(cur: DuckDBAdapter, relation: Relation) -> int | None:
    """Rows of `relation`, or None when it does not exist."""
    if cur.relation_kind(relation) is None:
        return None
    return cur.row_count(relation)


def _record_changes(
    loader: _Loader,
    plan: TablePlan,
    inserted: int = 0,
    updated: int = 0,
    deleted: int = 0,
    how: str = "load",
) -> None:
    loader.report.changes[plan.contract.name] = (how, inserted, updated, deleted)
    state_tables.record_table_change(
        loader.cur,
        loader.load_id,
        plan.contract.relation.display,
        plan.action,
        inserted,
        updated,
        deleted,
    )


def _record_state(loader: _Loader, plan: TablePlan) -> None:
    """Remember the table's files, so that unchanged ones are skipped next time."""
    name = plan.contract.name
    if plan.action == "reload":
        state_tables.forget_loaded_files(loader.cur, name)
    state_tables.record_loaded_files(
        loader.cur,
        [
            _loaded_file(result.file, result.rows, result.rejected, loader.load_id, plan.action)
            for result in loader.report.files
            if result.file.table == name
        ],
    )


def _loaded_file(
    file: ExportFile, rows: int, rejected: int, load_id: int, action: str
) -> state_tables.LoadedFile:
    """The row of `_kpi.load_state` for `file`, with its settled stat if any."""
    ctime_ns, inode, device = (file.settled_stat or (None,) * 5)[2:]
    return state_tables.LoadedFile(
        file.table,
        file.name,
        file.size,
        file.mtime_ns,
        file.sha256,
        rows,
        rejected,
        load_id,
        action,
        ctime_ns,
        inode,
        device,
    )


def _load_table_staged(
    loader: _Loader,
    plan: TablePlan,
    on_bad_rows: str,
    counts: list[tuple[ExportFile, Source, list[Rejection]]],
    dropped: dict[str, dict[str, int]],
) -> None:
    """The slow path: stage every row with its file order and its reason."""
    cur = loader.cur
    contract = plan.contract
    relation = contract.relation
    staged_tables = []
    results = []
    for index, (file, source, reader_rejects) in enumerate(counts):
        staged = loader.stage(file, source, contract, index)
        staged_tables.append(staged)
        results.append((file, source, staged, reader_rejects))
    union = " union all ".join(f"select * from {t}" for t in staged_tables)
    all_rows = loader.temp_name("all")
    key = [quote_identifier(k) for k in contract.primary_key]
    names = ", ".join(quote_identifier(c.name) for c in contract.columns)
    if key:
        existing = ""
        if plan.action == "append":
            join = " and ".join(f"old.{k} is not distinct from new.{k}" for k in key)
            existing = (
                f" when exists (select 1 from {relation} as old where {join}) "
                "then 'duplicate key: already loaded from an earlier file'"
            )
        partition = ", ".join(key)
        # the key's columns the files have (a Data Export has no `_fivetran_start`)
        shown = [k for k in contract.primary_key if any(k in s.columns for _, s, _ in counts)]
        duplicate = quote_literal(
            f"duplicate key ({', '.join(shown or contract.primary_key)}): an earlier row has "
            "the same value"
        )
        raw = f"to_json(struct_pack({names}))"
        cur.create_temp_table_as(
            all_rows,
            f"""
            select * replace (
                coalesce(__kpi_raw, case when __kpi_reason is not null then {raw} end)
                    as __kpi_raw
            )
            from (
            select * replace (
                case
                    when __kpi_reason is not null then __kpi_reason
                    {existing.replace("new.", "new_rows.")}
                    when row_number() over (
                        partition by {partition}, (__kpi_reason is null)
                        order by __kpi_file, __kpi_ord
                    ) > 1
                    then {duplicate}
                end as __kpi_reason
            )
            from ({union}) as new_rows
            )
            """,
            replace=False,
        )
    else:
        cur.create_temp_table_as(all_rows, union, replace=False)
    for file, source, _, reader_rejects in results:
        index = plan.new_files.index(file)
        tally = cur.execute(
            f"select count(*) filter (where __kpi_reason is null), "
            f"count(*) filter (where __kpi_reason is not null) "
            f"from {all_rows} where __kpi_file = {index}"
        ).fetchone()
        good, bad = (int(tally[0]), int(tally[1])) if tally else (0, 0)
        result = FileResult(file, good, bad + len(reader_rejects), dropped[file.name])
        view = loader.temp_name("file")
        cur.create_temp_view(view, f"select * from {all_rows} where __kpi_file = {index}")
        quarantine = on_bad_rows == "quarantine" and result.rejected > 0
        located = locate_rejections(
            cur, view, file, source, reader_rejects, None if quarantine else SHOWN_PER_FILE
        )
        result.rejections = sorted(
            [*reader_rejects, *(r for r, _ in located)],
            key=lambda r: (r.line is None, r.line or 0),
        )
        loader.report.files.append(result)
        if quarantine:
            _quarantine(cur, contract, file, located, reader_rejects, loader.load_id)
    _write_rows(
        loader,
        plan,
        f"select * from {all_rows} where __kpi_reason is null order by __kpi_file, __kpi_ord",
    )
    _record_state(loader, plan)
    for table in [all_rows, *staged_tables]:
        cur.drop_temp(table)


def _quarantine(
    cur: DuckDBAdapter,
    contract: TableContract,
    file: ExportFile,
    located: Sequence[tuple[Rejection, str | None]],
    reader_rejects: Sequence[Rejection],
    load_id: int,
) -> None:
    """Keep every rejected row of one file in raw.rejected_rows, with its line."""
    relation = Relation(contract.relation.schema, REJECTED_ROWS_TABLE)
    values = [(contract.name, file.name, r.line, r.reason, raw, load_id) for r, raw in located]
    values += [(contract.name, file.name, r.line, r.reason, r.raw, load_id) for r in reader_rejects]
    if values:
        cur.executemany(
            f"insert into {relation} values (?, ?, ?, ?, ?, ?, now()::timestamp)", values
        )


def describe_report(report: LoadReport) -> list[str]:
    """Lines for the user: what was loaded, appended or skipped."""
    lines = []
    by_table: dict[str, list[FileResult]] = {}
    for result in report.files:
        by_table.setdefault(result.file.table, []).append(result)
    for table, action in sorted(report.actions.items()):
        if action == "skip":
            lines.append(f"  {table}: unchanged, skipped")
            continue
        results = by_table.get(table, [])
        if not results and action == "reload":
            lines.append(f"  {table}: no file (an optional table), empty")
            continue
        rejected = sum(r.rejected for r in results)
        files = ", ".join(r.file.name for r in results)
        tail = f", {rejected:,} rejected" if rejected else ""
        for reason, rows in sorted(report.dropped(table).items()):
            tail += f", {rows:,} dropped ({reason})"
        how, inserted, updated, deleted = report.changes.get(table, ("load", 0, 0, 0))
        if how == "compare":
            lines.append(
                f"  {table}: compared {files} with the loaded rows: {inserted:,} new, "
                f"{updated:,} changed, {deleted:,} removed{tail}"
            )
        else:
            verb = "appended" if how == "append" else "loaded"
            lines.append(f"  {table}: {verb} {inserted:,} row(s) from {files}{tail}")
    return lines


def export_dir_from(
    cli_value: str | os.PathLike[str] | None, configured: Path | None, project_dir: Path
) -> Path | None:
    """`--raw-dir`, then `KPI_RAW_DIR`, then `[tool.kpi] raw_dir`."""
    value = cli_value or os.environ.get("KPI_RAW_DIR")
    if value:
        path = Path(value)
        return path if path.is_absolute() else (Path.cwd() / path)
    return configured
