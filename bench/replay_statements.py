"""The floor of a traced build: its statements that do the work, with nothing around them.

Reads a trace written by `bench/sql_trace.py` and executes, in one DuckDB
connection and in the order they started, the statements that build
relations and run tests: everything but the build's bookkeeping (the `_kpi`
state tables, catalog look-ups, transactions and settings). Run it on a
warehouse as it was before the traced build. With `--read-files`, it
instead reads the given export files once each into a temporary table
(`read_parquet` or `read_csv` of every column as text): what loading them
costs at the least.

    python bench/replay_statements.py --warehouse w.duckdb --trace trace.jsonl
        [--profile replayed.jsonl]   # each statement's wall and CPU seconds
    python bench/replay_statements.py --warehouse w.duckdb --read-files a.parquet b.csv
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

BOOKKEEPING = re.compile(
    r"information_schema|duckdb_(tables|views|columns|schemas|settings|databases)"
    r"|^\s*(begin|commit|rollback|set|reset|pragma|checkpoint|describe|show)\b"
    r"|^\s*select\s+current_setting",
    re.IGNORECASE,
)
STATE = re.compile(r'"?_kpi"?\.', re.IGNORECASE)
VIEW = re.compile(r"^\s*create\s+(or\s+replace\s+)?view\b", re.IGNORECASE)


def is_work(sql: str) -> bool:
    """Whether a statement builds a relation or runs a test: not bookkeeping,
    and not reading or writing the `_kpi` state (a view may read it)."""
    if BOOKKEEPING.search(sql):
        return False
    return not STATE.search(sql) or bool(VIEW.match(sql))


def work_statements(trace: Path) -> list[tuple[str, object]]:
    """(sql, parameters) of the traced statements that build or test, in start order."""
    entries = [json.loads(line) for line in trace.read_text().splitlines() if line.strip()]
    entries.sort(key=lambda e: e["start"])
    return [(e["sql"], e["parameters"]) for e in entries if is_work(e["sql"])]


def read_files(con: object, paths: list[Path]) -> None:
    for index, path in enumerate(paths):
        literal = "'" + str(path).replace("'", "''") + "'"
        if path.suffix == ".parquet":
            reader = f"read_parquet({literal})"
        else:
            reader = f"read_csv({literal}, all_varchar = true, header = true)"
        con.execute(f"create temp table __floor_{index} as select * from {reader}")  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--trace", type=Path)
    parser.add_argument("--read-files", type=Path, nargs="*", default=None)
    parser.add_argument("--memory-limit", default=None)
    parser.add_argument("--profile", type=Path, default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    import duckdb

    con = duckdb.connect(str(args.warehouse))
    if args.memory_limit:
        con.execute(f"set memory_limit = '{args.memory_limit}'")
    if args.read_files is not None:
        read_files(con, args.read_files)
        done = f"{len(args.read_files)} files read"
    else:
        statements = work_statements(args.trace)
        profile = args.profile.open("w") if args.profile else None
        for sql, parameters in statements:
            wall, cpu = time.perf_counter(), time.process_time()
            if isinstance(parameters, dict) and "many" in parameters:
                con.executemany(sql, parameters["many"])
            else:
                con.execute(sql, parameters)
            if profile:
                entry = {
                    "seconds": round(time.perf_counter() - wall, 6),
                    "cpu_seconds": round(time.process_time() - cpu, 6),
                    "sql": sql,
                }
                profile.write(json.dumps(entry) + "\n")
        if profile:
            profile.close()
        done = f"{len(statements)} statements"
    con.close()
    print(f"{done} in {time.perf_counter() - started:.3f}s")


if __name__ == "__main__":
    main()
