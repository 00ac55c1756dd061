"""The files of a raw export, what was loaded from them, and lines in them.

A table is `<table>.csv` or `<table>.parquet`, plus appended parts
`<table>.<part>.csv|parquet` loaded after it in name order. The state table
`_kpi.load_state` (owned by `state_tables.py`) remembers each loaded file's
size, mtime and SHA-256, so that files with the same content are skipped and
new parts are appended.

Whether a loaded file is unchanged is decided by its bytes, with one
shortcut: a file whose size, mtime, change time (ctime), inode and device
all equal what was recorded is not read again, provided the recorded ctime
was at least `SETTLED_NS` older than the moment the file was opened for
that load. No ordinary tool sets a ctime (`cp -p`, `rsync -t` and `touch -d`
set the mtime, and the ctime to now), a rewrite in place changes it, a file
renamed over the old one has another inode; and a file that changed within the
clock tick of its ctime is hashed again until it has settled (git's "racy
timestamp" rule). The shortcut is taken only on the local file systems of
Linux that keep a change time of their own (`CTIME_FILESYSTEMS`, found in
/proc/self/mountinfo by the file's device): FAT and exFAT report the mtime
as the ctime, and network and FUSE file systems (sshfs, SMB) may report
another clock's or none; there, and on any other system, the bytes decide.
`kpi load --full-refresh` reads every file regardless.

Each file is opened once, and every later read (its hash, DuckDB's scans,
line numbers) goes through that open descriptor as `/proc/self/fd/N`: a path
with no glob characters that always reads the same file, even when another
process renames a new version over it during the load. The read that hashes
a file also tells whether it is UTF-8, when the load will ask (a CSV file of
a contract with an encoding to fall back to).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from runner import state_tables
from runner.errors import LoadError
from runner.raw_contract import TableContract
from runner.raw_encoding import CHUNK, Utf8Check, is_utf8

if TYPE_CHECKING:
    from runner.engines.base import EngineAdapter

FD_DIR = Path("/proc/self/fd")
GLOB_CHARACTERS = frozenset("*?[]{}")
# a file's stat is trusted only when its last change was this long before it
# was opened: many clock ticks of any file system's time stamps
SETTLED_NS = 3_000_000_000
# local file systems whose ctime the kernel sets at every change of the file
CTIME_FILESYSTEMS = frozenset(
    {"ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "zfs", "bcachefs", "tmpfs"}
)
MOUNTINFO = Path("/proc/self/mountinfo")


@dataclass(frozen=True)
class ExportFile:
    """One file of an export, open for reading (`fd`) for the whole load."""

    table: str
    path: Path
    size: int
    mtime_ns: int
    fd: int = -1
    ctime_ns: int = 0
    inode: int = 0
    device: int = 0
    opened_at_ns: int = 0  # the local clock just before the file was opened
    check_utf8: bool = False  # whether hashing also tells whether the file is UTF-8

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def is_parquet(self) -> bool:
        return self.path.suffix.lower() == ".parquet"

    @property
    def read_path(self) -> Path:
        """The path to read the opened file by: its descriptor under
        /proc/self/fd, else (no /proc) its own path, which must then hold no
        character DuckDB would take for a glob."""
        if self.fd >= 0 and FD_DIR.is_dir():
            return FD_DIR / str(self.fd)
        if GLOB_CHARACTERS & set(str(self.path)):
            raise LoadError(
                "has a name DuckDB would read as a pattern (one of * ? [ ] { }).",
                path=self.path,
                hint="Rename the file or its folder.",
            )
        return self.path

    @property
    def settled_stat(self) -> tuple[int, int, int, int, int] | None:
        """(size, mtime_ns, ctime_ns, inode, device) when the file last
        changed at least `SETTLED_NS` before it was opened, on a file system
        that keeps its own ctime (`CTIME_FILESYSTEMS`); else None."""
        if self.fd < 0 or self.ctime_ns > self.opened_at_ns - SETTLED_NS:
            return None
        if filesystem_type(self.device) not in CTIME_FILESYSTEMS:
            return None
        return (self.size, self.mtime_ns, self.ctime_ns, self.inode, self.device)

    def _contents(self) -> tuple[str, bool | None]:
        """The SHA-256 of the bytes of the opened file and, with `check_utf8`,
        whether they are UTF-8 (else None): the file read once.

        Kept in the instance's `__dict__` by hand: before Python 3.12,
        `functools.cached_property` holds one lock for every instance of the
        class, so threads hashing different files would wait for each other.
        """
        known = self.__dict__.get("_hashed")
        if known is None:
            known = self.__dict__["_hashed"] = self._read_contents()
        return known

    def _read_contents(self) -> tuple[str, bool | None]:
        digest = hashlib.sha256()
        utf8 = Utf8Check() if self.check_utf8 else None
        with self.read_path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(CHUNK), b""):
                digest.update(chunk)
                if utf8 is not None:
                    utf8.update(chunk)
        return digest.hexdigest(), None if utf8 is None else utf8.finish()

    @property
    def sha256(self) -> str:
        """The SHA-256 of the bytes of the opened file, read once."""
        return self._contents()[0]

    def is_utf8(self) -> bool:
        """Whether the file decodes as UTF-8: found while hashing it with
        `check_utf8`, else (not hashed, or without `check_utf8`) read for it."""
        hashed = self.__dict__.get("_hashed")
        verdict = None if hashed is None else hashed[1]
        return is_utf8(self.read_path) if verdict is None else verdict


def filesystem_type(device: int) -> str | None:
    """The type of the mounted file system whose device number is `device`
    (`ext4`, `vfat`, `fuse.sshfs`, ...), or None when it is not known."""
    return _filesystem_types().get(device)


@functools.cache
def _filesystem_types() -> dict[int, str]:
    """Device number -> file system type, of every mount this process sees."""
    try:
        text = MOUNTINFO.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    return parse_mountinfo(text)


def parse_mountinfo(text: str) -> dict[int, str]:
    """`/proc/<pid>/mountinfo` as device number -> file system type: field 3
    is `major:minor`, and the type follows the ` - ` separator."""
    types: dict[int, str] = {}
    for line in text.splitlines():
        fields, _, rest = line.partition(" - ")
        parts = fields.split()
        if len(parts) < 3 or not rest:
            continue
        major, _, minor = parts[2].partition(":")
        if not (major.isdigit() and minor.isdigit()):
            continue
        # two mounts of one device have the same type; a device mounted
        # with two types is not trusted
        device = os.makedev(int(major), int(minor))
        kind = rest.split()[0]
        types[device] = kind if types.get(device, kind) == kind else "?"
    return types


def open_export_file(table: str, path: Path, check_utf8: bool = False) -> ExportFile:
    """Open `path` for the load; its stat is that of what was opened. With
    `check_utf8`, hashing it also tells whether it is UTF-8."""
    opened_at_ns = time.time_ns()
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise LoadError(f"cannot be opened ({exc.strerror}).", path=path) from exc
    stat = os.fstat(fd)
    return ExportFile(
        table,
        path,
        stat.st_size,
        stat.st_mtime_ns,
        fd,
        stat.st_ctime_ns,
        stat.st_ino,
        stat.st_dev,
        opened_at_ns,
        check_utf8,
    )


def close_export_files(files: Mapping[str, Sequence[ExportFile]]) -> None:
    for file in _every(files):
        if file.fd >= 0:
            os.close(file.fd)


def _every(files: Mapping[str, Sequence[ExportFile]]) -> Iterator[ExportFile]:
    for table_files in files.values():
        yield from table_files


def find_export_files(
    export_dir: Path, contracts: Sequence[TableContract]
) -> tuple[dict[str, list[ExportFile]], list[str], list[str]]:
    """Files per table, each opened (close them with `close_export_files`),
    problems (missing/ambiguous files) and warnings."""
    if not export_dir.is_dir():
        raise LoadError(
            "the raw export folder does not exist.",
            path=export_dir,
            hint="Pass --raw-dir DIR (or set KPI_RAW_DIR) to a folder with one file per table.",
        )
    # a CRM's export holds many files the mapping does not read: no warning for those
    quiet = any(c.crm != "contract" for c in contracts)
    pattern = re.compile(r"^(?P<table>[^.]+)(?:\.(?P<part>[^/]+))?\.(?P<ext>csv|parquet)$", re.I)
    found: dict[str, list[ExportFile]] = {c.name: [] for c in contracts}
    warnings = []
    try:
        for path in sorted(export_dir.iterdir()):
            match = pattern.match(path.name)
            if not match or not path.is_file():
                continue
            stem = match.group("table")
            contract = next((c for c in contracts if c.fold(stem) == c.fold(c.name)), None)
            if contract is None:
                if not quiet:
                    warnings.append(f"{path}: not a table of the contract; ignored.")
                continue
            # the load asks whether a CSV file is UTF-8 when the contract has a fallback
            check_utf8 = contract.encoding_fallback is not None and match.group("ext") != "parquet"
            found[contract.name].append(open_export_file(contract.name, path, check_utf8))
    except BaseException:
        close_export_files(found)
        raise
    problems = []
    for contract in sorted(contracts, key=lambda c: c.name):
        name = contract.name
        files = found[name]
        base = [f for f in files if contract.fold(f.path.stem) == contract.fold(name)]
        if not base and not files and _optional(contract, contracts, found):
            continue  # an optional table left out of the export: loaded empty
        if not base:
            instead = ""
            if contract.optional_with_column:
                other, column = contract.optional_with_column.split(".", 1)
                instead = f" (or a file {other} with a column {column})"
            problems.append(
                f"{export_dir / (name + '.csv')}: missing. Every table of the contract needs a "
                f"file {name}.csv or {name}.parquet{instead} (a header row is enough)."
            )
        elif len(base) > 1:
            problems.append(
                f"{export_dir}: both {base[0].name} and {base[1].name} exist; keep one."
            )
        # base file first, then parts in name order
        found[name] = sorted(files, key=lambda f: (f not in base, f.name))
    return found, problems, warnings


def _optional(
    contract: TableContract,
    contracts: Sequence[TableContract],
    found: Mapping[str, Sequence[ExportFile]],
) -> bool:
    """Whether the table's file may be left out: always, or (a table such as
    OpportunityHistory, which a history-mode copy of Opportunity replaces)
    when another table's first file has a given column."""
    if contract.optional:
        return True
    if not contract.optional_with_column:
        return False
    table, column = contract.optional_with_column.split(".", 1)
    other = next((c for c in contracts if c.name == table), None)
    files = found.get(table) or []
    if other is None or not files:
        return False
    from runner.crm_formats import file_columns

    return other.fold(column) in {other.fold(c) for c in file_columns(files[0].path)}


@dataclass
class TablePlan:
    """What to do with one table: skip, append the new files, or reload."""

    contract: TableContract
    files: list[ExportFile]
    action: str  # "skip", "append", "reload"
    new_files: list[ExportFile] = field(default_factory=list)
    new_columns: bool = False  # the loaded table has other columns than the contract
    # unchanged files whose settled stat differs from the recorded one (to record it)
    restat: list[ExportFile] = field(default_factory=list)


def plan_tables(
    adapter: EngineAdapter,
    contracts: Sequence[TableContract],
    files: Mapping[str, list[ExportFile]],
    force: bool,
) -> list[TablePlan]:
    state = state_tables.loaded_files(adapter)
    hash_files(
        [
            f
            for table, table_files in files.items()
            for f in table_files
            if not _same_stat(f, state.get(table, {}).get(f.name))
        ]
    )
    existing = set(adapter.relations())
    columns = _columns_of(adapter)
    plans = []
    for contract in contracts:
        table_files = files[contract.name]
        loaded = state.get(contract.name, {})
        relation = (contract.relation.schema.lower(), contract.relation.identifier.lower())
        exists = relation in existing
        if exists and columns.get(relation) != [c.name.lower() for c in contract.columns]:
            # the contract gained or lost a column since the table was loaded
            plans.append(TablePlan(contract, table_files, "reload", table_files, True))
            continue
        if not table_files:
            # an optional table left out: an empty table, written once
            action = "skip" if exists and not loaded and not force else "reload"
            plans.append(TablePlan(contract, [], action))
            continue
        if force or not exists or not loaded:
            plans.append(TablePlan(contract, table_files, "reload", table_files))
            continue
        unchanged = [f for f in table_files if _unchanged(f, loaded.get(f.name))]
        gone = set(loaded) - {f.name for f in table_files}
        changed_old = [f for f in table_files if f.name in loaded and f not in unchanged]
        new = [f for f in table_files if f.name not in loaded]
        restat = [
            f
            for f in unchanged
            if f.settled_stat is not None and not _same_stat(f, loaded.get(f.name))
        ]
        if gone or changed_old or not _new_files_come_last(table_files, loaded):
            plans.append(TablePlan(contract, table_files, "reload", table_files))
        elif new:
            plans.append(TablePlan(contract, table_files, "append", new, restat=restat))
        else:
            plans.append(TablePlan(contract, table_files, "skip", restat=restat))
    return plans


def hash_files(files: Sequence[ExportFile]) -> None:
    """Hash `files` (each is hashed once, and every file of an export is: to
    skip it when unchanged, or to remember it once loaded) on every core,
    largest first (`hashlib` releases the GIL while it reads the bytes)."""
    from concurrent.futures import ThreadPoolExecutor

    pending = sorted(files, key=lambda f: -f.size)
    if len(pending) < 2:
        return
    with ThreadPoolExecutor(max_workers=min(len(pending), os.cpu_count() or 1)) as pool:
        for _ in pool.map(lambda f: f.sha256, pending):
            pass


def _columns_of(adapter: EngineAdapter) -> dict[tuple[str, str], list[str]]:
    """The contract columns of every table (the loader's own `_load_id` left out)."""
    return {
        (schema.lower(), table.lower()): [name.lower() for name, _ in cols if name != "_load_id"]
        for (schema, table), cols in adapter.catalog_columns().items()
    }


def _same_stat(file: ExportFile, recorded: state_tables.RecordedFile | None) -> bool:
    """The file's settled stat is the one recorded with its bytes."""
    return recorded is not None and recorded.stat is not None and recorded.stat == file.settled_stat


def _unchanged(file: ExportFile, recorded: state_tables.RecordedFile | None) -> bool:
    """Same content as what was loaded: decided by the bytes, never by an
    mtime, which `cp -p` or `rsync -t` keep for changed content; the settled
    stat (see the module's docstring) stands for the bytes."""
    if recorded is None:
        return False
    if _same_stat(file, recorded):
        return True
    return recorded.size == file.size and file.sha256 == recorded.sha256


def _new_files_come_last(files: Sequence[ExportFile], loaded: Mapping[str, object]) -> bool:
    """Whether appending keeps file order: the first row of a repeated key is
    the first in files-by-name order in every build, so a new part that sorts
    before a loaded one reloads the table instead."""
    seen_new = False
    for file in files:
        if file.name not in loaded:
            seen_new = True
        elif seen_new:
            return False
    return True


def lines_at(path: Path, positions: Sequence[int], newline: bytes = b"\n") -> list[int]:
    """Physical line numbers (1-based) of the lines starting at byte offsets,
    in a file whose lines end with `newline` (`\n`, also for CRLF, or `\r`).

    DuckDB reports where a refused record's line starts: the offset of the
    line break before it (or of its first byte).
    """
    out = []
    with path.open("rb") as fh:
        line, offset = 1, 0
        for position in sorted(positions):
            chunk = fh.read(max(0, position - offset))
            line += chunk.count(newline)
            offset = max(offset, position)
            head = fh.read(2)
            fh.seek(offset)
            skip = 1 if head[:1] == newline or head == b"\r\n" else 0
            out.append(line + skip)
    return out


def record_lines(path: Path, records: Iterable[int]) -> dict[int, int]:
    """Start line of CSV records (1 = the header), reading quotes like DuckDB."""
    wanted = set(records)
    if not wanted:
        return {}
    with path.open("rb") as fh:
        has_quotes = b'"' in fh.read()
    if not has_quotes:
        return {r: r for r in wanted}
    found: dict[int, int] = {}
    with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as fh:
        reader = csv.reader(fh, strict=False)
        next_start = 1
        for index, _ in enumerate(reader, start=1):
            if index in wanted:
                found[index] = next_start
                if len(found) == len(wanted):
                    break
            next_start = reader.line_num + 1
    return found
