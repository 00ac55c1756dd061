"""The DuckDB warehouse file: opening it, locking it, and DuckDB's errors about it.

Writers take an exclusive lock on `<warehouse>.lock` that records who holds
it (pid, command, start time), so a second build is told who to wait for
instead of getting DuckDB's bare "could not set lock" error.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from runner.errors import KpiError, LockError, ResourceError, WarehouseError

if TYPE_CHECKING:
    import duckdb


def lock_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".lock")


def describe_holder(warehouse: Path) -> str:
    """Who holds the warehouse lock, as a sentence fragment."""
    try:
        info = json.loads(lock_path(warehouse).read_text(encoding="utf-8"))
        return f"pid {info['pid']} ({info['command']}, started {info['started_at']})"
    except (OSError, ValueError, KeyError):
        return "another process"


@contextlib.contextmanager
def exclusive_lock(warehouse: Path, command: str, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the warehouse's write lock for the duration of the block."""
    path = lock_path(warehouse)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle: TextIO = path.open("a+", encoding="utf-8")
    except OSError as exc:
        raise WarehouseError(
            f"cannot create the lock file ({exc.strerror}).",
            path=path,
            hint="Check that the warehouse folder exists and is writable.",
        ) from exc
    deadline = time.monotonic() + wait_seconds
    held = False
    try:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockError(
                        f"the warehouse is in use by {describe_holder(warehouse)}.",
                        path=warehouse,
                        hint="Wait for it to finish, or pass --wait SECONDS to wait here.",
                    ) from None
                time.sleep(0.1)
        handle.seek(0)
        handle.truncate()
        handle.write(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "command": command,
                    "started_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
                }
            )
        )
        handle.flush()
        yield
    finally:
        if held:  # only the holder clears who holds it
            with contextlib.suppress(OSError):
                handle.seek(0)
                handle.truncate()
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()


def connect(
    warehouse: Path,
    *,
    read_only: bool = False,
    settings: Mapping[str, Any] | None = None,
    wait_seconds: float = 0.0,
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file with the project's DuckDB settings.

    While another process writes the file, DuckDB refuses to open it, even to
    read; `wait_seconds` waits that long for the writer to finish.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return _connect_once(warehouse, read_only, settings)
        except LockError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def _connect_once(
    warehouse: Path, read_only: bool, settings: Mapping[str, Any] | None
) -> duckdb.DuckDBPyConnection:
    import duckdb

    if read_only and not warehouse.exists():
        raise WarehouseError(
            "the warehouse does not exist yet.",
            path=warehouse,
            hint="Run `kpi build` first.",
        )
    try:
        warehouse.parent.mkdir(parents=True, exist_ok=True)
        config: dict[str, str | bool | int | float | list[str]] = {
            k: str(v) for k, v in (settings or {}).items()
        }
        con = duckdb.connect(str(warehouse), read_only=read_only, config=config)
        use_utc(con)
        return con
    except duckdb.IOException as exc:
        text = str(exc)
        if "lock" in text.lower():
            raise _file_in_use(warehouse, text, read_only) from exc
        if "could not read" in text.lower() or "not a valid duckdb" in text.lower():
            raise damaged_warehouse(warehouse, text.split("\n")[0]) from exc
        raise WarehouseError(f"cannot open the warehouse: {text}", path=warehouse) from exc
    except (duckdb.Error, OSError) as exc:
        raise WarehouseError(f"cannot open the warehouse: {exc}", path=warehouse) from exc


def _file_in_use(warehouse: Path, duckdb_message: str, read_only: bool) -> LockError:
    """The error for a warehouse file that another process has open.

    DuckDB names the process that holds its file lock: a `kpi` writer (its
    lock file then says which command) or a reader (a SQL client, a
    notebook, `kpi show`).
    """
    found = re.search(r"lock is held in (.*?) ?\(PID (\d+)\)", duckdb_message)
    writer = describe_holder(warehouse)
    if found is None or writer.startswith(f"pid {found.group(2)} "):
        who = writer
    else:
        program = f" ({found.group(1)})" if found.group(1) else ""
        who = f"pid {found.group(2)}{program}, which has the DuckDB file open"
    action = "read" if read_only else "write"
    return LockError(
        f"the warehouse is in use by {who}; DuckDB lets no other process {action} it meanwhile.",
        path=warehouse,
        hint="Close that connection or wait for that command to finish, or pass "
        "--wait SECONDS to wait here.",
    )


def use_utc(con: duckdb.DuckDBPyConnection) -> None:
    """Make TIMESTAMPTZ arithmetic UTC, whatever the machine's time zone.

    The setting is global: a cursor (`con.cursor()`, one per thread) starts
    from the global settings, not from its parent's session, so a session
    `SET TimeZone` would leave every cursor in the machine's zone. Without
    ICU, DuckDB's time zone is always UTC.
    """
    import duckdb

    with contextlib.suppress(duckdb.Error):
        con.execute("set global TimeZone = 'UTC'")
        con.execute("set TimeZone = 'UTC'")


MEMORY_HINT = (
    "Raise DuckDB's limit: KPI_DUCKDB_MEMORY_LIMIT=8GB in the environment, or "
    'memory_limit = "8GB" under [tool.kpi.duckdb] in pyproject.toml; fewer threads '
    "(KPI_DUCKDB_THREADS) also need less memory."
)
DISK_FULL_WORDS = ("no space left", "file too large", "disk quota")


def duckdb_failure(con: duckdb.DuckDBPyConnection, exc: BaseException) -> KpiError | None:
    """A DuckDB error that is the machine's or the warehouse's fault, not the
    data's: out of memory, a full disk, a damaged warehouse file. None for
    any other error."""
    import duckdb

    text = str(exc).strip().split("\n")[0]
    if isinstance(exc, duckdb.OutOfMemoryException):
        limit = _setting(con, "memory_limit")
        return ResourceError(
            f"DuckDB ran out of memory (memory_limit is {limit}): {text}.", hint=MEMORY_HINT
        )
    warehouse = _database_path(con)
    if any(word in text.lower() for word in DISK_FULL_WORDS):
        return ResourceError(
            f"the disk is full (writing the warehouse failed: {text}); nothing of this "
            "step was kept.",
            path=warehouse,
            hint="Free some space and run the command again.",
        )
    about_warehouse = warehouse is not None and (
        warehouse in str(exc) or "database file" in str(exc).lower()
    )
    if about_warehouse and isinstance(exc, duckdb.IOException | duckdb.InternalException):
        return damaged_warehouse(Path(str(warehouse)), text)
    return None


def damaged_warehouse(warehouse: Path, detail: str) -> WarehouseError:
    return WarehouseError(
        f"the warehouse file is damaged (truncated or corrupt): {detail}.",
        path=warehouse,
        hint="Restore it from a backup, or delete it and run `kpi build` to rebuild it "
        "from the export.",
    )


def _setting(con: duckdb.DuckDBPyConnection, name: str) -> str:
    try:
        row = con.execute("select current_setting(?)", [name]).fetchone()
    except Exception:  # noqa: BLE001 - a connection that failed may refuse even this
        return "unknown"
    return str(row[0]) if row else "unknown"


def _database_path(con: duckdb.DuckDBPyConnection) -> str | None:
    try:
        row = con.execute(
            "select path from duckdb_databases() where database_name = current_database()"
        ).fetchone()
    except Exception:  # noqa: BLE001 - a connection that failed may refuse even this
        return None
    return str(row[0]) if row and row[0] else None
