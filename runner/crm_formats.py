"""Which CRM wrote an export folder: `contract`, `salesforce` or `hubspot`.

The format decides which raw contract the loader reads and which staging
models the project parses, so it is known before the project is parsed and is
part of the parse and compile cache keys (as the vars `crm` and
`crm_contract_tables`).

    >>> detect_format(Path("runner/crm/demo_export"))
    'contract'

| format | detected by |
|---|---|
| contract | `opportunities.csv` / `.parquet` |
| salesforce | `Opportunity.csv`, or `opportunity.csv|parquet` with a `stage_name` column |
| hubspot | `deal.csv` / `.parquet` |

A contract-format file placed beside a CRM export (`quotas.csv`, ...) is
used for its table instead of the mapping: `contract_tables` names them.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from runner.errors import ProjectError
from runner.raw_contract import TableContract

FORMATS = ("contract", "salesforce", "hubspot")
# contract tables a CRM export may carry beside it, in the contract's format
OVERRIDABLE = ("quotas", "subscriptions", "teams", "exchange_rates")
CRM_VAR = "crm"
CONTRACT_TABLES_VAR = "crm_contract_tables"
MISSING_TABLES_VAR = "crm_missing_tables"
# contract tables a CRM has no standard object for (SOURCES.md)
LACKS = {"hubspot": ("quotas", "subscriptions")}
# the marts that hold no rows without them
MARTS_NEEDING = {"quotas": "kpi_quota_attainment", "subscriptions": "kpi_churn"}
# `[tool.kpi.salesforce]` settings that name a Lead datetime field, and the
# lead column each fills; the var passes {column: field} to the models
LEAD_FIELD_SETTINGS = {"lead_mql_at_field": "mql_at", "lead_sql_at_field": "sql_at"}
LEAD_FIELDS_VAR = "salesforce_lead_fields"
_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class ExportFormat:
    """The format of an export, how it was decided, and the contract-format
    tables placed beside a CRM export."""

    name: str
    how: str  # "detected", "forced" or "default"
    contract_tables: tuple[str, ...] = ()
    corporate_currency: str | None = None  # the reporting currency by default

    @property
    def missing_tables(self) -> tuple[str, ...]:
        """Contract tables neither the CRM nor a contract-format file provides."""
        return tuple(t for t in LACKS.get(self.name, ()) if t not in self.contract_tables)

    def as_vars(self) -> dict[str, Any]:
        return {
            CRM_VAR: self.name,
            CONTRACT_TABLES_VAR: list(self.contract_tables),
            MISSING_TABLES_VAR: list(self.missing_tables),
        }

    def missing_text(self) -> list[str]:
        """What the build output says about tables the CRM cannot provide."""
        return [
            f"{self.name} has no standard {table} object and no {table}.csv was given beside "
            f"the export: {MARTS_NEEDING[table]} holds no rows (put a contract-format "
            f"{table}.csv in the export folder to fill it)."
            for table in self.missing_tables
        ]

    def describe(self) -> str:
        text = f"Export format: {self.name} ({self.how})"
        if self.contract_tables:
            text += "; contract-format file(s) used instead of the mapping: " + ", ".join(
                self.contract_tables
            )
        return text


def _stems(export_dir: Path) -> dict[str, Path]:
    """Base files of the folder by lower-case name (`opportunity.csv`)."""
    try:
        entries = sorted(export_dir.iterdir())
    except OSError:
        return {}
    return {
        p.name.lower(): p
        for p in entries
        if p.suffix.lower() in (".csv", ".parquet") and p.is_file()
    }


def file_columns(path: Path) -> list[str]:
    """The column names of a CSV or Parquet file (lower case)."""
    return _columns(path)


def _columns(path: Path) -> list[str]:
    """The column names of a CSV or Parquet file (lower case)."""
    if path.suffix.lower() == ".parquet":
        import duckdb

        try:
            with duckdb.connect() as con:
                rows = con.execute(
                    f"describe select * from read_parquet({_literal(str(path))})"
                ).fetchall()
        except duckdb.Error:
            return []
        return [str(r[0]).lower() for r in rows]
    try:
        with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as fh:
            return [c.strip().lower() for c in next(csv.reader(fh), [])]
    except OSError:
        return []


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def detect_format(export_dir: Path) -> str:
    """The format of the files in `export_dir` (`contract` when unsure)."""
    files = _stems(export_dir)
    if any(f"opportunities.{ext}" in files for ext in ("csv", "parquet")):
        return "contract"
    for ext in ("csv", "parquet"):
        path = files.get(f"opportunity.{ext}")
        if path is not None and path.name == "Opportunity.csv":
            return "salesforce"
        if path is not None and {"stage_name", "stagename"} & set(_columns(path)):
            return "salesforce"
    if any(f"deal.{ext}" in files for ext in ("csv", "parquet")):
        return "hubspot"
    return "contract"


def contract_tables(export_dir: Path, name: str) -> tuple[str, ...]:
    """Contract tables given in the contract's format beside a CRM export."""
    if name == "contract":
        return ()
    files = _stems(export_dir)
    return tuple(t for t in OVERRIDABLE if any(f"{t}.{ext}" in files for ext in ("csv", "parquet")))


def resolve_format(
    forced: str | None, configured: str | None, export_dir: Path | None
) -> ExportFormat:
    """`--crm`, then `[tool.kpi] crm`, then what the export folder holds."""
    for value, where in ((forced, "--crm"), (configured, "[tool.kpi] crm")):
        if value is None:
            continue
        if value not in FORMATS:
            raise ProjectError(
                f"{where} must be one of {', '.join(FORMATS)}, not '{value}'.",
                hint="Leave it out to detect the format from the export's files.",
            )
        if export_dir is None or not export_dir.is_dir():
            return ExportFormat(value, "forced")
        tables = contract_tables(export_dir, value)
        return ExportFormat(value, "forced", tables, corporate_currency(export_dir, value))
    if export_dir is None or not export_dir.is_dir():
        return ExportFormat("contract", "default")
    name = detect_format(export_dir)
    return ExportFormat(
        name, "detected", contract_tables(export_dir, name), corporate_currency(export_dir, name)
    )


def corporate_currency(export_dir: Path, name: str) -> str | None:
    """A Salesforce org's corporate currency (the `CurrencyType` row with
    IsCorporate), which KPI_SPEC section 5 makes the reporting currency unless
    `reporting_currency` says otherwise."""
    if name != "salesforce":
        return None
    files = _stems(export_dir)
    for stem in ("currencytype", "currency_type"):
        for ext in ("csv", "parquet"):
            path = files.get(f"{stem}.{ext}")
            if path is not None:
                return _corporate_code(_rows(path))
    return None


def _rows(path: Path) -> list[dict[str, str]]:
    """The rows of a small CSV or Parquet file as text, keys folded."""
    if path.suffix.lower() == ".parquet":
        import duckdb

        try:
            with duckdb.connect() as con:
                cur = con.execute(f"select * from read_parquet({_literal(str(path))})")
                names = [d[0] for d in cur.description]
                rows = [dict(zip(names, (str(v) for v in r), strict=True)) for r in cur.fetchall()]
        except duckdb.Error:
            return []
    else:
        try:
            with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as fh:
                rows = [{k: v for k, v in row.items() if k} for row in csv.DictReader(fh)]
        except OSError:
            return []
    return [{k.strip().lower().replace("_", ""): v for k, v in row.items()} for row in rows]


def _corporate_code(rows: list[dict[str, str]]) -> str | None:
    for row in rows:
        if str(row.get("iscorporate", "")).strip().lower() in ("1", "true"):
            return str(row.get("isocode") or "").strip().upper() or None
    return None


def salesforce_vars(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The vars `[tool.kpi.salesforce]` sets: the Lead fields that fill
    `mql_at` / `sql_at` (`{LEAD_FIELDS_VAR: {"mql_at": "MQL_Date__c"}}`), or
    none when no field is named."""
    unknown = sorted(set(settings) - set(LEAD_FIELD_SETTINGS))
    if unknown:
        raise ProjectError(
            f"[tool.kpi.salesforce] has unknown setting(s) {', '.join(unknown)}.",
            path="pyproject.toml",
            hint=f"It knows {', '.join(LEAD_FIELD_SETTINGS)}.",
        )
    fields = {}
    for key, column in LEAD_FIELD_SETTINGS.items():
        value = settings.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not _FIELD_NAME.match(value):
            raise ProjectError(
                f"[tool.kpi.salesforce] {key} must name a Lead field by its API name, "
                f"such as 'MQL_Date__c', not {value!r}.",
                path="pyproject.toml",
                hint="Fix it, or leave it out to keep the leads' "
                f"{column} empty (Salesforce has no standard field for it).",
            )
        fields[column] = value
    return {LEAD_FIELDS_VAR: fields} if fields else {}


def with_lead_fields(
    sources: Mapping[str, Any], fields: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The sources with the Lead fields `[tool.kpi.salesforce]` names in the
    Salesforce `Lead` table's contract (a timestamp column that every Lead
    file must have, its values may be empty), and those fields as the contract
    spells them (a field the contract already reads keeps its spelling)."""
    from runner.nodes import Column

    kept = dict(sources)
    spelled = dict(fields)
    if not fields:
        return kept, spelled
    by_column = {column: key for key, column in LEAD_FIELD_SETTINGS.items()}
    for uid, table in sources.items():
        if table.source_meta.get("crm") != "salesforce" or table.name != "Lead":
            continue
        columns = dict(table.columns)
        folded = {_fold(name): name for name in columns}
        for column, field_name in fields.items():
            setting = f"[tool.kpi.salesforce] {by_column[column]}"
            name = folded.get(_fold(field_name), field_name)
            old = columns.get(name)
            if old is not None and str(old.data_type or "text").lower() != "timestamp":
                raise ProjectError(
                    f"{setting} names the Lead field {field_name}, which the mapping reads "
                    f"as {old.data_type}, not as a datetime.",
                    path="pyproject.toml",
                    hint="Name a Lead date or datetime field, such as 'MQL_Date__c'.",
                )
            meta = {**(old.meta if old else {}), "named_by": setting}
            description = (
                old.description
                if old
                else (f"The Lead field that {setting} names: the lead's {column}.")
            )
            columns[name] = Column(name, description, "timestamp", MappingProxyType(meta))
            spelled[column] = name
        kept[uid] = replace(table, columns=MappingProxyType(columns))
    return kept, spelled


def _fold(name: str) -> str:
    return name.strip().lower().replace("_", "")


def active_sources(
    sources: Mapping[str, Any], crm: str, contract_tables: tuple[str, ...] | list[str]
) -> dict[str, Any]:
    """The source tables a project with format `crm` reads: the tables of the
    sources whose `meta.crm` is that format (`contract` when unset), plus the
    contract tables given beside a CRM export (without their data tests,
    whose references point at contract tables that are not loaded), and every
    source that is not loaded from an export."""
    from dataclasses import replace

    kept = {}
    for uid, table in sources.items():
        meta = table.source_meta
        if not meta.get("load_from_export"):
            kept[uid] = table
            continue
        format_name = str(meta.get("crm") or "contract")
        if format_name == crm:
            kept[uid] = table
        elif format_name == "contract" and table.name in contract_tables:
            kept[uid] = replace(table, tests=())
    return kept


def load_notes(
    con: Any, export_format: ExportFormat, contracts: Sequence[TableContract]
) -> list[str]:
    """What the load tells about rows the mapping leaves out that no single
    row's values decide (the loader counts the others as `drop_when` rules):
    Salesforce events that start after the export's newest SystemModstamp."""
    if export_format.name != "salesforce":
        return []
    stamped = [c for c in contracts if c.crm == "salesforce" and "SystemModstamp" in c.column_names]
    events = next((c for c in stamped if c.name == "Event"), None)
    if events is None:
        return []
    newest = " union all ".join(
        f'select max("SystemModstamp") as s from {c.relation}' for c in stamped
    )
    row = con.execute(
        f'select count(*) from {events.relation} where coalesce("ActivityDateTime", '
        f'"ActivityDate") > (select max(s) from ({newest}))'
    ).fetchone()
    later = int(row[0]) if row else 0
    if not later:
        return []
    return [
        f"Event: {later:,} event(s) after the export's newest SystemModstamp (not held yet): "
        "not counted as activities."
    ]
