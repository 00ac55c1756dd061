"""`target/manifest.json` and `target/run_results.json`, shaped like dbt's.

Both are written atomically (to a temporary file, then renamed), so a reader
never sees half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.loaded import LoadedProject

if TYPE_CHECKING:
    from runner.nodes import Node
    from runner.results import NodeResult

SCHEMA_VERSION = "kpi/manifest/v1"


def last_results(target_path: Path) -> dict[str, dict[str, Any]]:
    """The last result of every node, from `run_results.json` (empty before any run)."""
    with contextlib.suppress(OSError, ValueError):
        document = json.loads((target_path / "run_results.json").read_text("utf-8"))
        return {r["unique_id"]: r for r in document.get("results", []) if "unique_id" in r}
    return {}


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            # json.dumps without indent uses the C encoder: several times faster
            fh.write(json.dumps(document, default=str, separators=(",", ":")))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _metadata(project: LoadedProject, kind: str) -> dict[str, Any]:
    return {
        "dbt_schema_version": kind,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "project_name": project.settings.name,
        "adapter_type": "duckdb",
        "invocation_id": project.settings.env.invocation_id,
    }


def manifest(
    project: LoadedProject, compiled_paths: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The manifest document: every node, source and the parent/child maps."""
    compiled_paths = compiled_paths or {}
    nodes: dict[str, Any] = {}
    for uid, node in sorted(project.nodes.items()):
        entry = manifest_node(project, node)
        if uid in compiled_paths:
            entry["compiled_path"] = compiled_paths[uid]
        nodes[uid] = entry
    sources = {
        uid: {
            "unique_id": uid,
            "source_name": s.source_name,
            "name": s.name,
            "schema": s.schema,
            "identifier": s.identifier,
            "relation_name": str(s.relation),
            "original_file_path": s.path,
            "description": s.description,
            "columns": {
                name: {
                    "name": name,
                    "description": c.description,
                    "data_type": c.data_type,
                    "meta": dict(c.meta),
                }
                for name, c in s.columns.items()
            },
            "meta": dict(s.meta),
        }
        for uid, s in sorted(project.sources.items())
    }
    macros = {
        m.unique_id: {
            "unique_id": m.unique_id,
            "name": m.name,
            "resource_type": "macro",
            "package_name": m.package,
            "original_file_path": m.path,
            "path": m.path,
            "macro_sql": m.sql,
            "description": "",
            "arguments": [{"name": a, "type": None, "description": ""} for a in m.arguments],
            "depends_on": {"macros": project.macro_ids(m.calls)},
        }
        for m in sorted(project.macros.values(), key=lambda m: m.unique_id)
    }
    graph = project.graph
    return {
        "metadata": _metadata(project, SCHEMA_VERSION),
        "nodes": nodes,
        "sources": sources,
        "macros": macros,
        "parent_map": {uid: list(ps) for uid, ps in graph.parents.items()},
        "child_map": {uid: list(cs) for uid, cs in graph.children.items()},
    }


def manifest_node(project: LoadedProject, node: Node) -> dict[str, Any]:
    """A node as the manifest (and `kpi ls --output json`) describe it, with
    dbt's keys."""
    entry: dict[str, Any] = {
        "unique_id": node.unique_id,
        "name": node.name,
        "resource_type": node.resource_type,
        "package_name": project.settings.name,
        "original_file_path": node.path,
        "path": node.path,
        "patch_path": node.yml_path,
        "fqn": list(node.fqn),
        "checksum": {"name": "sha256", "checksum": node.checksum},
        "config": node.config.as_dict(),
        "tags": list(node.config.tags),
        "description": node.description,
        "columns": {
            name: {"name": name, "description": c.description, "data_type": c.data_type}
            for name, c in node.columns.items()
        },
        "depends_on": {"nodes": list(node.depends_on), "macros": project.macro_ids(node.macros)},
        "refs": [{"name": r} for r in node.refs],
        "sources": [list(s) for s in node.sources],
        "relation_name": None if node.is_test else str(node.relation),
        "schema": node.config.schema,
        "alias": node.config.alias or node.name,
    }
    if node.test_metadata is not None:
        entry["test_metadata"] = {
            "name": node.test_metadata["name"],
            "kwargs": dict(node.test_metadata["kwargs"]),
        }
        entry["column_name"] = node.column_name
        entry["attached_node"] = node.test_metadata["attached_node"]
    return entry


def run_results(
    project: LoadedProject,
    results: Iterable[NodeResult],
    elapsed: float,
    args: Mapping[str, Any],
) -> dict[str, Any]:
    out = []
    for r in results:
        entry = r.artifact()
        entry["timing"] = [
            {"name": "execute", "started_at": r.started_at, "completed_at": r.completed_at}
        ]
        entry["adapter_response"] = {"rows_affected": r.rows} if r.rows is not None else {}
        out.append(entry)
    return {
        "metadata": _metadata(project, "kpi/run-results/v1"),
        "elapsed_time": round(elapsed, 6),
        "args": dict(args),
        "results": out,
    }
