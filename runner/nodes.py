"""The values a loaded project is made of: relations, configs and nodes.

All of them are frozen dataclasses; a loaded project never changes while it
runs. A node is a model, a seed or a data test; a source table is not a node
(nothing builds it) but models and tests depend on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any


class ResourceType(StrEnum):
    """What a node is; compares equal to its dbt word (`"model"`)."""

    MODEL = "model"
    SEED = "seed"
    TEST = "test"


class Materialization(StrEnum):
    """How a node is built; seeds and tests carry their own kind."""

    VIEW = "view"
    TABLE = "table"
    EPHEMERAL = "ephemeral"
    INCREMENTAL = "incremental"
    SEED = "seed"
    TEST = "test"


MATERIALIZATIONS = ("view", "table", "ephemeral", "incremental")  # what a model may be
INCREMENTAL_STRATEGIES = ("append", "delete+insert")
SEVERITIES = ("error", "warn")


def quote_identifier(name: str) -> str:
    """Quote one SQL identifier for DuckDB, doubling embedded double quotes."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """Quote a string as a SQL literal: `it's` -> `'it''s'`."""
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class Relation:
    """A table or view in the warehouse; renders as `"schema"."identifier"`."""

    schema: str
    identifier: str

    @property
    def name(self) -> str:
        return self.identifier

    @property
    def database(self) -> None:
        return None

    def __str__(self) -> str:
        return f"{quote_identifier(self.schema)}.{quote_identifier(self.identifier)}"

    def render(self) -> str:
        return str(self)

    @property
    def display(self) -> str:
        """`schema.identifier` without quotes, for messages."""
        return f"{self.schema}.{self.identifier}"


@dataclass(frozen=True)
class NodeConfig:
    """A node's configuration after merging folder, yml and in-file config."""

    materialized: Materialization = Materialization.VIEW
    schema: str = "main"
    alias: str | None = None
    tags: tuple[str, ...] = ()
    unique_key: tuple[str, ...] = ()
    incremental_strategy: str = "append"
    enabled: bool = True
    full_refresh: bool | None = None
    column_types: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    severity: str = "error"
    where: str | None = None
    store_failures: bool = False
    warn_if: str = "!= 0"
    error_if: str = "!= 0"
    limit: int | None = None
    meta: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    append_only: tuple[str, ...] = ()
    valid_keys: str | None = None  # a relation holding every key a delete+insert model may keep

    def as_dict(self) -> dict[str, Any]:
        return {
            "materialized": str(self.materialized),
            "schema": self.schema,
            "alias": self.alias,
            "tags": list(self.tags),
            "unique_key": list(self.unique_key),
            "incremental_strategy": self.incremental_strategy,
            "enabled": self.enabled,
            "full_refresh": self.full_refresh,
            "column_types": dict(self.column_types),
            "severity": self.severity,
            "where": self.where,
            "store_failures": self.store_failures,
            "warn_if": self.warn_if,
            "error_if": self.error_if,
            "limit": self.limit,
            "meta": dict(self.meta),
            "append_only": list(self.append_only),
            "valid_keys": self.valid_keys,
        }


@dataclass(frozen=True)
class Column:
    """A documented column: its description, type and contract flags."""

    name: str
    description: str = ""
    data_type: str | None = None
    meta: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class TestSpec:
    """A generic data test as declared in yml, before it is rendered."""

    test_name: str
    kwargs: Mapping[str, Any]
    column_name: str | None
    config: Mapping[str, Any]
    custom_name: str | None
    yml_path: str
    yml_line: int | None


@dataclass(frozen=True)
class SourceTable:
    """A table that something outside the project writes (a raw CRM table)."""

    source_name: str
    name: str
    schema: str
    identifier: str
    path: str
    description: str = ""
    columns: Mapping[str, Column] = field(default_factory=lambda: MappingProxyType({}))
    meta: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    source_meta: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    tests: tuple[TestSpec, ...] = ()

    @property
    def unique_id(self) -> str:
        return f"source.{self.source_name}.{self.name}"

    @property
    def relation(self) -> Relation:
        return Relation(self.schema, self.identifier)


@dataclass(frozen=True)
class RefRecord:
    """A `ref()` or `source()` call as rendering saw it: what it names (a
    model, or `source.table`) and the line it is on, for errors."""

    kind: str  # "ref" or "source"
    name: str
    line: int | None = None


@dataclass(frozen=True)
class Macro:
    """A Jinja macro of the project's `macros/`, or one of the runner's own
    (package `kpi`): what the manifest says of it. `calls` names the macros
    its text calls."""

    name: str
    package: str
    path: str
    sql: str
    arguments: tuple[str, ...] = ()
    calls: tuple[str, ...] = ()

    @property
    def unique_id(self) -> str:
        return f"macro.{self.package}.{self.name}"


@dataclass(frozen=True)
class Node:
    """A model, seed or data test: something the runner executes.

    `depends_on` holds unique ids of nodes and sources; `calls` the `ref()` and
    `source()` calls they were resolved from, with their lines. `attached_to` is set on
    data tests: the model whose build they audit (see `graph.attach_tests`).
    `macros` names the macros its text calls (a generic test: its test's).
    """

    unique_id: str
    resource_type: ResourceType
    name: str
    path: str
    raw_code: str
    checksum: str
    config: NodeConfig
    depends_on: tuple[str, ...] = ()
    calls: tuple[RefRecord, ...] = ()
    refs: tuple[str, ...] = ()
    sources: tuple[tuple[str, str], ...] = ()
    description: str = ""
    columns: Mapping[str, Column] = field(default_factory=lambda: MappingProxyType({}))
    fqn: tuple[str, ...] = ()
    test_metadata: Mapping[str, Any] | None = None
    column_name: str | None = None
    yml_path: str | None = None
    macros: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "resource_type", ResourceType(self.resource_type))

    @property
    def relation(self) -> Relation:
        return Relation(self.config.schema, self.config.alias or self.name)

    @property
    def is_model(self) -> bool:
        return self.resource_type == "model"

    @property
    def is_test(self) -> bool:
        return self.resource_type == "test"

    @property
    def is_seed(self) -> bool:
        return self.resource_type == "seed"
