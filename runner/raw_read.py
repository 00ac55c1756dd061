"""Reading one file of an export and checking its rows against its contract.

`FileReader.open_source` checks a file's header (the contract's columns,
matched after trimming spaces and ignoring case; near matches suggested for
missing ones) and gives the SQL that reads it: CSV through DuckDB's reader,
every column as text, or Parquet as typed columns. `checked_rows` turns that
into the contract's typed rows, each with the reason it is rejected (a type,
a required value, a row rule) or dropped (a `drop_when` rule), in one scan.
`locate_rejections` finds the file lines of rejected rows. `raw_load` runs
the whole load with it.
"""

from __future__ import annotations

import csv
import difflib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from runner.errors import KpiError, LoadError
from runner.nodes import Relation, quote_identifier, quote_literal
from runner.raw_contract import (
    DATE_BOUNDS,
    TYPE_WORDS,
    TableContract,
    bounds_sql,
    parse_value_sql,
)
from runner.raw_encoding import is_utf8_name, utf8_copy
from runner.raw_files import FD_DIR, ExportFile, lines_at, record_lines
from runner.warehouse import duckdb_failure

if TYPE_CHECKING:
    from runner.engines.duckdb import DuckDBAdapter

LOAD_ID_COLUMN = "_load_id"
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
class Source:
    """The SQL that reads one file, with its column types and row unit."""

    sql: str
    columns: dict[str, str]  # name -> DuckDB type, only contract columns present
    unit: str  # "line" or "row"
    rejects_table: str | None = None
    newline: bytes = b"\n"
    read_path: Path | None = None  # the UTF-8 text read, when not the file itself


class FileReader:
    """Opens the files of an export on one cursor, reads them as the
    contract's typed rows and says which rows are rejected and why
    (`warnings`: where warnings about the files go)."""

    def __init__(
        self,
        cur: DuckDBAdapter,
        warnings: list[str],
        load_id: int,
        encoding: str | None = None,
    ) -> None:
        self.cur = cur
        self.warnings = warnings
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
            self.warnings.append(
                f"{file.path}: not valid UTF-8; read as {encoding} (pass --encoding to force one)."
            )
        fd = utf8_copy(file.read_path, encoding)
        self._temp_fds.append(fd)
        return FD_DIR / str(fd) if FD_DIR.is_dir() else Path(f"/dev/fd/{fd}")

    def temp_name(self, prefix: str) -> str:
        """A new name for a temp table or view of this load."""
        self._counter += 1
        return f"__kpi_{prefix}_{self._counter}"

    def open_source(self, file: ExportFile, contract: TableContract) -> Source:
        if file.is_parquet:
            return self._open_parquet(file, contract)
        read_path = self._utf8_path(file, contract)
        header, newline = _csv_header(file, read_path)
        names = _check_columns(file, header, contract, self.warnings)
        rejects = self.temp_name("rejects")
        scan = self.temp_name("scan")
        columns = ", ".join(f"{quote_literal(h)}: 'VARCHAR'" for h in names)
        reader = (
            f"read_csv({quote_literal(str(read_path))}, auto_detect = false, "
            f"header = true, columns = {{{columns}}}, delim = ',', quote = '\"', "
            f"escape = '\"', {_NEW_LINE_OPTION.get(newline, '')}"
            f"store_rejects = true, rejects_table = {quote_literal(rejects)}, "
            f"rejects_scan = {quote_literal(scan)}, max_line_size = 10000000)"
        )
        present = {h: "VARCHAR" for h in names if h in contract.column_names}
        return Source(reader, present, "line", rejects, newline, read_path)

    def _open_parquet(self, file: ExportFile, contract: TableContract) -> Source:
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
        names = _check_columns(file, header, contract, self.warnings)
        wanted = set(contract.column_names)
        present = {
            name: str(row[1]) for name, row in zip(names, described, strict=True) if name in wanted
        }
        renamed = ", ".join(
            f"{quote_identifier(h)} as {quote_identifier(name)}"
            for name, h in zip(names, header, strict=True)
            if name in wanted
        )
        return Source(f"(select {renamed or '1 as __kpi_none'} from {reader})", present, "row")

    def checked_rows(self, source: Source, contract: TableContract, ordinal: bool = False) -> str:
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
        opened: Sequence[tuple[ExportFile, Source]],
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
        checked = str(into) if into is not None else self.temp_name("checked")
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
        self, file: ExportFile, source: Source, contract: TableContract, file_index: int
    ) -> str:
        """Read and check one file into a temp table of typed rows, file order
        and reasons: the slow path, taken when some row is rejected."""
        staged = self.temp_name("stage")
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

    def reader_rejections(self, file: ExportFile, source: Source) -> list[Rejection]:
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


def error_line(exc: BaseException) -> str:
    return str(exc).strip().split("\n")[0]


def _file_error_line(file: ExportFile, exc: BaseException) -> str:
    """DuckDB's message about `file`, naming it by its path, not by the
    descriptor it was read through."""
    return error_line(exc).replace(str(file.read_path), str(file.path))


def locate_rejections(
    cur: DuckDBAdapter,
    staged: str,
    file: ExportFile,
    source: Source,
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
