"""Reusing the last parse when no project file changed (dbt's "partial parsing").

The cache in `target/parse_cache.pickle` holds the `LoadedProject` under a
key of every project file's content, the `--vars`, and the values of the
environment variables that `env_var()` read (keying and invalidation:
`caches.py`). Any difference, and the project is parsed again. Reading it
needs neither Jinja nor YAML, so `kpi ls` starts fast.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from runner.caches import content_key, file_key, read_pickle, write_pickle
from runner.loaded import LoadedProject
from runner.settings import Settings

CACHE_FILE = "parse_cache.pickle"
FORMAT = 5


def fingerprint(settings: Settings) -> list[tuple[str, int, str]]:
    """(path, size, content hash) of every file the parse read, and of the
    runner's own built-in macros. Content, not mtime: a file restored with its
    old mtime (`cp -p`, `rsync -t`, `tar`) must not reuse a stale parse."""
    root = settings.project_dir
    folders = [*settings.model_paths, *settings.seed_paths, *settings.macro_paths]
    folders += list(settings.test_paths)
    entries = []
    for path in [root / "pyproject.toml", *_files(root, folders), *_builtin_macros()]:
        with contextlib.suppress(OSError):
            entries.append(file_key(path))
    return entries


def _files(root: Path, folders: list[str]) -> list[Path]:
    found = []
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(root / folder):
            dirnames.sort()
            found += [Path(dirpath) / name for name in sorted(filenames)]
    return found


def _builtin_macros() -> list[Path]:
    here = Path(__file__).parent
    return sorted((here / "macros").glob("*.sql"))


def project_digest(settings: Settings, cli_vars: Mapping[str, Any]) -> str:
    """A digest of everything a parse reads: the files and the `--vars`."""
    return content_key(fingerprint(settings), sorted(cli_vars.items(), key=lambda kv: str(kv[0])))


def load(settings: Settings, digest: str) -> LoadedProject | None:
    """The cached project, if nothing it was parsed from has changed."""
    data = read_pickle(settings.target_path / CACHE_FILE, FORMAT)
    if data is None or data.get("digest") != digest:
        return None
    if any(os.environ.get(name) != value for name, value in data.get("env", {}).items()):
        return None
    project = data.get("project")
    if not isinstance(project, LoadedProject):
        return None
    return replace(project, settings=settings, digest=digest)


def save(settings: Settings, digest: str, project: LoadedProject) -> None:
    """Write the cache; a failure to write it is not an error.

    yml values keep their line numbers in `LineStr`/`LineDict`; they are
    pickled as plain `str`/`dict`, so that reading the cache needs no YAML.
    """
    from runner.yml_files import LineDict, LineStr

    data = {
        "format": FORMAT,
        "digest": digest,
        "env": dict(project.env_reads),
        "project": project,
    }
    write_pickle(settings.target_path / CACHE_FILE, data, [(LineStr, str), (LineDict, dict)])
