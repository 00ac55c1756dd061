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
from functools import cached_property
from typing import Any

from runner.caches import content_key, read_pickle, write_pickle
from runner.loaded import LoadedProject
from runner.nodes import Node

CACHE_FILE = "compile_cache.pickle"
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
        env = sorted((name, os.environ.get(name)) for name in project.env_reads)
        return content_key(
            sorted(project.macro_sources.items()),
            sorted((str(k), repr(v)) for k, v in project.vars.items()),
            env,
            str(project.settings.warehouse),
            project.settings.threads,
            project.settings.target,
        )

    def key(self, node: Node, incremental: bool, _seen: frozenset[str] = frozenset()) -> str:
        nodes = self.project.nodes
        deps: list[tuple[str | None, ...]] = []
        for dep in node.depends_on:
            target = nodes.get(dep)
            if target is None:
                source = self.project.sources.get(dep)
                deps.append((dep, str(source.relation) if source else None))
            elif target.config.materialized == "ephemeral" and dep not in _seen:
                deps.append((dep, self.key(target, False, _seen | {node.unique_id})))
            else:
                deps.append((dep, str(target.relation), str(target.config.materialized)))
        return content_key(
            self._shared,
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
