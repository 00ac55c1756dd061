"""Every SQL statement a `kpi` command runs on DuckDB, with its time.

Runs a `kpi` command in this process with the DuckDB adapter's `execute`
and `executemany` wrapped, and writes one JSON line per statement to
`--out`: the thread, the start (seconds since the command started), the
seconds it took, the SQL and its parameters. `bench/bench_incremental.py`
traces an incremental build this way, to replay the statements that do the
work with nothing around them (`replay_statements`) and to say where the
time goes.

    python bench/sql_trace.py --out trace.jsonl -- build --raw-dir export
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def trace(argv: Sequence[str], out: Path) -> int:
    """Run `kpi argv` with every statement written to `out`; the exit code."""
    from runner import cli
    from runner.engines.duckdb import DuckDBAdapter

    lock = threading.Lock()
    started = time.perf_counter()
    sink = out.open("w")
    plain_execute = DuckDBAdapter.execute
    plain_executemany = DuckDBAdapter.executemany

    def record(sql: str, parameters: Any, began: float) -> None:
        entry = {
            "thread": threading.get_ident(),
            "start": round(began - started, 6),
            "seconds": round(time.perf_counter() - began, 6),
            "sql": sql,
            "parameters": _jsonable(parameters),
        }
        with lock:
            sink.write(json.dumps(entry) + "\n")

    def execute(self: DuckDBAdapter, sql: str, parameters: Sequence[Any] | None = None) -> Any:
        began = time.perf_counter()
        try:
            return plain_execute(self, sql, parameters)
        finally:
            record(sql, parameters, began)

    def executemany(self: DuckDBAdapter, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        began = time.perf_counter()
        try:
            plain_executemany(self, sql, rows)
        finally:
            record(sql, {"many": rows}, began)

    DuckDBAdapter.execute = execute  # type: ignore[method-assign]
    DuckDBAdapter.executemany = executemany  # type: ignore[method-assign]
    try:
        cli.main(list(argv), prog_name="kpi")
        return 0
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        sink.close()


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("kpi_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    argv = args.kpi_args[1:] if args.kpi_args[:1] == ["--"] else args.kpi_args
    sys.exit(trace(argv, args.out))


if __name__ == "__main__":
    main()
