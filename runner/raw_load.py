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

Rows that break a rule are rejected with file, line and reason. With
`on_bad_rows="fail"` any rejection stops the load; with `"quarantine"` the
good rows load and the rejected ones are kept in `raw.rejected_rows`. Either
way the raw tables change in one transaction, only when the whole load
succeeded.
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from runner import state_tables
from runner.engines.base import RelationKind
from runner.errors import KpiError, LoadError, ProjectError
from runner.nodes import Relation, quote_identifier, quote_literal
from runner.raw_contract import (
    DATE_BOUNDS,
    TYPE_WORDS,
    TableContract,
    bounds_sql,
    parse_value_sql,
)
from runner.raw_encoding import check_encoding, is_utf8_name, utf8_copy
from runner.raw_files import (
    FD_DIR,
    ExportFile,
    TablePlan,
    close_export_files,
    find_export_files,
    lines_at,
    plan_tables,
    record_lines,
)
from runner.warehouse import duckdb_failure

if TYPE_CHECKING:
    from runner.engines.duckdb import DuckDBAdapter

LOAD_ID_COLUMN = "_load_id"
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
_SQL_QUOTE = "''''"  # the SQL literal of one single quote
_OUT_OF_BOUNDS = (
    f" is outside the supported range [{DATE_BOUNDS[0]}, {DATE_BOUNDS[1]}): dates and "
    "timestamps must be on or after the first and before the second"
)


@dataclass
class Rejection:
    """A refused row: `line` is the physical line (or the row of a Parquet
    file, with `unit` "row"); `record` is its CSV record number (1 = header)."""

    file: str
    line: int | None
    reason: str
    unit: str = "line"
    record: int | None = None
    raw: str | None = None  # the refused line as the reader saw it, as JSON


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


_NEW_LINE_OPTION = {b"\r": "new_line = '\\r', "}  # CR-only files; others detected


def _first_line(path: Path) -> tuple[bytes, bytes]:
    """The file's first line and its line end: `\n` (LF or CRLF files) or
    `\r` (old Mac files, CR only)."""
    head = b""
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(1 << 16)
            head += chunk
            lf, cr = head.find(b"\n"), head.find(b"\r")
            if cr >= 0 and (lf < 0 or cr < lf) and (cr + 1 < len(head) or not chunk):
                if head[cr + 1 : cr + 2] != b"\n":
                    return head[:cr], b"\r"
                return head[:cr], b"\n"
            if lf >= 0 or not chunk:
                return head[: lf if lf >= 0 else len(head)], b"\n"


def _csv_header(file: ExportFile, path: Path) -> tuple[list[str], bytes]:
    """The header's fields, and the file's line end (`path`: where to read it)."""
    first, newline = _first_line(path)
    if not first.strip(b"\r\n\xef\xbb\xbf"):
        raise _file_error(
            file,
            "is empty; a file needs at least its header row",
            "Export the table again, or write just the header line if it has no rows.",
            line=1,
        )
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _file_error(
            file, "has a header that is not UTF-8", "Save the file as UTF-8.", line=1
        ) from exc
    return next(csv.reader([text])), newline


def _file_error(file: ExportFile, problem: str, hint: str, line: int | None = None) -> LoadError:
    return LoadError(f"{problem}.", path=file.path, line=line, hint=hint)


def _check_columns(
    file: ExportFile, header: Sequence[str], contract: TableContract, warnings: list[str]
) -> list[str]:
    """The header's names as the contract spells them (matched after trimming
    spaces and ignoring case; others as written). Two names that fold to one
    and a missing required column are errors; extra columns and missing
    optional ones are warnings."""
    folded = [contract.fold(h) for h in header]
    if len(set(folded)) != len(folded):
        dupes = sorted({h for h in header if folded.count(contract.fold(h)) > 1})
        raise _file_error(
            file,
            f"has duplicate column(s) {', '.join(repr(d) for d in dupes)} (names match "
            "ignoring case and surrounding spaces)",
            "Rename or drop one.",
            line=1,
        )
    spelled = {contract.fold(c.name): c.name for c in contract.columns}
    names = [spelled.get(f, h) for f, h in zip(folded, header, strict=True)]
    wanted = contract.column_names
    for column in contract.columns:
        if column.named_by and column.name not in names:
            near = _near_matches([column.name], [h for h in names if h not in wanted])
            raise _file_error(
                file,
                f"lacks the field {column.name}, which {column.named_by} names",
                ("; ".join(near) + ". " if near else "")
                + f"Export the field {column.name} too, or fix {column.named_by}.",
                line=1,
            )
    missing = [c.name for c in contract.columns if c.required and c.name not in names]
    if missing:
        hints = []
        if len(header) == 1 and any(d in header[0] for d in ";\t|"):
            hints.append("the header has one field: the file seems not to be comma-separated")
        hints += _near_matches(missing, [h for h in names if h not in contract.column_names])
        raise _file_error(
            file,
            f"lacks required column(s) {', '.join(missing)}",
            ("; ".join(hints) + ". " if hints else "")
            + f"The contract's columns are: {', '.join(wanted)}.",
            line=1,
        )
    extra = [h for h in names if h not in wanted]
    if extra and contract.crm == "contract":  # a CRM's objects have many more fields
        warnings.append(f"{file.path}: extra column(s) {', '.join(extra)} ignored.")
    absent = [c.name for c in contract.columns if c.name not in names and c.warn_if_absent]
    if absent:
        warnings.append(
            f"{file.path}: optional column(s) {', '.join(absent)} absent, loaded as NULL."
        )
    return names


def _near_matches(missing: Sequence[str], header: Sequence[str]) -> list[str]:
    """`did you mean` hints: a header name close to a missing column's."""
    hints = []
    by_fold = {h.strip().lower().replace("_", ""): h for h in header}
    for name in missing:
        close = difflib.get_close_matches(
            name.lower().replace("_", ""), list(by_fold), n=1, cutoff=0.75
        )
        if close:
            hints.append(f"'{by_fold[close[0]]}' may be meant as {name}: rename it")
    return hints


@dataclass(frozen=True)
class _Source:
    """The SQL that reads one file, with its column types and row unit."""

    sql: str
    columns: dict[str, str]  # name -> DuckDB type, only contract columns present
    unit: str  # "line" or "row"
    rejects_table: str | None = None
    newline: bytes = b"\n"
    read_path: Path | None = None  # the UTF-8 text read, when not the file itself


class _Loader:
    def __init__(
        self,
        cur: DuckDBAdapter,
        report: LoadReport,
        load_id: int,
        encoding: str | None = None,
    ) -> None:
        self.cur = cur
        self.report = report
        self.load_id = load_id
        self.encoding = encoding
        self._counter = 0
        self._temp_fds: list[int] = []

    def close(self) -> None:
        for fd in self._temp_fds:
            os.close(fd)
        self._temp_fds = []

    def _utf8_path(self, file: ExportFile, contract: TableContract) -> Path:
        """Where to read `file` as UTF-8: the file itself, or a decoded copy
        (`--encoding`, or the contract's fallback for a file that is not
        UTF-8, with one warning naming it)."""
        encoding = self.encoding
        if encoding is None or is_utf8_name(encoding):
            if encoding is not None or contract.encoding_fallback is None:
                return file.read_path
            if file.is_utf8():
                return file.read_path
            encoding = contract.encoding_fallback
            self.report.warnings.append(
                f"{file.path}: not valid UTF-8; read as {encoding} (pass --encoding to force one)."
            )
        fd = utf8_copy(file.read_path, encoding)
        self._temp_fds.append(fd)
        return FD_DIR / str(fd) if FD_DIR.is_dir() else Path(f"/dev/fd/{fd}")

    def _name(self, prefix: str) -> str:
        self._counter += 1
        return f"__kpi_{prefix}_{self._counter}"

    def open_source(self, file: ExportFile, contract: TableContract) -> _Source:
        if file.is_parquet:
            return self._open_parquet(file, contract)
        read_path = self._utf8_path(file, contract)
        header, newline = _csv_header(file, read_path)
        names = _check_columns(file, header, contract, self.report.warnings)
        rejects = self._name("rejects")
        scan = self._name("scan")
        columns = ", ".join(f"{quote_literal(h)}: 'VARCHAR'" for h in names)
        reader = (
            f"read_csv({quote_literal(str(read_path))}, auto_detect = false, "
            f"header = true, columns = {{{columns}}}, delim = ',', quote = '\"', "
            f"escape = '\"', {_NEW_LINE_OPTION.get(newline, '')}"
            f"store_rejects = true, rejects_table = {quote_literal(rejects)}, "
            f"rejects_scan = {quote_literal(scan)}, max_line_size = 10000000)"
        )
        present = {h: "VARCHAR" for h in names if h in contract.column_names}
        return _Source(reader, present, "line", rejects, newline, read_path)

    def _open_parquet(self, file: ExportFile, contract: TableContract) -> _Source:
        import duckdb

        reader = f"read_parquet({quote_literal(str(file.read_path))})"
        try:
            described = self.cur.execute(f"describe select * from {reader}").fetchall()
        except duckdb.Error as exc:
            raise _file_error(
                file,
                f"is not a readable Parquet file ({_file_error_line(file, exc)})",
                "Export it again.",
            ) from exc
        header = [str(row[0]) for row in described]
        names = _check_columns(file, header, contract, self.report.warnings)
        wanted = set(contract.column_names)
        present = {
            name: str(row[1]) for name, row in zip(names, described, strict=True) if name in wanted
        }
        renamed = ", ".join(
            f"{quote_identifier(h)} as {quote_identifier(name)}"
            for name, h in zip(names, header, strict=True)
            if name in wanted
        )
        return _Source(f"(select {renamed or '1 as __kpi_none'} from {reader})", present, "row")

    def checked_rows(self, source: _Source, contract: TableContract, ordinal: bool = False) -> str:
        """A query of one file's rows, in file order: the contract's columns
        typed, `__kpi_reason` (why the row is rejected: a type or required
        value, else a row rule; NULL for a valid row), `__kpi_raw` (a rejected
        row's values as JSON: as read for a bad value, typed for a row rule),
        `__kpi_drop` (the drop rule it meets, or NULL), and with `ordinal` its
        number among the records the reader accepted (`__kpi_ord`).

        Each value is parsed once, in an inner query, and the checks read the
        typed value, so that one scan both types and checks a file."""
        inner = []  # per present column: the value as read, then with NULLs read as NULL
        typed_cols = []
        reasons = []
        reads = {}
        for index, column in enumerate(contract.columns):
            ident = quote_identifier(column.name)
            if column.name not in source.columns:
                typed_cols.append(f"cast(null as {column.sql_type}) as {ident}")
                continue
            read, value = f"__kpi_s{index}", f"__kpi_v{index}"
            raw = f"source.{ident}"
            reads[column.name] = read
            nulled = raw
            if source.columns[column.name] == "VARCHAR":
                for null in ("", *contract.null_values):
                    nulled = f"nullif({nulled}, {quote_literal(null)})"
            inner.append(f"{raw} as {read}, {nulled} as {value}")
            typed, invalid = parse_value_sql(column, value, source.columns[column.name], ident)
            typed_cols.append(f"{typed} as {ident}")
            if column.required:
                missing = quote_literal(f"missing required value in column {column.name}")
                reasons.append(f"when {value} is null then {missing}")
            shown = f"{_SQL_QUOTE} || left(cast({value} as varchar), 60) || {_SQL_QUOTE}"
            if invalid != "false":
                reasons.append(
                    f"when {value} is not null and ({invalid}) then "
                    f"{quote_literal(f'column {column.name}: ')} || {shown} || "
                    f"{quote_literal(' is not ' + TYPE_WORDS.get(column.type, column.type))}"
                )
            out_of_bounds = bounds_sql(column, ident)
            if out_of_bounds:
                reasons.append(
                    f"when {out_of_bounds} then {quote_literal(f'column {column.name}: ')} || "
                    f"{shown} || {quote_literal(_OUT_OF_BOUNDS)}"
                )
        names = ", ".join(quote_identifier(c.name) for c in contract.columns)
        type_reason = f"case {' '.join(reasons)} end" if reasons else "cast(null as varchar)"
        rule_reason = _first_rule(contract.reject_when)
        drop_reason = _first_rule(contract.drop_when)
        order = "row_number() over () as __kpi_ord, " if ordinal else ""
        read = f"select {order}{', '.join(inner) or '1 as __kpi_none'} from {source.sql} as source"
        raw_fields = ", ".join(f"{quote_identifier(n)} := {reads[n]}" for n in source.columns)
        raw_json = f"to_json(struct_pack({raw_fields}))" if raw_fields else "'{}'"
        return f"""
            select {"__kpi_ord, " if ordinal else ""}{names},
                coalesce(__kpi_type_reason, __kpi_rule_reason) as __kpi_reason,
                case
                    when __kpi_type_reason is not null then {raw_json}
                    when __kpi_rule_reason is not null then to_json(struct_pack({names}))
                end as __kpi_raw,
                __kpi_drop
            from (
                select *,
                    case when __kpi_type_reason is null then {rule_reason} end
                        as __kpi_rule_reason,
                    {drop_reason} as __kpi_drop
                from (
                    select *, {type_reason} as __kpi_type_reason
                    from (select *, {", ".join(typed_cols)} from ({read}))
                )
            )
        """

    def check(
        self,
        opened: Sequence[tuple[ExportFile, _Source]],
        contract: TableContract,
        into: Relation | None = None,
    ) -> str:
        """Read every file once into one table, in file order: the typed rows
        (`__kpi_file` its index), `__kpi_bad` when a type, required value or
        row rule rejects the row, and `__kpi_drop` the drop rule it meets.
        Counting, the key check and the write then read that table, not the
        files again. The table is a temp table, or `into`, a raw table that
        does not exist yet: the rows are then written there directly, with
        this load's `_load_id`, and `_keep_checked_rows` makes it the raw table
        (one write of every row instead of two)."""
        checked = str(into) if into is not None else self._name("checked")
        names = ", ".join(quote_identifier(c.name) for c in contract.columns)
        load_id = f"cast({self.load_id} as bigint) as {LOAD_ID_COLUMN}, " if into else ""
        for index, (file, source) in enumerate(opened):
            rows = (
                f"select {names}, {load_id}{index} as __kpi_file, "
                f"__kpi_reason is not null as __kpi_bad, __kpi_drop "
                f"from ({self.checked_rows(source, contract)})"
            )
            try:
                if index == 0 and into is not None:
                    self.cur.create_table_as(into, rows, replace=False)
                elif index == 0:
                    self.cur.create_temp_table_as(checked, rows, replace=False)
                else:
                    self.cur.execute(f"insert into {checked} {rows}")
            except Exception as exc:
                raise self.read_error(file, exc) from exc
        return checked

    def stage(
        self, file: ExportFile, source: _Source, contract: TableContract, file_index: int
    ) -> str:
        """Read and check one file into a temp table of typed rows, file order
        and reasons: the slow path, taken when some row is rejected."""
        staged = self._name("stage")
        names = ", ".join(quote_identifier(c.name) for c in contract.columns)
        sql = f"""
            select {file_index} as __kpi_file, __kpi_ord, {names}, __kpi_reason, __kpi_raw
            from ({self.checked_rows(source, contract, ordinal=True)})
            where __kpi_drop is null
        """
        try:
            self.cur.create_temp_table_as(staged, sql, replace=False)
        except Exception as exc:
            raise self.read_error(file, exc) from exc
        return staged

    def read_error(self, file: ExportFile, exc: BaseException) -> KpiError:
        """What to tell about a failed scan of `file`: the machine's or the
        warehouse's fault when it is one, else the file's. A scan cancelled by
        Ctrl-C (DuckDB's "Query interrupted") is raised as the interrupt."""
        if isinstance(exc, RuntimeError) and "interrupted" in str(exc).lower():
            raise KeyboardInterrupt from exc
        return duckdb_failure(self.cur.connection, exc) or _read_error(file, exc)

    def reader_rejections(self, file: ExportFile, source: _Source) -> list[Rejection]:
        """Rows DuckDB's CSV reader itself refused (field counts, quotes, encoding)."""
        if source.rejects_table is None:
            return []
        rows = self.cur.execute(
            f"select min(line_byte_position), line, string_agg(distinct error_type, ', '), "
            "any_value(error_message), to_json(struct_pack(csv_line := any_value(csv_line))) "
            f"from {quote_identifier(source.rejects_table)} group by line order by line"
        ).fetchall()
        if not rows:
            return []
        positions = [int(r[0]) for r in rows]
        lines = lines_at(source.read_path or file.read_path, positions, source.newline)
        out = []
        for (_, record, kinds, message, raw), line in zip(rows, lines, strict=True):
            reason = _reader_reason(kinds, message)
            out.append(Rejection(file.name, line, reason, record=record, raw=raw))
        self.cur.drop_temp(source.rejects_table)
        return out


def _first_rule(rules: Sequence[tuple[str, str]]) -> str:
    """The reason of the first rule (SQL condition, reason) a row meets, or NULL."""
    if not rules:
        return "cast(null as varchar)"
    whens = " ".join(
        f"when coalesce(({condition}), false) then {quote_literal(reason)}"
        for condition, reason in rules
    )
    return f"case {whens} end"


def _reader_reason(kinds: str, message: str) -> str:
    if "INVALID ENCODING" in kinds or "INVALID UNICODE" in kinds:
        return "not valid UTF-8 (the file must be UTF-8 encoded)"
    if "UNQUOTED VALUE" in kinds or "unterminated quote" in (message or "").lower():
        return "a quoted field is never closed (unterminated quote); the rest of the file is in it"
    if "TOO MANY COLUMNS" in kinds or "MISSING COLUMNS" in kinds:
        found = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", message or "")
        if found:
            return f"wrong number of fields: {found.group(2)}, expected {found.group(1)}"
        return "wrong number of fields"
    return (message or kinds).strip().split("\n")[0]


def _read_error(file: ExportFile, exc: BaseException) -> LoadError:
    text = _file_error_line(file, exc)
    return LoadError(
        f"cannot be read: {text}.",
        path=file.path,
        hint="Check that it is a comma-separated UTF-8 CSV with a header row (or a Parquet file).",
    )


def _error_line(exc: BaseException) -> str:
    return str(exc).strip().split("\n")[0]


def _file_error_line(file: ExportFile, exc: BaseException) -> str:
    """DuckDB's message about `file`, naming it by its path, not by the
    descriptor it was read through."""
    return _error_line(exc).replace(str(file.read_path), str(file.path))


def _locate_rejections(
    cur: DuckDBAdapter,
    staged: str,
    file: ExportFile,
    source: _Source,
    reader_rejects: Sequence[Rejection],
    limit: int | None,
) -> list[tuple[Rejection, str | None]]:
    """Rejected rows of a staged file (the first `limit`), with their lines,
    and each row's raw values as JSON."""
    rows = cur.execute(
        f"select __kpi_ord, __kpi_reason, __kpi_raw from {staged} "
        "where __kpi_reason is not null order by __kpi_ord"
        + (f" limit {int(limit)}" if limit is not None else "")
    ).fetchall()
    if source.unit == "row":
        return [(Rejection(file.name, int(o), r, "row"), raw) for o, r, raw in rows]
    # A good-row ordinal counts only the records the reader accepted; turn it
    # into a record number (1 = the header) by adding the refused records
    # before it, then find the record's first physical line.
    refused = sorted(r.record for r in reader_rejects if r.record)
    records = []
    for ordinal, _, _ in rows:
        record = int(ordinal) + 1
        for refused_record in refused:
            if refused_record > record:
                break
            record += 1
        records.append(record)
    lines = record_lines(source.read_path or file.read_path, records)
    return [
        (Rejection(file.name, lines.get(rec), reason, record=rec), raw)
        for rec, (_, reason, raw) in zip(records, rows, strict=True)
    ]


# -- the whole load -----------------------------------------------------------------------


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
            f"loading failed, nothing was loaded: {_error_line(exc)}", path=export_dir
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
            f"loading failed, nothing was loaded: {_error_line(exc)}", path=export_dir
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
    """Make the checked rows written into a new raw table (`_Loader.check`
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
    join = " and ".join(f"new_rows.{k} is not distinct from old.{k}" for k in key)
    row = cur.execute(
        f"select count(*) from ({typed}) as new_rows semi join {contract.relation} as old on {join}"
    ).fetchone()
    return bool(row and row[0])


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
    diff = loader._name("diff")
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
    counts: list[tuple[ExportFile, _Source, list[Rejection]]],
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
    all_rows = loader._name("all")
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
        view = loader._name("file")
        cur.create_temp_view(view, f"select * from {all_rows} where __kpi_file = {index}")
        quarantine = on_bad_rows == "quarantine" and result.rejected > 0
        located = _locate_rejections(
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
