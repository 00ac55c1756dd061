"""Node configuration: the keys there are, and how layers of them merge.

A node's config is merged from, lowest first: the runner's defaults for its
kind, the folder defaults in `[tool.kpi]` (`models.marts` over `models`),
its yml entry, then its own `config()` call. A later layer wins, except for
`tags`, which add up. `make_config` checks the result into a `NodeConfig`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from runner.errors import ProjectError
from runner.nodes import INCREMENTAL_STRATEGIES, SEVERITIES, Materialization, NodeConfig

CONFIG_KEYS = frozenset(
    {
        "materialized",
        "schema",
        "alias",
        "tags",
        "unique_key",
        "incremental_strategy",
        "enabled",
        "column_types",
        "severity",
        "where",
        "store_failures",
        "warn_if",
        "error_if",
        "limit",
        "meta",
        "append_only",
        "valid_keys",
        "docs",
        "full_refresh",
        "delimiter",
        "quote_columns",
    }
)


def merge_key(into: dict[str, Any], key: str, value: Any) -> None:
    """Set one config key on `into`: a later value wins, tags add up."""
    if key == "tags":
        into["tags"] = [*as_list(into.get("tags", [])), *as_list(value)]
    else:
        into[key] = value


def folder_defaults(tree: Mapping[str, Any], relative_dir: str) -> dict[str, Any]:
    """The merged folder defaults of a resource's config tree for a folder.

    `relative_dir` is the folder below the resource's root, with `/`s:
    `"marts/finance"` merges the defaults at the root of the tree, then those
    under `marts`, then under `marts.finance`. Keys are `+key`, or bare
    config keys whose value is not a mapping (a mapping is a subfolder).
    """
    merged: dict[str, Any] = {}
    _merge_level(merged, tree)
    for part in [p for p in relative_dir.split("/") if p]:
        sub = tree.get(part)
        if not isinstance(sub, Mapping):
            break
        tree = sub
        _merge_level(merged, tree)
    return merged


def _merge_level(into: dict[str, Any], level: Mapping[str, Any]) -> None:
    for key, value in level.items():
        bare = key[1:] if key.startswith("+") else key
        if key.startswith("+") or (bare in CONFIG_KEYS and not isinstance(value, Mapping)):
            merge_key(into, bare, value)


def make_config(
    defaults: Mapping[str, Any],
    *layers: Mapping[str, Any],
    path: str,
    line: int | None = None,
) -> NodeConfig:
    """Merge config layers (later wins; tags add up) into a checked `NodeConfig`."""
    from runner.data_tests import THRESHOLD

    merged: dict[str, Any] = dict(defaults)
    for layer in layers:
        for key, value in layer.items():
            merge_key(merged, key, value)
    unknown = sorted(set(merged) - CONFIG_KEYS - {"post_hook", "pre_hook", "contract"})
    if unknown:
        raise ProjectError(
            f"unknown config key(s): {', '.join(unknown)}.",
            path=path,
            line=line,
            hint=f"Known keys: {', '.join(sorted(CONFIG_KEYS))}.",
        )
    materialized = str(merged.get("materialized", "view"))
    _check_choice("materialized", materialized, tuple(Materialization), path, line)
    config = NodeConfig(
        materialized=Materialization(materialized),
        schema=str(merged.get("schema") or "main"),
        alias=merged.get("alias"),
        tags=tuple(dict.fromkeys(str(t) for t in as_list(merged.get("tags", [])))),
        unique_key=tuple(str(k) for k in as_list(merged.get("unique_key") or [])),
        incremental_strategy=str(merged.get("incremental_strategy", "append")),
        enabled=bool(merged.get("enabled", True)),
        full_refresh=merged.get("full_refresh"),
        column_types=MappingProxyType(dict(merged.get("column_types") or {})),
        severity=str(merged.get("severity", "error")).lower(),
        where=merged.get("where"),
        store_failures=bool(merged.get("store_failures", False)),
        warn_if=str(merged.get("warn_if", "!= 0")),
        error_if=str(merged.get("error_if", "!= 0")),
        limit=merged.get("limit"),
        meta=MappingProxyType(dict(merged.get("meta") or {})),
        append_only=tuple(str(s) for s in as_list(merged.get("append_only"))),
        valid_keys=str(merged["valid_keys"]) if merged.get("valid_keys") else None,
    )
    _check_choice(
        "incremental_strategy", config.incremental_strategy, INCREMENTAL_STRATEGIES, path, line
    )
    _check_choice("severity", config.severity, SEVERITIES, path, line)
    for key in ("warn_if", "error_if"):
        if not THRESHOLD.match(getattr(config, key)):
            raise ProjectError(
                f"{key} {getattr(config, key)!r} is not a threshold.",
                path=path,
                line=line,
                hint="Write it as a comparison with a number: '!= 0', '> 10', '>= 5'.",
            )
    needs_key = config.materialized == "incremental"
    if needs_key and config.incremental_strategy == "delete+insert" and not config.unique_key:
        raise ProjectError(
            "incremental_strategy 'delete+insert' needs a unique_key.", path=path, line=line
        )
    if config.valid_keys and config.incremental_strategy != "delete+insert":
        raise ProjectError(
            "valid_keys goes with incremental_strategy 'delete+insert'.",
            path=path,
            line=line,
            hint="valid_keys names the relation that holds every unique_key the model may keep.",
        )
    return config


def _check_choice(
    key: str, value: str, choices: Iterable[str], path: str, line: int | None
) -> None:
    if value not in choices:
        raise ProjectError(
            f"{key} '{value}' is not one of {', '.join(choices)}.", path=path, line=line
        )


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]
