"""Reusing the last parse when no project file changed (dbt's "partial parsing").

The cache in `target/parse_cache.pickle` holds the `LoadedProject` with a
fingerprint of every project file (path, size, mtime), the `--vars` and the
environment variables that `env_var()` read. Any difference, and the project
is parsed again. Reading it needs neither Jinja nor YAML, so `kpi ls` starts
fast.
"""

from __future__ import annotations

import contextlib
import copyreg
import hashlib
import os
import pickle
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from runner.loaded import LoadedProject
from runner.settings import Settings

CACHE_FILE = "parse_cache.pickle"
FORMAT = 3


def _read_only(mapping: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(mapping)


copyreg.pickle(MappingProxyType, lambda m: (_read_only, (dict(m),)))


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
            data = path.read_bytes()
            entries.append(
                (str(path), len(data), hashlib.blake2b(data, digest_size=16).hexdigest())
            )
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
    text = repr((fingerprint(settings), sorted(cli_vars.items(), key=lambda kv: str(kv[0]))))
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def load(settings: Settings, digest: str) -> LoadedProject | None:
    """The cached project, if nothing it was parsed from has changed."""
    try:
        with (settings.target_path / CACHE_FILE).open("rb") as fh:
            data = pickle.load(fh)
    except Exception:  # noqa: BLE001 - any unreadable cache is no cache
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    if data.get("digest") != digest:
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

    # reduce to the base type: what is unpickled is a plain str / dict
    copyreg.pickle(LineStr, lambda s: (str, (str(s),)))  # type: ignore[arg-type,return-value]
    copyreg.pickle(LineDict, lambda d: (dict, (dict(d),)))  # type: ignore[arg-type,return-value]
    data = {
        "format": FORMAT,
        "digest": digest,
        "env": dict(project.env_reads),
        "project": project,
    }
    path = settings.target_path / CACHE_FILE
    tmp = path.with_suffix(".tmp")
    try:
        payload = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(payload)
        os.replace(tmp, path)
    except (OSError, pickle.PicklingError, TypeError, AttributeError):
        with contextlib.suppress(OSError):
            tmp.unlink()
