"""Reusing compiled SQL while nothing it was compiled from has changed.

`target/compile_cache.pickle` maps a key per node to its compiled SQL. The
key covers everything rendering reads: the node's own text, config and test
arguments, every macro file, the vars, the values of the environment
variables `env_var()` read, the warehouse path, whether it compiles as an
incremental run, and the relation (or, for an ephemeral model, the key) of
every node it depends on. Editing one model re-renders that model only; a hit
needs no Jinja at all. Keying and invalidation: `caches.py`.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from functools import cached_property
from typing import Any

from runner.caches import content_key, read_pickle, write_pickle
from runner.loaded import LoadedProject
from runner.nodes import Node

CACHE_FILE = "compile_cache.pickle"
# `target` used for anything but its type (`target.path`, `target['threads']`, `{{ target }}`)
_TARGET_BEYOND_TYPE = re.compile(r"\btarget\b(?!\s*\.\s*type\b)")
FORMAT = 4
KEEP_RUNS = 8  # an entry unused by this many runs is dropped


class CompileCache:
    """Compiled nodes, by a key of everything their rendering depended on."""

    def __init__(self, project: LoadedProject) -> None:
        self.project = project
        self.path = project.settings.target_path / CACHE_FILE
        self.entries: dict[str, Any] = {}
        self.last_used: dict[str, int] = {}  # entry -> the run that last used it
        self.run = 0
        self.used: set[str] = set()
        data = read_pickle(self.path, FORMAT)
        with contextlib.suppress(KeyError, TypeError, ValueError):
            if data is not None:
                self.entries = dict(data["entries"])
                self.last_used = dict(data["last_used"])
                self.run = int(data["run"]) + 1

    @classmethod
    def for_project(cls, project: LoadedProject) -> CompileCache:
        return cls(project)

    @cached_property
    def _shared(self) -> str:
        """What every node's rendering may read: macros, vars, env, target."""
        project = self.project
        return content_key(
            self._definition_shared,
            str(project.settings.warehouse),
            project.settings.threads,
        )

    @cached_property
    def _definition_shared(self) -> str:
        """`_shared` without where the warehouse is and how many threads build
        it, unless a template reads `target` for more than its type."""
        project = self.project
        env = sorted((name, os.environ.get(name)) for name in project.env_reads)
        location: tuple[str, int] | tuple[()] = ()
        if reads_target_location(
            [n.raw_code for n in project.nodes.values()], project.macro_sources.values()
        ):
            location = (str(project.settings.warehouse), project.settings.threads)
        return content_key(
            sorted(project.macro_sources.items()),
            sorted((str(k), repr(v)) for k, v in project.vars.items()),
            env,
            project.settings.target,
            location,
        )

    def key(self, node: Node, incremental: bool) -> str:
        """The compile cache's key of `node`: everything its rendering read."""
        return self._key(node, incremental, self._shared, frozenset())

    def definition(self, node: Node) -> str:
        """The digest of `node`'s definition that the build state records (and
        compares to decide on full rebuilds): its key as a full build compiles
        it, but with the warehouse's path and the thread count left out while
        no template reads them, so that a copied or moved warehouse, or
        `--threads 1`, rebuilds nothing."""
        return self._key(node, False, self._definition_shared, frozenset())

    def _key(self, node: Node, incremental: bool, shared: str, seen: frozenset[str]) -> str:
        nodes = self.project.nodes
        deps: list[tuple[str | None, ...]] = []
        for dep in node.depends_on:
            target = nodes.get(dep)
            if target is None:
                source = self.project.sources.get(dep)
                deps.append((dep, str(source.relation) if source else None))
            elif target.config.materialized == "ephemeral" and dep not in seen:
                deps.append((dep, self._key(target, False, shared, seen | {node.unique_id})))
            else:
                deps.append((dep, str(target.relation), str(target.config.materialized)))
        return content_key(
            shared,
            node.unique_id,
            node.raw_code,
            node.path,
            repr(node.config.as_dict()),
            repr(node.test_metadata and dict(node.test_metadata)),
            node.column_name,
            incremental,
            deps,
        )

    def get(self, node: Node, incremental: bool) -> Any:
        key = self.key(node, incremental)
        self.used.add(key)
        return self.entries.get(key)

    def put(self, node: Node, incremental: bool, value: Any) -> None:
        key = self.key(node, incremental)
        self.used.add(key)
        self.entries[key] = value

    def save(self) -> None:
        """Write the cache: entries used by one of the last `KEEP_RUNS` runs
        (`build` and `compile`, say, need different ones) stay."""
        for key in self.used:
            self.last_used[key] = self.run
        keep = {
            k: v
            for k, v in self.entries.items()
            if self.last_used.get(k, -1) > self.run - KEEP_RUNS
        }
        last_used = {k: self.last_used[k] for k in keep}
        document = {"format": FORMAT, "entries": keep, "last_used": last_used, "run": self.run}
        write_pickle(self.path, document)


def reads_target_location(*texts: Iterable[str]) -> bool:
    """Whether any template text uses `target` for more than `target.type`
    (then where the warehouse is, or the thread count, may change what it
    renders). A mention anywhere, a comment included, counts: erring this way
    only costs a full rebuild."""
    return any(_TARGET_BEYOND_TYPE.search(text) for group in texts for text in group)
