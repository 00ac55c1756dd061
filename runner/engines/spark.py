"""Relations on Spark: `SparkAdapter`, the Spark engine of the runner.

Every table is an external table whose files live under the target's
`warehouse_dir`, at `<warehouse_dir>/<schema>/<table>`; a view is kept in the
catalog and its SQL in `_kpi.views`, so that a new session (Spark's built-in
catalog lives as long as its session) finds the warehouse as it was left:
`attach()` registers every table directory and recreates the views.

Spark has no transactions. A model is built into a staging table
(`__kpi_new__<name>`), its tests read that table, and only then is it swapped
in: on Parquet by moving directories (drop the old files, move the new ones
in: two steps, not atomic; a crash between them leaves the model missing
until the next build), on Delta and Iceberg by `create or replace table ...
as select * from <staging>` (one atomic commit of the table format).
Incremental batches are written in place where the table allows it
(`spark_increments.py`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from runner.engines.base import EngineAdapter, RelationKind
from runner.nodes import Relation
from runner.state_tables import NodeState

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from runner.spark_session import SparkTarget

META_SCHEMA = "_kpi"
STAGING_PREFIX = "__kpi_new__"
NODE_STATE = Relation(META_SCHEMA, "node_state")
VIEWS = Relation(META_SCHEMA, "views")


def name(relation: Relation) -> str:
    """`relation` in Spark SQL: `schema`.`table`."""
    return f"`{relation.schema}`.`{relation.identifier}`"


class SparkAdapter(EngineAdapter):
    """What the runner does to relations on one Spark session."""

    dialect: ClassVar[str] = "spark"
    supports_transactions: ClassVar[bool] = False

    def __init__(self, session: SparkSession, target: SparkTarget) -> None:
        super().__init__(session)
        self.session = session
        self.target = target
        self.root = target.warehouse_dir
        self.format = target.file_format
        # what the catalog holds, per schema listed once (this adapter is the
        # only writer while a build runs): {schema: {name: kind}}
        self._kinds: dict[str, dict[str, RelationKind]] = {}
        self._schemas: set[str] = set()  # created (or found) by this adapter
        self._views: dict[Relation, str] | None = None  # `_kpi.views`, read once
        self._views_changed = False
        self._lock = threading.Lock()

    # -- the catalog ------------------------------------------------------------

    def attach(self) -> None:
        """Register the tables found under `warehouse_dir` (each schema folder,
        each table folder) and recreate the recorded views."""
        if not self.root.is_dir():
            return
        found = []
        for schema_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
            if schema_dir.name.startswith("_catalog"):
                continue
            tables = [
                p
                for p in sorted(schema_dir.iterdir())
                if p.is_dir() and not p.name.startswith(STAGING_PREFIX)
            ]
            if tables:
                self.create_schema(schema_dir.name)
                self._schema_kinds(schema_dir.name)
                found += [Relation(schema_dir.name, t.name) for t in tables]
        # registering reads each table's Parquet footers: a few at a time
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(self.register, found))
        for own in (NODE_STATE, VIEWS):  # the runner's state is this warehouse's only
            if not self.location(own).is_dir() and self.relation_kind(own) is not None:
                self.drop_relation(own, keep_files=True)
        for relation, sql in list(self.recorded_views().items()):
            self.create_schema(relation.schema)
            with contextlib.suppress(Exception):  # its inputs may be gone: rebuilt later
                self.sql(f"create or replace view {name(relation)} as\n{sql}")
                self._noted(relation, RelationKind.VIEW)

    def location(self, relation: Relation) -> Path:
        return self.root / relation.schema / relation.identifier

    def register(self, relation: Relation) -> None:
        """Point the catalog's `relation` at its folder (whatever it named before)."""
        location = self.location(relation)
        current = self.table_location(relation)
        if current == str(location):
            self.sql(f"refresh table {name(relation)}")
            return
        if current is not None or self.relation_kind(relation) == RelationKind.VIEW:
            self.drop_relation(relation, keep_files=True)
        self.sql(
            f"create table {name(relation)} using {_format_of(location)} "
            f"location '{_path_literal(location)}'"
        )
        self._noted(relation, RelationKind.TABLE)
        if _format_of(location) == "parquet" and self.partition_columns(relation):
            # the catalog lists a partitioned table's partitions: found from its folders
            self.sql(f"alter table {name(relation)} recover partitions")

    def table_location(self, relation: Relation) -> str | None:
        if self.relation_kind(relation) != RelationKind.TABLE:
            return None
        rows = self.sql(f"describe table extended {name(relation)}").collect()
        for row in rows:
            if str(row[0]).strip().lower() == "location":
                return str(row[1]).removeprefix("file:")
        return None

    def create_schema(self, schema: str) -> None:
        if schema.lower() in self._schemas:
            return
        self.sql(f"create database if not exists `{schema}`")
        self._schemas.add(schema.lower())

    def _schema_kinds(self, schema: str) -> dict[str, RelationKind]:
        key = schema.lower()
        if key not in self._kinds:
            kinds: dict[str, RelationKind] = {}
            if self.session.catalog.databaseExists(schema):
                # SHOW is much faster than catalog.listTables, which reads
                # every table's metadata
                for row in self.sql(f"show tables in `{schema}`").collect():
                    if not row["isTemporary"]:
                        kinds[str(row["tableName"]).lower()] = RelationKind.TABLE
                for row in self.sql(f"show views in `{schema}`").collect():
                    if not row["isTemporary"] and str(row["viewName"]).lower() in kinds:
                        kinds[str(row["viewName"]).lower()] = RelationKind.VIEW
            self._kinds[key] = kinds
        return self._kinds[key]

    def relation_kind(self, relation: Relation) -> RelationKind | None:
        return self._schema_kinds(relation.schema).get(relation.identifier.lower())

    def _noted(self, relation: Relation, kind: RelationKind | None) -> None:
        kinds = self._schema_kinds(relation.schema)
        if kind is None:
            kinds.pop(relation.identifier.lower(), None)
        else:
            kinds[relation.identifier.lower()] = kind

    def existing_tables(self, schemas: Iterable[str]) -> frozenset[tuple[str, str]]:
        """The tables of `schemas` that this warehouse holds (in the catalog, with
        their folder under `warehouse_dir`)."""
        return frozenset(
            (schema.lower(), table)
            for schema in schemas
            for table, kind in self._schema_kinds(schema).items()
            if kind == RelationKind.TABLE and self.location(Relation(schema, table)).is_dir()
        )

    # -- statements -------------------------------------------------------------

    def sql(self, statement: str) -> Any:
        return self.session.sql(statement)

    def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> Any:
        """Run one statement (`?` parameters as Spark's positional args); a DataFrame."""
        return self.session.sql(sql, args=list(parameters)) if parameters else self.sql(sql)

    def fetchall(self, sql: str, parameters: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.execute(sql, parameters).collect()]

    def fetchone(self, sql: str, parameters: Sequence[Any] | None = None) -> tuple[Any, ...] | None:
        rows = self.execute(sql, parameters).limit(1).collect()
        return tuple(rows[0]) if rows else None

    def close(self) -> None:
        """The session outlives the adapter (it is the process's, or a test suite's)."""

    def relations(
        self, schemas: Iterable[str] | None = None
    ) -> dict[tuple[str, str], RelationKind]:
        if schemas is None:
            schemas = [d.name for d in self.session.catalog.listDatabases()]
        return {
            (schema.lower(), table): kind
            for schema in schemas
            for table, kind in self._schema_kinds(schema).items()
        }

    def catalog_columns(
        self, schemas: Iterable[str] | None = None
    ) -> dict[tuple[str, str], list[tuple[str, str]]]:
        return {key: self.columns(Relation(*key)) for key in self.relations(schemas)}

    def create_table(
        self, relation: Relation, columns: Mapping[str, str], *, if_not_exists: bool = True
    ) -> None:
        body = ", ".join(f"`{n}` {t}" for n, t in columns.items())
        exists = "if not exists " if if_not_exists else ""
        location = _path_literal(self.location(relation))
        self.sql(
            f"create table {exists}{name(relation)} ({body}) using {self.format} "
            f"location '{location}'"
        )
        self._noted(relation, RelationKind.TABLE)

    def add_column(self, relation: Relation, name_: str, sql_type: str) -> None:
        if name_.lower() not in {c.lower() for c in self.column_names(relation)}:
            self.sql(f"alter table {name(relation)} add columns (`{name_}` {sql_type})")

    def row_count(self, relation: Relation) -> int:
        return self.count(f"select * from {name(relation)}")

    def write_parquet(self, select: str, path: str) -> None:
        self.sql(select).write.mode("overwrite").parquet(path)

    def parquet_select(self, path: str) -> str:
        return f"select * from parquet.`{path}`"

    def csv_select(self, path: str, column_types: Mapping[str, str]) -> str:
        raise NotImplementedError("seeds are typed by DuckDB, then handed to Spark as Parquet")

    def count(self, query: str) -> int:
        row = self.sql(f"select count(*) from (\n{query}\n) as kpi_count").collect()[0]
        return int(row[0])

    def fetch(self, query: str, limit: int) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        frame = self.sql(query).limit(limit)
        return tuple(frame.columns), [tuple(row) for row in frame.collect()]

    def create_view(self, relation: Relation, sql: str) -> None:
        if self.relation_kind(relation) == RelationKind.TABLE:
            self.drop_relation(relation)
        self.sql(f"create or replace view {name(relation)} as\n{sql}")
        self._noted(relation, RelationKind.VIEW)
        self.record_view(relation, sql)

    def create_table_as(self, relation: Relation, select: str, *, replace: bool = True) -> int:
        """Write the rows of `select` to `relation`'s folder and register it;
        the rows written."""
        self.write_table(relation, select)
        return self.row_count(relation)

    def write_table(self, relation: Relation, sql: str, partition_by: str | None = None) -> None:
        """`create_table_as` without counting the rows (one Spark job less);
        on Parquet, `partition_by` names a column to partition the files by
        (Spark then lists it last)."""
        self.drop_relation(relation)
        location = self.location(relation)
        partitioned = (
            f"partitioned by (`{partition_by}`) "
            if partition_by and self.format == "parquet"
            else ""
        )
        self.sql(
            f"create table {name(relation)} using {self.format} {partitioned}"
            f"location '{_path_literal(location)}' as\n{sql}"
        )
        self._noted(relation, RelationKind.TABLE)

    def create_scratch_view(self, relation: Relation, sql: str) -> None:
        """A view for the length of one step (not kept in `_kpi.views`)."""
        self.sql(f"create or replace view {name(relation)} as\n{sql}")
        self._noted(relation, RelationKind.VIEW)

    def partition_columns(self, relation: Relation) -> list[str]:
        """The columns a Parquet table's folder is partitioned by (its
        `<column>=<value>` folders, one level per column)."""
        columns: list[str] = []
        folder = self.location(relation)
        while folder.is_dir():
            found = next(
                (p for p in sorted(folder.iterdir()) if p.is_dir() and "=" in p.name), None
            )
            if found is None:
                break
            columns.append(found.name.split("=", 1)[0])
            folder = found
        return columns

    def remove_stray_partitions(self, relation: Relation) -> None:
        """Remove the partition folders the catalog no longer lists (a dropped
        partition of an external table keeps its files)."""
        listed = {
            str(row[0]).split("/", 1)[0]
            for row in self.sql(f"show partitions {name(relation)}").collect()
        }
        folder = self.location(relation)
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            if path.is_dir() and "=" in path.name and path.name not in listed:
                self._remove(path)

    def staging(self, relation: Relation) -> Relation:
        return Relation(relation.schema, STAGING_PREFIX + relation.identifier)

    def swap_in(self, staging: Relation, relation: Relation) -> None:
        """Replace `relation` by `staging` (see the module docstring)."""
        if self.format == "parquet":
            self.drop_relation(relation)
            self.sql(f"drop table if exists {name(staging)}")
            self._noted(staging, None)
            self._move(self.location(staging), self.location(relation))
            self.register(relation)
            self.forget_view(relation)
            return
        if self.relation_kind(relation) == RelationKind.VIEW:
            self.drop_relation(relation)
        self.sql(
            f"create or replace table {name(relation)} using {self.format} "
            f"location '{_path_literal(self.location(relation))}' "
            f"as select * from {name(staging)}"
        )
        self._noted(relation, RelationKind.TABLE)
        self.drop_relation(staging)
        self.forget_view(relation)

    def drop_relation(
        self,
        relation: Relation,
        kind: RelationKind | None = None,
        *,
        if_exists: bool = True,
        keep_files: bool = False,
    ) -> None:
        """Drop `relation` from the catalog and (unless `keep_files`) its folder."""
        kind = kind or self.relation_kind(relation)
        if kind == RelationKind.VIEW:
            self.sql(f"drop view if exists {name(relation)}")
            self.forget_view(relation)
        elif kind == RelationKind.TABLE:
            self.sql(f"drop table if exists {name(relation)}")
        self._noted(relation, None)
        if not keep_files:
            self._remove(self.location(relation))

    def delete_insert_sql(
        self,
        relation: Relation,
        batch_sql: str,
        unique_key: Sequence[str],
        valid_keys: str | None = None,
        *,
        batch: str | None = None,
    ) -> str:
        """The next content of `relation` for a delete+insert (copy on write):
        its rows whose key is not in the batch (`<=>`: NULL keys match), and
        with `valid_keys` (a relation holding the key columns) only the rows
        still valid, then the batch's rows. `batch`: the temporary view of
        `batch_sql` when one was made already."""
        columns = ", ".join(f"`{c}`" for c in self.column_names(relation))
        batch = batch or self.batch_view(relation, batch_sql)
        match = " and ".join(f"kept.`{k}` <=> batch.`{k}`" for k in unique_key)
        keys = ", ".join(f"`{k}`" for k in unique_key)
        kept = (
            f"select kept.* from {name(relation)} as kept\n"
            f"left anti join (select distinct {keys} from `{batch}`) as batch on {match}"
        )
        if valid_keys:
            in_range = " and ".join(f"kept.`{k}` <=> valid.`{k}`" for k in unique_key)
            kept += f"\nleft semi join {valid_keys} as valid on {in_range}"
        return (
            f"select {columns} from (\n{kept}\n) as kept_rows\n"
            f"union all\nselect {columns} from `{batch}`"
        )

    def append_sql(self, relation: Relation, batch_sql: str) -> str:
        """The next content of `relation` for an append: its rows, then the batch's."""
        columns = ", ".join(f"`{c}`" for c in self.column_names(relation))
        batch = self.batch_view(relation, batch_sql)
        return f"select {columns} from {name(relation)}\nunion all\nselect {columns} from `{batch}`"

    def batch_view(self, relation: Relation, batch_sql: str) -> str:
        """A temporary view of an incremental batch; its name."""
        batch = f"__kpi_batch__{relation.schema}__{relation.identifier}"
        self.sql(f"create or replace temporary view `{batch}` as\n{batch_sql}")
        return batch

    def delete_insert(
        self,
        relation: Relation,
        sql: str,
        unique_key: Sequence[str],
        valid_keys: str | None = None,
    ) -> int:
        """Replace the rows of `relation` whose key the batch `sql` has (see
        `delete_insert_sql`): a new version written, then swapped in."""
        staging = self.staging(relation)
        rows = self.create_table_as(
            staging, self.delete_insert_sql(relation, sql, unique_key, valid_keys)
        )
        self.swap_in(staging, relation)
        return rows

    def insert_by_name(self, relation: Relation, select: str) -> int:
        """Add the rows of `sql` to `relation`, matching columns by name."""
        staging = self.staging(relation)
        rows = self.create_table_as(staging, self.append_sql(relation, select))
        self.swap_in(staging, relation)
        return rows

    def rename_relation(self, relation: Relation, new_name: str) -> None:
        """`relation` under another name in its schema (its folder moves too)."""
        renamed = Relation(relation.schema, new_name)
        self.drop_relation(renamed)
        self.sql(f"drop table if exists {name(relation)}")
        self._noted(relation, None)
        self._move(self.location(relation), self.location(renamed))
        self.register(renamed)

    def cursor(self) -> SparkAdapter:
        """The session serves every thread: the adapter is its own cursor."""
        return self

    def columns(self, relation: Relation) -> list[tuple[str, str]]:
        if self.relation_kind(relation) is None:
            return []
        return [(c, str(t)) for c, t in self.sql(f"select * from {name(relation)} limit 0").dtypes]

    def column_names(self, relation: Relation) -> list[str]:
        return [c for c, _ in self.columns(relation)]

    # -- files ----------------------------------------------------------------

    def _filesystem(self, path: Path) -> tuple[Any, Any]:
        jvm: Any = self.session.sparkContext._jvm
        hadoop_path = jvm.org.apache.hadoop.fs.Path(str(path))
        conf = self.session.sparkContext._jsc.hadoopConfiguration()  # type: ignore[attr-defined]
        return hadoop_path.getFileSystem(conf), hadoop_path

    def _remove(self, path: Path) -> None:
        fs, hadoop_path = self._filesystem(path)
        if fs.exists(hadoop_path):
            fs.delete(hadoop_path, True)

    def _move(self, source: Path, destination: Path) -> None:
        fs, src = self._filesystem(source)
        _, dst = self._filesystem(destination)
        self._remove(destination)
        fs.mkdirs(dst.getParent())
        if not fs.rename(src, dst):
            raise OSError(f"could not move {source} to {destination}")

    # -- the runner's own state ---------------------------------------------------

    def read_state(self) -> dict[str, NodeState]:
        if self.relation_kind(NODE_STATE) is None:
            return {}
        rows = self.sql(
            f"select unique_id, load_id, logic, full_load_id, built_at, full_built_at "
            f"from {name(NODE_STATE)}"
        ).collect()
        return {
            str(r[0]): NodeState(int(r[1] or 0), str(r[2] or ""), int(r[3] or 0), r[4], r[5])
            for r in rows
        }

    def write_state(self, state: Mapping[str, NodeState]) -> None:
        rows = [
            (uid, s.load_id, s.logic, s.full_load_id, s.built_at, s.full_built_at)
            for uid, s in sorted(state.items())
        ]
        schema = (
            "unique_id string, load_id bigint, logic string, full_load_id bigint, "
            "built_at timestamp_ntz, full_built_at timestamp_ntz"
        )
        self._write_rows(NODE_STATE, rows, schema)

    def recorded_views(self) -> dict[Relation, str]:
        """The views built on this warehouse and their SQL, in the order built."""
        if self._views is None:
            views: dict[Relation, str] = {}
            if self.relation_kind(VIEWS) is not None:
                query = f"select schema, name, sql from {name(VIEWS)} order by position"
                for row in self.sql(query).collect():
                    views[Relation(str(row[0]), str(row[1]))] = str(row[2])
            self._views = views
        return self._views

    def record_view(self, relation: Relation, sql: str) -> None:
        views = self.recorded_views()
        with self._lock:
            views.pop(relation, None)
            views[relation] = sql
            self._views_changed = True

    def forget_view(self, relation: Relation) -> None:
        views = self.recorded_views()
        with self._lock:
            if views.pop(relation, None) is not None:
                self._views_changed = True

    def save_views(self) -> None:
        """Write `_kpi.views` if a view was created or replaced by a table."""
        if not self._views_changed or self._views is None:
            return
        rows = [(i, r.schema, r.identifier, s) for i, (r, s) in enumerate(self._views.items())]
        self._write_rows(VIEWS, rows, "position int, schema string, name string, sql string")
        self._views_changed = False

    def _write_rows(self, relation: Relation, rows: list[tuple[Any, ...]], schema: str) -> None:
        """Replace a small `_kpi` table by `rows` (written from the driver)."""
        self.create_schema(relation.schema)
        frame = self.session.createDataFrame(rows, schema).coalesce(1)
        staging = self.staging(relation)
        frame.write.mode("overwrite").parquet(str(self.location(staging)))
        if self.relation_kind(relation) == RelationKind.TABLE:
            self.sql(f"drop table {name(relation)}")
        self._move(self.location(staging), self.location(relation))
        self.sql(
            f"create table {name(relation)} using parquet "
            f"location '{_path_literal(self.location(relation))}'"
        )
        self._noted(relation, RelationKind.TABLE)


def now() -> datetime:
    return datetime.now().replace(microsecond=0)


def _format_of(location: Path) -> str:
    """The table format of a table folder: its own metadata says which."""
    if (location / "_delta_log").is_dir():
        return "delta"
    if (location / "metadata").is_dir():
        return "iceberg"
    return "parquet"


def _path_literal(path: Path) -> str:
    return str(path).replace("\\", "\\\\").replace("'", "\\'")
