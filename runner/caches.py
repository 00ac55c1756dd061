"""The runner's caches in `target/`: one keying rule, one invalidation story.

Keying: every cached answer is filed under `content_key(...)` of everything
it was derived from, read as content (file bytes, template text, config,
vars, the values of environment variables, SQL text), never under metadata
alone: a file restored with its old size and mtime (`cp -p`, `rsync -t`,
`tar`) must not reuse a stale answer.

Invalidation: nothing is ever invalidated by hand. A change of content is a
change of key, and an entry under a key nobody asks for again is dead: the
compile cache drops entries unused for a few runs, the others are rewritten
whole. A cache that cannot be read (missing, corrupt, an older format) is
an empty cache; one that cannot be written is not an error; `kpi clean`
removes them all.

- `parse_cache.pickle`, the `LoadedProject`: keyed by every project file's
  bytes and the `--vars`; the values of the `env_var()`s read are checked.
- `compile_cache.pickle`, compiled SQL per node: keyed by the node's text
  and config, the macros, vars, env values and its dependencies.
- `sql_cache.json`, whether DuckDB parses a query and which tables sqlglot
  says it reads: keyed by the SQL text.
- `warehouse_tables.json`, the tables of the warehouse: keyed by
  `warehouse_version` (the DuckDB file's headers and write-ahead log, read
  as content, with its inode and change time).
"""

from __future__ import annotations

import contextlib
import copyreg
import hashlib
import io
import json
import os
import pickle
from collections.abc import Callable, Iterable
from pathlib import Path
from types import MappingProxyType
from typing import Any

TABLES_FILE = "warehouse_tables.json"
_HEADER_BYTES = 3 * 4096  # DuckDB's main header and its two database headers


def content_key(*parts: object) -> str:
    """The key of a cached answer: a digest of the content it was made from."""
    return hashlib.blake2b(repr(parts).encode("utf-8"), digest_size=16).hexdigest()


def file_key(path: Path) -> tuple[str, int, str]:
    """(path, size, content digest) of a file; OSError when it cannot be read."""
    data = path.read_bytes()
    return str(path), len(data), hashlib.blake2b(data, digest_size=16).hexdigest()


# -- pickled caches -------------------------------------------------------------------


def _read_only(mapping: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(mapping)


def _as_base(base: type) -> Callable[[Any], tuple[Any, ...]]:
    return lambda value: (base, (base(value),))


def read_pickle(path: Path, format: int) -> dict[str, Any] | None:
    """A pickled cache document of this `format`, or None."""
    try:
        data = pickle.loads(path.read_bytes())
    except Exception:  # noqa: BLE001 - any unreadable cache is no cache
        return None
    if not isinstance(data, dict) or data.get("format") != format:
        return None
    return data


def write_pickle(
    path: Path, document: dict[str, Any], as_base: Iterable[tuple[type, type]] = ()
) -> None:
    """Write a cache document atomically; a failure to write is not an error.

    Read-only mappings are pickled as such; each `(subclass, base)` of
    `as_base` is pickled as its base type (yml values that carry their line,
    so that reading the cache needs no YAML). The reducers belong to this
    pickler only: nothing global is registered.
    """
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    table: dict[type, Callable[[Any], Any]] = dict(copyreg.dispatch_table)
    table[MappingProxyType] = lambda m: (_read_only, (dict(m),))
    for subclass, base in as_base:
        table[subclass] = _as_base(base)
    pickler.dispatch_table = table
    try:
        pickler.dump(document)
    except (pickle.PicklingError, TypeError, AttributeError):
        return
    _write_atomically(path, buffer.getvalue())


def _write_atomically(path: Path, payload: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(payload)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()


# -- JSON caches ----------------------------------------------------------------------


def read_json(path: Path, format: int) -> dict[str, Any] | None:
    """A JSON cache document of this `format`, or None."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != format:
        return None
    return data


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write a JSON cache document atomically; a failure is not an error."""
    _write_atomically(path, json.dumps(document, separators=(",", ":")).encode("utf-8"))


# -- the tables note --------------------------------------------------------------------

TABLES_FORMAT = 2


def warehouse_version(path: Path) -> str | None:
    """A key that changes whenever the warehouse file's content may have.

    DuckDB writes a new database header (with a higher iteration) at every
    checkpoint and keeps uncommitted-to-file work in `<file>.wal`: the key
    covers the header blocks and the log, read as content, plus the inode
    and change time (which no tool can set back). None when there is no file.
    """
    try:
        stat = path.stat()
        with path.open("rb") as fh:
            header = fh.read(_HEADER_BYTES)
    except OSError:
        return None
    wal = Path(f"{path}.wal")
    try:
        log: bytes | None = wal.read_bytes()
    except OSError:
        log = None
    return content_key(header, log, stat.st_ino, stat.st_size, stat.st_ctime_ns, stat.st_mtime_ns)


def remember_tables(target_path: Path, warehouse: Path, tables: Iterable[tuple[str, str]]) -> None:
    """Note which tables the warehouse holds, as of its current version, so
    that `compile` need not open it while nothing changed."""
    version = warehouse_version(warehouse)
    if version is None:
        return
    document = {
        "format": TABLES_FORMAT,
        "warehouse": str(warehouse),
        "version": version,
        "tables": sorted(tables),
    }
    write_json(target_path / TABLES_FILE, document)


def remembered_tables(target_path: Path, warehouse: Path) -> frozenset[tuple[str, str]] | None:
    """The noted tables, if the warehouse is still the version they were noted at."""
    note = read_json(target_path / TABLES_FILE, TABLES_FORMAT)
    if note is None or note.get("warehouse") != str(warehouse):
        return None
    if note.get("version") != warehouse_version(warehouse):
        return None
    with contextlib.suppress(TypeError, ValueError):
        return frozenset((str(s), str(t)) for s, t in note["tables"])
    return None
