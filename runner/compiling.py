"""Compiling nodes: render each model or test to the exact SQL that runs.

A `Compiler` knows which relations already exist in the warehouse (for
`is_incremental()`) and whether this is a `--full-refresh` run. Refs to
ephemeral models become CTEs injected at the top of the query.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.compile_cache import CompileCache
from runner.errors import CompilationError
from runner.incremental_tests import KEYED, watermark_sql
from runner.loaded import DISABLED, DISABLED_HINT, LoadedProject
from runner.nodes import Node, NodeConfig, Relation, ResourceType, quote_identifier

if TYPE_CHECKING:
    from runner.templating import ModelContext

# Jinja (runner.templating, runner.parsing) is imported only when a node is
# rendered, not when its SQL comes from the compile cache.

_LEADING_WITH = re.compile(
    r"^(?P<lead>(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*)with(?P<recursive>\s+recursive)?\b",
    re.IGNORECASE | re.DOTALL,
)
EPHEMERAL_PREFIX = "__kpi_cte__"
INLINE_PATH = "<inline>"


@dataclass(frozen=True)
class CompiledNode:
    """A node and the SQL it runs, with what that SQL reads."""

    node: Node
    sql: str
    is_incremental: bool = False
    reads: tuple[Relation, ...] = ()
    ctes: tuple[tuple[str, str], ...] = ()


def inject_ctes(sql: str, ctes: list[tuple[str, str]]) -> str:
    """Put `ctes` (name, sql) in front of `sql`, merging with its own `with`.

    >>> inject_ctes("select * from a", [("a", "select 1")])
    'with "a" as (\\nselect 1\\n)\\nselect * from a'
    """
    if not ctes:
        return sql
    body = ",\n".join(f"{quote_identifier(n)} as (\n{s.strip()}\n)" for n, s in ctes)
    match = _LEADING_WITH.match(sql)
    if match:
        head = sql[: match.end()]
        return f"{head} {body},{sql[match.end() :]}"
    return f"with {body}\n{sql}"


@dataclass
class Compiler:
    """Renders nodes of one project for one run."""

    project: LoadedProject
    existing_tables: frozenset[tuple[str, str]] = frozenset()
    full_refresh: bool = False
    cache: CompileCache | None = None
    rebuild_in_full: frozenset[str] = frozenset()
    new_rows_tests: frozenset[str] = frozenset()
    # a target without the state table in SQL (Spark): `last_seen_load_id()` as
    # a literal, each model's remembered load
    last_seen: Mapping[str, int] | None = None
    _compiled: dict[str, CompiledNode] = field(default_factory=dict)

    @cached_property
    def _by_name(self) -> dict[str, Node]:
        return {n.name: n for n in self.project.nodes.values() if not n.is_test}

    def compile(self, node: Node) -> CompiledNode:
        """The node's SQL: from this run, from the compile cache, or rendered."""
        if node.unique_id in self._compiled:
            return self._compiled[node.unique_id]
        incremental = self.is_incremental(node)
        cached = self.cache.get(node, incremental) if self.cache else None
        if cached is not None:
            sql, reads, ctes = cached
            compiled = CompiledNode(node, sql, incremental, reads, ctes)
        elif node.is_seed:
            compiled = CompiledNode(node, "")
        elif node.is_test and node.test_metadata is not None:
            compiled = self._compile_generic_test(node)
        else:
            compiled = self._compile_template(node)
        if self.cache is not None:
            self.cache.put(node, incremental, (compiled.sql, compiled.reads, compiled.ctes))
        self._compiled[node.unique_id] = compiled
        return compiled

    def compile_inline(self, sql: str) -> str:
        """Render an ad-hoc query (`kpi show --inline`) like a model that may
        ref anything; ephemeral models become CTEs."""
        self.project.templates.add_source(INLINE_PATH, sql)
        node = Node(
            unique_id="inline",
            resource_type=ResourceType.MODEL,
            name="inline",
            path=INLINE_PATH,
            raw_code=sql,
            checksum="",
            config=NodeConfig(),
            depends_on=tuple(self.project.nodes),
        )
        return self._compile_template(node).sql

    def is_incremental(self, node: Node) -> bool:
        """Whether the node compiles as an incremental run: an incremental
        model updating its table, or a test checking only new rows."""
        if node.is_test:
            return node.unique_id in self.new_rows_tests
        if node.config.materialized != "incremental":
            return False
        full_refresh = (
            self.full_refresh if node.config.full_refresh is None else node.config.full_refresh
        )
        exists = (
            node.relation.schema.lower(),
            node.relation.identifier.lower(),
        ) in self.existing_tables
        return exists and not full_refresh and node.unique_id not in self.rebuild_in_full

    def _context(
        self, node: Node, path: str
    ) -> tuple[ModelContext, list[tuple[str, str]], list[Relation]]:
        ctes: list[tuple[str, str]] = []
        reads: list[Relation] = []
        by_name = self._by_name

        def resolve_ref(name: str, line: int | None) -> Any:
            target = by_name.get(name)
            if target is None:
                disabled = self.project.disabled_model_path(name)
                if disabled is not None:
                    raise CompilationError(
                        f"ref('{name}') names the model {disabled}, which {DISABLED}",
                        path=path,
                        line=line,
                        hint=DISABLED_HINT,
                    )
                close = difflib.get_close_matches(name, sorted(by_name), n=1)
                raise CompilationError(
                    f"ref('{name}') names no model or seed.",
                    path=path,
                    line=line,
                    hint=f"Did you mean '{close[0]}'?" if close else None,
                )
            if target.unique_id not in node.depends_on:
                raise CompilationError(
                    f"ref('{name}') was not seen when the project was parsed, so the "
                    "order of the build cannot account for it.",
                    path=path,
                    line=line,
                    hint=f"Add `-- depends_on: {{{{ ref('{name}') }}}}` at the top of the file.",
                )
            if target.config.materialized == "ephemeral":
                inner = self.compile(target)
                for cte in inner.ctes:
                    if cte[0] not in [c[0] for c in ctes]:
                        ctes.append(cte)
                reads.extend(inner.reads)
                return quote_identifier(EPHEMERAL_PREFIX + name)
            reads.append(target.relation)
            return target.relation

        def resolve_source(source_name: str, table_name: str, line: int | None) -> Relation:
            table = self.project.sources.get(f"source.{source_name}.{table_name}")
            if table is None:
                raise CompilationError(
                    f"source('{source_name}', '{table_name}') is not declared.",
                    path=path,
                    line=line,
                )
            reads.append(table.relation)
            return table.relation

        from runner.templating import ModelContext

        context = ModelContext(
            path=path,
            vars=self.project.vars,
            this=node.relation if not node.is_test else None,
            target=self.project.target,
            resolve_ref=resolve_ref,
            resolve_source=resolve_source,
            incremental=self.is_incremental(node),
            unique_id=node.unique_id,
            last_seen=None if self.last_seen is None else self.last_seen.get(node.unique_id, 0),
        )
        return context, ctes, reads

    def _compile_template(self, node: Node) -> CompiledNode:
        context, ctes, reads = self._context(node, node.path)
        sql = self.project.templates.render(node.path, context.namespace())
        if context.this is not None:
            reads.append(context.this)  # `{{ this }}` is declared: the model itself
        if node.config.materialized == "ephemeral":
            ctes = [*ctes, (EPHEMERAL_PREFIX + node.name, sql)]
            return CompiledNode(node, sql, reads=tuple(reads), ctes=tuple(ctes))
        return CompiledNode(
            node,
            inject_ctes(sql, ctes),
            is_incremental=context.incremental,
            reads=tuple(reads),
        )

    def _compile_generic_test(self, node: Node) -> CompiledNode:
        from runner.templating import evaluate_argument, is_ref_call

        meta = node.test_metadata or {}
        path = node.yml_path or node.path
        context, ctes, reads = self._context(node, path)
        namespace = context.namespace()
        attached = meta["attached_node"]
        target_relation: Any
        if attached.startswith("source."):
            target_relation = self.project.sources[attached].relation
            reads.append(target_relation)
        else:
            target = self.project.nodes[attached]
            target_relation = context.resolve_ref(target.name, None)  # type: ignore[misc]
        model: str = str(target_relation)
        if node.config.where:
            model = f"(select * from {target_relation} where {node.config.where}) as kpi_subquery"
        kwargs: dict[str, Any] = {}
        if self.is_incremental(node):
            where = f"({node.config.where}) and " if node.config.where else ""
            new_rows = (
                f"(select * from {target_relation} where {where}"
                f"_load_id > {watermark_sql(node.unique_id)}) as kpi_new_rows"
            )
            if meta["name"] in KEYED:
                kwargs["new_rows"] = new_rows
            else:
                model = new_rows
        for key, value in meta["kwargs"].items():
            if is_ref_call(value):
                value = evaluate_argument(self.project.templates, value, context, path, None)
            kwargs[key] = value
        macro_name = f"test_{meta['name']}"
        templates = self.project.templates
        call_kwargs = {"model": model, **kwargs}
        if node.column_name is not None:
            call_kwargs["column_name"] = node.column_name
        sql = templates.call_macro(macro_name, namespace, **call_kwargs).strip() + "\n"
        return CompiledNode(
            node, inject_ctes(sql, ctes), self.is_incremental(node), reads=tuple(reads)
        )


def write_compiled(target_path: Path, compiled: CompiledNode, folder: str = "compiled") -> Path:
    """Write `target/<folder>/<path>` (tests: `<yml folder>/<test name>.sql`);
    the folder is `compiled`, or `compiled/spark` for the Spark target."""
    node = compiled.node
    relative = Path(node.path)
    if node.is_test and node.test_metadata is not None:
        relative = relative.parent / f"{node.name}.sql"
    out = target_path / folder / relative
    text = compiled.sql
    if node.config.materialized == "ephemeral":
        text = inject_ctes(
            f"select * from {quote_identifier(EPHEMERAL_PREFIX + node.name)}\n", list(compiled.ctes)
        )
    try:
        if out.read_text(encoding="utf-8") == text:
            return out  # unchanged: leave the file (and its mtime) alone
    except OSError:
        out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
