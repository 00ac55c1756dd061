"""`kpi docs generate`: the project as a static site, one self-contained
`index.html` (opens from `file://`, fetches nothing).

Every source, model, seed and data test with its description, columns (type
from the warehouse where it exists, else from the yml), tests and their last
status (`run_results.json`), compiled SQL, materialization, upstream and
downstream nodes, the macros it calls; every macro with its text, what it
calls and what calls it; the project's lineage graph; and the column-level
lineage of every model (`runner.column_lineage`), traced in the page down to
the raw columns.

    sql = compiled_sql(loaded)
    columns = warehouse_columns(loaded.settings.warehouse)
    lineage = models_lineage(loaded, sql, columns)
    data = docs_data(loaded, sql, artifacts.last_results(target), columns, lineage)
    write_site(Path("target/docs"), data)
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runner import html_assets
from runner.column_lineage import ProjectLineage
from runner.errors import KpiError
from runner.loaded import LoadedProject

WarehouseColumns = Mapping[str, Mapping[str, Mapping[str, str]]]  # schema -> table -> col -> type

LINEAGE_CACHE = "column_lineage_cache.json"


def compiled_sql(loaded: LoadedProject) -> dict[str, str]:
    """Each node's SQL as the last command compiled it: the files that
    `target/manifest.json` names (nodes without one are left out)."""
    target = loaded.settings.target_path
    root = loaded.settings.project_dir
    paths: dict[str, str] = {}
    with contextlib.suppress(OSError, ValueError):
        manifest = json.loads((target / "manifest.json").read_text("utf-8"))
        paths = {
            uid: entry["compiled_path"]
            for uid, entry in manifest.get("nodes", {}).items()
            if entry.get("compiled_path")
        }
    sql: dict[str, str] = {}
    for uid, node in loaded.nodes.items():
        if node.is_seed or uid not in paths:
            continue
        path = Path(paths[uid])
        with contextlib.suppress(OSError):
            sql[uid] = (path if path.is_absolute() else root / path).read_text("utf-8")
    return sql


def warehouse_columns(warehouse: Path) -> dict[str, dict[str, dict[str, str]]]:
    """Every column of the warehouse with its type, read-only (empty when the
    file is missing or a build holds it: the yml then says what it can)."""
    from runner.engines.duckdb import DuckDBAdapter

    out: dict[str, dict[str, dict[str, str]]] = {}
    if not warehouse.exists():
        return out
    try:
        adapter = DuckDBAdapter.open(warehouse, read_only=True)
    except KpiError:
        return out
    try:
        columns = adapter.catalog_columns()
    finally:
        adapter.close()
    for (schema, table), pairs in columns.items():
        out.setdefault(schema, {}).setdefault(table, {}).update(pairs)
    return out


def lineage_schema(
    loaded: LoadedProject, columns: WarehouseColumns
) -> dict[str, dict[str, dict[str, str]]]:
    """The columns of every relation the models read: the warehouse's, else
    the yml's (before any build)."""
    schema = {s: {t: dict(cols) for t, cols in ts.items()} for s, ts in columns.items()}
    documented = [(n.relation, n.columns) for n in loaded.nodes.values() if not n.is_test]
    documented += [(s.relation, s.columns) for s in loaded.sources.values()]
    for relation, cols in documented:
        tables = schema.setdefault(relation.schema, {})
        if relation.identifier not in tables and cols:
            tables[relation.identifier] = {n: c.data_type or "varchar" for n, c in cols.items()}
    return schema


def models_lineage(
    loaded: LoadedProject, sql: Mapping[str, str], columns: WarehouseColumns
) -> ProjectLineage:
    """The column lineage of every model, with answers cached in
    `target/column_lineage_cache.json` (by SQL and schema)."""
    from runner import artifacts
    from runner.column_lineage import project_lineage

    relations = {n.relation.display.lower(): uid for uid, n in loaded.nodes.items()}
    relations.update({s.relation.display.lower(): uid for uid, s in loaded.sources.items()})
    models = {uid: sql[uid] for uid, n in loaded.nodes.items() if n.is_model and uid in sql}
    cache_path = loaded.settings.target_path / LINEAGE_CACHE
    cache: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        cache = json.loads(cache_path.read_text("utf-8"))
    found = project_lineage(models, relations, lineage_schema(loaded, columns), cache=cache)
    if set(found.cache) != set(cache):
        with contextlib.suppress(OSError):
            artifacts.write_json(cache_path, found.cache)
    return found


def depths(parents: Mapping[str, list[str]]) -> dict[str, int]:
    """Each node's layer in the graph: 0 for nodes without parents, else one
    more than its deepest parent.

    >>> depths({"a": [], "b": ["a"], "c": ["a", "b"]})
    {'a': 0, 'b': 1, 'c': 2}
    """
    out: dict[str, int] = {}

    def depth(uid: str, trail: frozenset[str]) -> int:
        if uid not in out:
            ps = [p for p in parents.get(uid, []) if p not in trail]
            out[uid] = 1 + max((depth(p, trail | {uid}) for p in ps), default=-1)
        return out[uid]

    for uid in sorted(parents):
        depth(uid, frozenset())
    return out


def docs_data(
    loaded: LoadedProject,
    sql: Mapping[str, str],
    statuses: Mapping[str, Mapping[str, Any]],
    warehouse_columns: WarehouseColumns,
    lineage: ProjectLineage,
) -> dict[str, Any]:
    """The JSON the page reads: nodes (and macros), their graph, the column
    lineage edges."""
    graph = loaded.graph
    tests_of: dict[str, list[str]] = {}
    for uid, node in loaded.nodes.items():
        if node.is_test:
            attached = (node.test_metadata or {}).get("attached_node")
            for target in [attached] if attached else node.depends_on:
                tests_of.setdefault(target, []).append(uid)
    not_tests = {uid for uid, n in loaded.nodes.items() if not n.is_test} | set(loaded.sources)
    layer = depths({uid: [p for p in graph.parents[uid] if p in not_tests] for uid in not_tests})
    nodes: list[dict[str, Any]] = []
    for uid, source in sorted(loaded.sources.items()):
        relation = source.relation
        nodes.append(
            {
                "id": uid,
                "name": source.name,
                "label": f"{source.source_name}.{source.name}",
                "type": "source",
                "path": source.path,
                "description": source.description,
                "relation": relation.display,
                "materialized": "source table",
                "columns": _columns(
                    source.columns, warehouse_columns, relation.schema, relation.identifier
                ),
            }
        )
    for uid, node in sorted(loaded.nodes.items()):
        entry: dict[str, Any] = {
            "id": uid,
            "name": node.name,
            "label": node.name,
            "type": node.resource_type,
            "path": node.path,
            "description": node.description,
            "materialized": node.config.materialized,
            "tags": list(node.config.tags),
            "sql": sql.get(uid, ""),
            "macros": loaded.macro_ids(node.macros),
        }
        if node.is_test:
            metadata = node.test_metadata or {}
            entry["attached"] = metadata.get("attached_node") or next(iter(node.depends_on), None)
            entry["column"] = node.column_name
            entry["severity"] = node.config.severity
            entry["test_name"] = metadata.get("name", "singular")
        else:
            relation = node.relation
            entry["relation"] = relation.display
            entry["columns"] = _columns(
                node.columns, warehouse_columns, relation.schema, relation.identifier
            )
        nodes.append(entry)
    nodes += _macro_entries(loaded, nodes)
    for entry in nodes:
        uid = entry["id"]
        if entry["type"] == "macro":
            continue
        entry["upstream"] = sorted(graph.parents.get(uid, ()))
        entry["downstream"] = sorted(c for c in graph.children.get(uid, ()))
        entry["tests"] = sorted(tests_of.get(uid, []))
        entry["depth"] = layer.get(uid)
        result = statuses.get(uid)
        if result:
            entry["status"] = result.get("status")
            entry["message"] = result.get("message")
            entry["failures"] = result.get("failures")
    return {
        "project": loaded.settings.name,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nodes": nodes,
        "lineage": lineage.edges,
        "lineage_errors": lineage.errors,
    }


def _macro_entries(loaded: LoadedProject, nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The macros as pages of the site: their text, the macros they call
    (`upstream`) and the nodes and macros that call them (`downstream`)."""
    macros = {m.unique_id: m for m in loaded.macros.values()}
    called_by: dict[str, list[str]] = {uid: [] for uid in macros}
    for entry in nodes:
        for uid in entry.get("macros", ()):
            called_by[uid].append(entry["id"])
    for uid, macro in macros.items():
        for callee in loaded.macro_ids(macro.calls):
            called_by[callee].append(uid)
    return [
        {
            "id": uid,
            "name": macro.name,
            "label": macro.name,
            "type": "macro",
            "path": macro.path,
            "description": "",
            "arguments": list(macro.arguments),
            "sql": macro.sql,
            "upstream": loaded.macro_ids(macro.calls),
            "downstream": sorted(called_by[uid]),
            "tests": [],
            "depth": None,
        }
        for uid, macro in sorted(macros.items())
    ]


def _columns(
    documented: Mapping[str, Any], warehouse: WarehouseColumns, schema: str, table: str
) -> list[dict[str, Any]]:
    """Documented columns in yml order, then any the warehouse has beyond them;
    the type the warehouse reports wins over the yml's."""
    actual = {k.lower(): v for k, v in warehouse.get(schema, {}).get(table, {}).items()}
    out = []
    for name, column in documented.items():
        out.append(
            {
                "name": name,
                "type": actual.get(name.lower()) or column.data_type or "",
                "description": column.description,
            }
        )
    known = {c["name"].lower() for c in out}
    out += [
        {"name": name, "type": kind, "description": ""}
        for name, kind in actual.items()
        if name not in known
    ]
    return out


def render_site(data: Mapping[str, Any]) -> str:
    payload = json.dumps(data, separators=(",", ":"), default=str).replace("</", "<\\/")
    return html_assets.page(
        title=f"{data['project']} docs",
        css=html_assets.read("docs.css"),
        body='<div id="app"></div>',
        data_id="docs-data",
        data=payload,
        js=html_assets.read("docs.js"),
    )


def write_site(out_dir: Path, data: Mapping[str, Any]) -> Path:
    """Write `index.html` into `out_dir`; returns its path."""
    index = out_dir / "index.html"
    html_assets.write_text(index, render_site(data))
    return index


def make_server(directory: Path, port: int) -> http.server.ThreadingHTTPServer:
    """An HTTP server for `directory` on 127.0.0.1 only (port 0: any free port)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)


def serve(directory: Path, port: int) -> None:  # pragma: no cover - blocks until interrupted
    """Serve `directory` on http://127.0.0.1:PORT until interrupted."""
    with make_server(directory, port) as server:
        server.serve_forever()
