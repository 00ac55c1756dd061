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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
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
