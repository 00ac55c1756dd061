"""`LoadedProject`: the value that parsing returns and every command reads.

It is plain data (settings, nodes, sources, vars and the text of every
template), so it can be cached between runs; its Jinja environment is built
only when something is rendered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from runner.errors import ProjectError
from runner.nodes import Macro, Node, SourceTable
from runner.settings import Settings

if TYPE_CHECKING:
    from runner.graph import Graph
    from runner.metrics import Metric
    from runner.templating import Target, Templates


# what is said of a model that exists but is not enabled (a CRM's staging
# models are enabled only for an export of that CRM)
DISABLED = "is disabled: its `enabled` config is false."
DISABLED_HINT = (
    "A CRM's staging models are enabled for an export of that CRM: name the export's "
    "folder (--raw-dir DIR, or KPI_RAW_DIR=DIR); another model, by its `enabled` config."
)


@dataclass(frozen=True, eq=False)
class LoadedProject:
    """A parsed project: everything needed to select, compile and run it."""

    settings: Settings
    nodes: Mapping[str, Node]
    sources: Mapping[str, SourceTable]
    vars: Mapping[str, Any]
    template_sources: Mapping[str, str] = field(default_factory=dict)
    macro_sources: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    env_reads: Mapping[str, str | None] = field(default_factory=dict)
    digest: str = ""
    metrics: Mapping[str, Metric] = field(default_factory=dict)
    macros: Mapping[str, Macro] = field(default_factory=dict)  # by name
    parsed_with: Templates | None = field(default=None, repr=False)  # not cached to disk

    @cached_property
    def templates(self) -> Templates:
        """The project's Jinja environment: the one the parse rendered with, or
        one built on first use."""
        if self.parsed_with is not None:
            return self.parsed_with
        from runner.templating import Templates

        return Templates(
            self.template_sources,
            self.macro_sources,
            cache_dir=self.settings.target_path / "jinja_cache",
        )

    @cached_property
    def graph(self) -> Graph:
        """The dependency graph of every node and source, built once and shared
        by selection, planning, build state and the artifacts."""
        from runner.graph import Graph

        parents: dict[str, Iterable[str]] = {uid: n.depends_on for uid, n in self.nodes.items()}
        parents.update({uid: () for uid in self.sources})
        return Graph(parents)

    def macro_ids(self, names: Iterable[str]) -> list[str]:
        """The unique ids of the macros named (names of no macro left out)."""
        return [self.macros[n].unique_id for n in names if n in self.macros]

    def node_by_name(self, name: str, resource_types: Iterable[str] = ("model", "seed")) -> Node:
        types = set(resource_types)
        for node in self.nodes.values():
            if node.name == name and node.resource_type in types:
                return node
        disabled = self.disabled_model_path(name) if "model" in types else None
        if disabled is not None:
            raise ProjectError(f"the model '{name}' ({disabled}) {DISABLED}", hint=DISABLED_HINT)
        raise ProjectError(f"no {' or '.join(sorted(types))} named '{name}'.")

    def disabled_model_path(self, name: str) -> str | None:
        """The path of a model file named `name` that the parse left out (its
        `enabled` config is false), or None."""
        root = self.settings.project_dir
        for folder in self.settings.model_paths:
            for path in sorted((root / folder).rglob(f"{name}.sql")):
                return path.relative_to(root).as_posix()
        return None

    @property
    def target(self) -> Target:
        from runner.templating import Target

        settings = self.settings
        if settings.target == "spark":
            return Target(name="spark", type="spark", path=str(settings.warehouse), threads=1)
        return Target(path=str(settings.warehouse), threads=settings.threads)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("templates", None)
        state["parsed_with"] = None
        state.pop("graph", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
