"""The contract of a raw export, as the sources yml states it.

A source whose `meta` has `load_from_export: true` names the tables of an
export folder. Each column's `data_type` is a contract type (id, text,
integer, number, money, decimal, bool, date, timestamp) with `meta.required`; a
table's `meta.primary_key` and `meta.reject_when` rules say which rows are
rejected. `parse_value_sql` turns a column as read from a file into its typed
value and a test for values that do not parse; a typed Parquet value obeys
the same rules as its text in a CSV file (an integer is whole, money has at
most 4 decimals). `DATE_BOUNDS` is the range of dates and timestamps taken.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from runner.errors import ProjectError
from runner.nodes import Relation, SourceTable, quote_literal

SQL_TYPES = {
    "id": "VARCHAR",
    "text": "VARCHAR",
    "integer": "BIGINT",
    "number": "DOUBLE",
    "money": "DECIMAL(18,4)",
    "decimal": "DECIMAL(28,10)",
    "bool": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}
_BOOL_TRUE = "('true', '1', 't', 'yes')"
_BOOL_ALL = "('true', 'false', '1', '0', 't', 'f', 'yes', 'no')"
# the usual spellings, already in lower case: these need no `lower()`
_BOOL_USUAL = "('0', '1', 'false', 'true')"
_PATTERNS = {
    "integer": r"[+-]?[0-9]+",
    "number": r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?",
    "money": r"[+-]?([0-9]{1,14}(\.[0-9]{0,4})?|\.[0-9]{1,4})",
    "decimal": r"[+-]?([0-9]{1,18}(\.[0-9]{0,10})?|\.[0-9]{1,10})",
    "date": r"[0-9]{4}-[0-9]{2}-[0-9]{2}",
    "timestamp": (
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
        r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?"
        r"([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)?)?"
    ),
}
# Dates and timestamps outside [low, high) are rejected: one absurd value
# would otherwise stretch every month-by-month mart over centuries.
DATE_BOUNDS = ("1900-01-01", "2100-01-01")
_FLOATS = {"DOUBLE", "FLOAT"}
_INTEGERS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"}
_INTEGERS |= {"U" + t for t in _INTEGERS}
TYPE_WORDS = {
    "integer": "an integer",
    "number": "a number",
    "money": "money (a decimal number with at most 4 decimals and 14 digits before the point)",
    "decimal": "a decimal number with at most 10 decimals and 18 digits before the point",
    "bool": "a boolean (true/false, 1/0, t/f, yes/no)",
    "date": "a date (YYYY-MM-DD)",
    "timestamp": "an ISO 8601 timestamp",
}


@dataclass(frozen=True)
class ColumnContract:
    name: str
    type: str
    required: bool
    warn_if_absent: bool = True  # `meta.warn_if_absent: false`: absent is the usual case
    multi_currency: bool = False  # `meta.multi_currency`: only a multi-currency export has it
    named_by: str | None = None  # the setting that names this column: every file must have it

    @property
    def sql_type(self) -> str:
        return SQL_TYPES[self.type]


@dataclass(frozen=True)
class TableContract:
    """What a valid file of one raw table looks like."""

    name: str
    relation: Relation
    columns: tuple[ColumnContract, ...]
    primary_key: tuple[str, ...] = ()
    reject_when: tuple[tuple[str, str], ...] = ()
    yml_path: str = ""
    # what a CRM's own export needs (the source's and table's `meta`):
    optional: bool = False  # the file may be absent: an empty table
    # the file may be absent when another table's file has a column ("Table.column")
    optional_with_column: str | None = None
    drop_when: tuple[tuple[str, str], ...] = ()  # rows left out and counted, not rejected
    null_values: tuple[str, ...] = ()  # values read as NULL besides the empty string
    fold_underscores: bool = False  # `StageName` and `stage_name` name one column
    encoding_fallback: str | None = None  # for files that are not valid UTF-8
    crm: str = "contract"  # the export format the table belongs to
    multi_currency: bool = False  # `meta.multi_currency`: only a multi-currency export has it

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def fold(self, name: str) -> str:
        """A file or column name as matched: trimmed, lower case, and without
        underscores where the contract says so."""
        folded = name.strip().lower()
        return folded.replace("_", "") if self.fold_underscores else folded


def table_contracts(sources: Mapping[str, SourceTable]) -> list[TableContract]:
    """The contracts of every source table marked `load_from_export`."""
    contracts = []
    for table in sorted(sources.values(), key=lambda t: (t.source_name, t.name)):
        if not table.source_meta.get("load_from_export"):
            continue
        columns = []
        for column in table.columns.values():
            kind = str(column.data_type or "text").lower()
            if kind not in SQL_TYPES:
                raise ProjectError(
                    f"column {table.name}.{column.name} has data_type '{kind}'; the loader "
                    f"knows {', '.join(SQL_TYPES)}.",
                    path=table.path,
                )
            columns.append(
                ColumnContract(
                    column.name,
                    kind,
                    bool(column.meta.get("required")),
                    bool(column.meta.get("warn_if_absent", True)),
                    bool(column.meta.get("multi_currency")),
                    column.meta.get("named_by"),
                )
            )
        rules = _rules(table, "reject_when")
        key = tuple(str(k) for k in table.meta.get("primary_key") or ())
        unknown = [k for k in key if k not in table.columns]
        if unknown:
            raise ProjectError(
                f"primary_key of {table.name} names unknown column(s) {', '.join(unknown)}.",
                path=table.path,
            )
        meta = table.source_meta
        contracts.append(
            TableContract(
                table.name,
                table.relation,
                tuple(columns),
                key,
                rules,
                table.path,
                optional=bool(table.meta.get("optional")),
                optional_with_column=table.meta.get("optional_with_column"),
                drop_when=_rules(table, "drop_when"),
                null_values=tuple(str(v) for v in meta.get("null_values") or ()),
                fold_underscores=bool(meta.get("fold_underscores")),
                encoding_fallback=meta.get("encoding_fallback"),
                crm=str(meta.get("crm") or "contract"),
                multi_currency=bool(table.meta.get("multi_currency")),
            )
        )
    return contracts


def _rules(table: SourceTable, key: str) -> tuple[tuple[str, str], ...]:
    """A table's `meta.<key>` rules: (SQL condition over the typed row, reason)."""
    rules = []
    for rule in table.meta.get(key) or []:
        if not isinstance(rule, Mapping) or "when" not in rule:
            raise ProjectError(
                f"every {key} rule of {table.name} needs `when:` and `reason:`.",
                path=table.path,
            )
        rules.append((str(rule["when"]), str(rule.get("reason") or rule["when"])))
    return tuple(rules)


def parse_value_sql(
    column: ColumnContract, value: str, source_type: str, typed_ref: str | None = None
) -> tuple[str, str]:
    """(typed value, condition that is true when a present value is invalid).

    `value` is the SQL of the column as read; `source_type` its DuckDB type.
    The condition refers to the typed value as `typed_ref` when given (a
    column of a subquery that computed it, so that each value is parsed
    once), else repeats its expression.
    """
    target = column.sql_type
    kind = column.type
    if source_type in _FLOATS and kind == "number":
        return f"cast({value} as double)", f"(isnan({value}) or isinf({value}))"
    if source_type == target and kind not in ("date",):
        return value, "false"
    if source_type.startswith("TIMESTAMP") and kind == "timestamp":
        return f"cast({value} as timestamp)", "false"
    if source_type == "DATE" and kind == "timestamp":
        return f"cast({value} as timestamp)", "false"
    if source_type == "DATE" and kind == "date":
        return value, "false"
    numeric = source_type in _INTEGERS | _FLOATS or source_type.startswith("DECIMAL")
    if numeric and kind in ("integer", "number", "money", "decimal"):
        return _exact_number_sql(value, source_type, target, typed_ref)
    if source_type == "BOOLEAN" and kind == "bool":
        return value, "false"
    text = value if source_type == "VARCHAR" else f"cast({value} as varchar)"
    if kind in ("id", "text"):
        return text, "false"
    if kind == "bool":
        return _bool_sql(text)
    typed = _timestamp_sql(text) if kind == "timestamp" else f"try_cast({text} as {target})"
    pattern = quote_literal(_PATTERNS[kind])
    invalid = f"(not regexp_full_match({text}, {pattern}) or {typed_ref or typed} is null)"
    if typed_ref is not None and kind in _WRITTEN_AS:
        written = _written_as_read(kind, text, typed_ref)
        invalid = f"case when {written} then false else {invalid} end"
    return typed, invalid


# How DuckDB writes a date or timestamp of a four-digit year (`cast(x as
# varchar)`), and Salesforce's API form of a timestamp: text equal to one of
# these matches the pattern, so its check needs no regular expression.
_WRITTEN_AS = {
    "date": ("date", ((10, None),)),
    "timestamp": ("timestamp", ((19, None), (24, "%Y-%m-%dT%H:%M:%S.%gZ"))),
}


def _written_as_read(kind: str, text: str, typed: str) -> str:
    """A condition, cheaper than the pattern, that is true only when `text`
    is exactly the typed value written back in a four-digit-year form (a
    sufficient condition for a valid value: anything else takes the pattern)."""
    sql_type, forms = _WRITTEN_AS[kind]
    low, high = f"{sql_type} '1000-01-01'", f"{sql_type} '9999-12-31'"
    written = " or ".join(
        f"(length({text}) = {length} and "
        + (f"strftime({typed}, {quote_literal(fmt)})" if fmt else f"cast({typed} as varchar)")
        + f" = {text})"
        for length, fmt in forms
    )
    return f"({typed} >= {low} and {typed} < {high} and ({written}))"


def _bool_sql(text: str) -> tuple[str, str]:
    """(typed, invalid) of a boolean's text, matched ignoring case. The usual
    spellings (`0`, `1`, `false`, `true`: a Salesforce export writes a flag on
    every row) are decided without lower-casing; they are their own lower case,
    so the verdict is the same."""
    usual = f"{text} in {_BOOL_USUAL}"
    typed = f"case when {usual} then {text} in ('1', 'true') else lower({text}) in {_BOOL_TRUE} end"
    return typed, f"(not {usual} and lower({text}) not in {_BOOL_ALL})"


def _timestamp_sql(text: str) -> str:
    """A timestamp's text as a UTC timestamp. Text with a numeric offset is
    read as TIMESTAMPTZ (the offset applies); text without one (no time, a
    naive time, or `Z`) is cast straight to TIMESTAMP: the same value in the
    warehouse's UTC session at a third of the cost. Text of another shape than
    the pattern's is rejected, whatever this returns for it.

    The usual shape, `YYYY-MM-DD HH:MM:SS` (19 characters, the 17th a colon),
    is taken first: of the pattern's shapes only that one has those two
    properties (an offset after `HH:MM` puts its sign 17th, after `HH:MM:SS`
    makes the text longer), so it has no offset to look for."""
    time_part = f"substr({text}, 11)"
    return (
        f"case when length({text}) = 19 and substr({text}, 17, 1) = ':' "
        f"then try_cast({text} as timestamp) "
        f"when contains({time_part}, '+') or contains({time_part}, '-') "
        f"then cast(try_cast({text} as timestamptz) as timestamp) "
        f"else try_cast({text} as timestamp) end"
    )


def _exact_number_sql(
    value: str, source_type: str, target: str, typed_ref: str | None = None
) -> tuple[str, str]:
    """A typed number in a column of another number type: taken only when the
    target type holds it exactly (2.6 is no integer, 1.123456 no money)."""
    typed = f"try_cast({value} as {target})"
    ref = typed_ref or typed
    invalid = f"{ref} is null"
    if source_type in _FLOATS:
        invalid = f"(isnan({value}) or isinf({value}) or {invalid})"
    if target != "DOUBLE" and source_type not in _INTEGERS:
        invalid = f"({invalid} or {ref} <> {value})"
    return typed, invalid


def bounds_sql(column: ColumnContract, typed: str) -> str | None:
    """The condition under which a parsed date or timestamp is out of bounds."""
    if column.type not in ("date", "timestamp"):
        return None
    low, high = (f"{column.sql_type.lower()} {quote_literal(b)}" for b in DATE_BOUNDS)
    return f"({typed} < {low} or {typed} >= {high})"
