"""The tables and columns a generated export holds, read from the sources yml.

The generator writes the raw CRM contract that `kpi load` reads: the sources
yml's `load_from_export` source, less its multi-currency part (the
`multi_currency` columns and the optional `exchange_rates` table), since a
generated export is in one currency. `CONTRACT` maps each table to its
(column, contract type) pairs in yml order; `SQL_TYPES` of `runner.raw_contract`
gives each type's DuckDB type. The other constants here say how the generator
lays out ids, files and appends.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from runner.errors import ProjectError
from runner.parsing import source_tables
from runner.raw_contract import table_contracts
from runner.yml_files import read_yml

# The project's raw contract: the generator is shipped with the project it feeds.
SOURCES_YML = Path(__file__).resolve().parents[2] / "models/staging/crm/_crm__sources.yml"

FORMATS = ("csv", "parquet")

Contract = dict[str, tuple[tuple[str, str], ...]]


@cache
def export_contract(path: Path = SOURCES_YML) -> Contract:
    """table -> ((column, contract type), ...) of a single-currency export."""
    if not path.is_file():
        raise ProjectError(
            "the raw contract the generator writes is not there.",
            path=path,
            hint="Run kpi generate from a checkout of the project (pip install -e .).",
        )
    document = read_yml(path, str(path))
    tables = {
        table.unique_id: table
        for entry in document.get("sources") or []
        for table in source_tables(entry, str(path))
    }
    contracts = {table.relation: table for table in table_contracts(tables)}
    contract: Contract = {}
    for source in tables.values():  # in yml order
        table = contracts.get(source.relation)
        if table and table.crm == "contract" and not table.multi_currency:
            columns = (column for column in table.columns if not column.multi_currency)
            contract[table.name] = tuple((column.name, column.type) for column in columns)
    if not contract:
        raise ProjectError(
            "no source with `meta: {load_from_export: true}` describes the contract tables.",
            path=path,
        )
    return contract


CONTRACT: Contract = export_contract()

# Tables that only ever gain rows: an append writes their new rows to a part file.
EVENT_TABLES = ("leads", "opportunity_stage_history", "activities")

# Every file is written sorted by these columns.
SORT_KEYS: dict[str, tuple[str, ...]] = {
    "teams": ("team_id",),
    "users": ("user_id",),
    "accounts": ("account_id",),
    "leads": ("lead_id",),
    "pipeline_stages": ("stage_order",),
    "opportunities": ("opportunity_id",),
    "opportunity_stage_history": ("opportunity_id", "entered_at", "stage_name"),
    "quotas": ("user_id", "month"),
    "activities": ("activity_id",),
    "subscriptions": ("subscription_id",),
}

# Identifier prefixes: ids are a prefix and a zero-padded number.
ID_PREFIXES = {
    "teams": "T",
    "users": "U",
    "accounts": "A",
    "leads": "L",
    "opportunities": "O",
    "activities": "ACT",
    "subscriptions": "S",
}
