"""The least any design pays for an append: read, compare and store it in DuckDB alone.

Whatever the models do next, a refresh has to read the new and changed
files, find the rows of each rewritten snapshot that are new, changed or
gone, check that the keys of an appended part are new, and write the new and
changed rows durably (DuckDB's commit, with the checkpoint it runs once the
write-ahead log passes its threshold). This script does only that, with the
plainest SQL, in one DuckDB connection on a copy of the warehouse as it was
before the refresh: no runner, no model, no test. It changes the warehouse
it is given.

`--loaded` names a warehouse the refresh has loaded: its newest load says
which files were read and whether each was appended or reloaded. `--key`
gives a reloaded table's primary key (`opportunities=opportunity_id`,
`quotas=user_id,month`). It prints each step's wall and CPU seconds.

    python bench/append_floor.py --warehouse copy.duckdb --export DIR \\
        --loaded refreshed.duckdb --key opportunities=opportunity_id ...
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

STARTED = (time.perf_counter(), time.process_time())

import duckdb  # noqa: E402


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Steps:
    """Each step's wall and CPU seconds, printed at the end."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.timings: list[tuple[str, float, float]] = []

    def run(self, name: str, statements: list[str]) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        for sql in statements:
            self.con.execute(sql).fetchall()
        self.timings.append((name, time.perf_counter() - wall, time.process_time() - cpu))

    def print(self) -> None:
        for name, wall, cpu in self.timings:
            print(f"| {name} | {wall:.3f} | {cpu:.3f} |")
        wall = sum(t[1] for t in self.timings)
        cpu = sum(t[2] for t in self.timings)
        print(f"| all | {wall:.3f} | {cpu:.3f} |")


def reader(path: Path, types: dict[str, str]) -> str:
    literal = "'" + str(path).replace("'", "''") + "'"
    if path.suffix == ".parquet":
        return f"read_parquet({literal})"
    columns = ", ".join(f"'{name}': '{kind}'" for name, kind in types.items())
    return f"read_csv({literal}, header = true, types = {{{columns}}})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--export", type=Path, required=True)
    parser.add_argument("--loaded", type=Path, required=True)
    parser.add_argument("--key", action="append", default=[], help="table=col[,col]")
    args = parser.parse_args()
    keys = {table: cols.split(",") for table, cols in (k.split("=", 1) for k in args.key)}

    with duckdb.connect(str(args.loaded), read_only=True) as loaded:
        files = loaded.execute(
            "select table_name, file_name, action from _kpi.load_state "
            "where load_id = (select max(load_id) from _kpi.load_state) order by file_name"
        ).fetchall()
    con = duckdb.connect(str(args.warehouse))
    steps = Steps(con)
    steps.timings.append(("start Python, import DuckDB, open the warehouse", *_since(STARTED)))
    types = {
        table: dict(
            con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'raw' and table_name = ? and column_name <> '_load_id'",
                [table],
            ).fetchall()
        )
        for table in {t for t, _, _ in files}
    }
    steps.run(
        "read the new and changed files",
        [
            f"create temp table new_{i} as select * from {reader(args.export / name, types[table])}"
            for i, (table, name, _) in enumerate(files)
        ],
    )
    (load_id,) = con.execute("select coalesce(max(load_id), 0) + 1 from _kpi.load_state").fetchone()
    columns = {
        i: [c for (c, *_) in con.execute(f"describe new_{i}").fetchall()] for i in range(len(files))
    }

    compare, check, store = [], [], ["begin"]
    for i, (table, _, action) in enumerate(files):
        raw = f"raw.{quoted(table)}"
        cols = [quoted(c) for c in columns[i]]
        listed = ", ".join(cols)
        key = [quoted(k) for k in keys.get(table, [])]
        if action == "append":
            if key:
                joined = ", ".join(key)
                check.append(f"select count(*) from new_{i} semi join {raw} using ({joined})")
                check.append(f"select count(*) - count(distinct ({joined})) from new_{i}")
            store.append(
                f"insert into {raw} ({listed}, _load_id) select {listed}, {load_id} from new_{i}"
            )
            continue
        if key:  # a reloaded table
            on = " and ".join(f"o.{k} = n.{k}" for k in key)
            new_row = ", ".join("n." + c for c in cols)
            old_row = ", ".join("o." + c for c in cols)
            differs = f"({new_row}) is distinct from ({old_row})"
            compare.append(
                f"create temp table changed_{i} as select n.* from new_{i} n "
                f"left join {raw} o on {on} where o.{key[0]} is null or {differs}"
            )
            compare.append(
                f"create temp table gone_{i} as select o.rowid as row_id from {raw} o "
                f"anti join new_{i} n on {on}"
            )
            joined = ", ".join(key)
            store.append(
                f"delete from {raw} where ({joined}) in (select ({joined}) from changed_{i}) "
                f"or rowid in (select row_id from gone_{i})"
            )
        else:
            raise SystemExit(f"{table} was reloaded: give its primary key with --key {table}=...")
        store.append(
            f"insert into {raw} ({listed}, _load_id) select {listed}, {load_id} from changed_{i}"
        )
    store.append("commit")
    steps.run("compare the rewritten snapshots with the loaded rows", compare)
    steps.run("check the appended keys against the loaded ones", check)
    steps.run("store the new and changed rows (insert, delete, commit)", store)
    closing = (time.perf_counter(), time.process_time())
    con.close()
    steps.timings.append(("close the warehouse", *_since(closing)))
    print(f"{len(files)} files")
    print("| step | s | CPU s |")
    print("|---|---|---|")
    steps.print()


def _since(started: tuple[float, float]) -> tuple[float, float]:
    return time.perf_counter() - started[0], time.process_time() - started[1]


if __name__ == "__main__":
    main()
