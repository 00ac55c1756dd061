"""Publishing: the marts copied to a file that readers never share with a build.

After a successful build, every table and view of the `marts` schema (the KPI
marts, the entity marts `fct_*` and `dim_*`) is written as a table to a
new DuckDB file beside the published one, which is then renamed over it
(`os.replace`, atomic on POSIX). A reader with the published file open keeps
its file (the old inode) and reads the previous version whole; a new
connection sees the new version; a reader never blocks a build, since the
build never opens the published file. A build killed while publishing leaves
only a temporary file, removed by the next publish.

    publish_marts(adapter, Path("marts.duckdb"))   # the build's DuckDB adapter
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from runner.engines.base import EngineAdapter
from runner.errors import WarehouseError
from runner.nodes import Relation

if TYPE_CHECKING:
    from runner.engines.duckdb import DuckDBAdapter

MARTS_SCHEMA = "marts"
INFO_TABLE = "publish_info"
_ALIAS = "kpi_publish"


@dataclass(frozen=True)
class Published:
    """What a publish wrote: the file, its tables with their row counts."""

    path: Path
    tables: dict[str, int]
    seconds: float


def temporary_path(published: Path) -> Path:
    """The new file, beside the published one (same file system, so the
    rename is atomic); the pid keeps two publishers apart."""
    return published.with_name(f".{published.name}.{os.getpid()}.tmp")


def remove_leftovers(published: Path) -> None:
    """Delete temporary files of publishes that were killed."""
    for leftover in published.parent.glob(f".{published.name}.*.tmp*"):
        with contextlib.suppress(OSError):
            leftover.unlink()


def publish_marts(adapter: DuckDBAdapter, published: Path) -> Published:
    """Copy every table of the `marts` schema that `adapter` sees into the `main`
    schema of a new file and rename it over `published`, with a
    `publish_info` table (published_at, table_name, row_count) that says what
    the version holds. (Named `marts.duckdb`, the file answers the same
    queries as the warehouse: `select * from marts.kpi_win_rate`.) Publishing
    writes a DuckDB file, so it takes the DuckDB adapter."""
    import time

    import duckdb

    started = time.perf_counter()
    try:
        published.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(published)
    except OSError as exc:
        raise WarehouseError(
            f"cannot publish the marts ({exc.strerror}).",
            path=published,
            hint="Check that [tool.kpi] publish names a writable folder.",
        ) from exc
    tmp = temporary_path(published)
    tables = _mart_tables(adapter)
    counts: dict[str, int] = {}
    try:
        adapter.attach(tmp, _ALIAS)
        try:
            for table in tables:
                source = Relation(MARTS_SCHEMA, table)
                counts[table] = adapter.create_table_in(_ALIAS, table, f"select * from {source}")
            _write_info(adapter, counts)
        finally:
            adapter.detach(_ALIAS)
        _fsync(tmp)
        os.replace(tmp, published)
        _fsync(published.parent)
    except (duckdb.Error, OSError) as exc:
        for path in (tmp, tmp.with_name(tmp.name + ".wal")):
            with contextlib.suppress(OSError):
                path.unlink()
        raise WarehouseError(
            f"cannot publish the marts: {str(exc).strip()}",
            path=published,
            hint="The previously published file is unchanged.",
        ) from exc
    return Published(published, counts, time.perf_counter() - started)


def _mart_tables(adapter: EngineAdapter) -> list[str]:
    """The tables and views of the `marts` schema (views are written as tables)."""
    names = sorted(name for _, name in adapter.catalog_columns([MARTS_SCHEMA]))
    return [n for n in names if n != INFO_TABLE]


def _write_info(adapter: DuckDBAdapter, counts: dict[str, int]) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = " union all ".join(
        "select cast(? as timestamp) as published_at, cast(? as varchar) as table_name, "
        "cast(? as bigint) as row_count"
        for _ in counts
    )
    select = rows or (
        "select cast(null as timestamp) as published_at, cast(null as varchar) as table_name, "
        "cast(null as bigint) as row_count where false"
    )
    params = [v for t, n in counts.items() for v in (now, t, n)]
    adapter.create_table_in(_ALIAS, INFO_TABLE, select, params)


def _fsync(path: Path) -> None:
    """Flush a file (or a folder, after a rename) to disk."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    with contextlib.suppress(OSError):
        fd = os.open(path, flags)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
