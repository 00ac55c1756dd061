"""Incremental models on Spark, written in place instead of copied whole.

A delete+insert or append batch is staged first and tested on a view of the
table's next version (`__kpi_next__<name>`); only when no error-severity test
failed is it published:

- **Parquet, a model whose key has a month column** (`month`, or a name
  ending in `_month`) and whose table is partitioned by it: the next content
  of the touched month partitions (the months of the batch, and the months
  holding rows `valid_keys` no longer lists) is written to a staging table,
  then `insert overwrite table ... partition (<month>)` replaces exactly those
  partitions (dynamic partition overwrite); a touched month left without rows
  is dropped. Spark replaces the partitions one folder at a time: a reader
  during the overwrite may see some months new and others old, and a crash
  may leave it so (the next build rewrites them). Any other model on Parquet
  keeps copy on write (`SparkAdapter.delete_insert_sql`).
- **Delta and Iceberg**: the batch is written to a staging table, then one
  `MERGE INTO` (delete+insert) or `INSERT INTO` (append) publishes it, one
  atomic commit of the table format. `merge_sql` writes the statement; a
  target row is matched by at most one source row (the distinct keys to
  delete), and the batch's rows never match (they are inserted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from runner.nodes import Relation

if TYPE_CHECKING:
    from runner.engines.spark import SparkAdapter

NEXT_PREFIX = "__kpi_next__"
DELETE_ROW = "__kpi_delete"


@dataclass
class StagedIncrement:
    """A batch written beside its table, not yet visible in it."""

    relation: Relation  # the model's table
    next_version: Relation  # a view of what the table will hold: the tests read it
    staged: Relation  # the staging table: the touched partitions, or the batch
    publish: list[str] = field(default_factory=list)  # the statements that publish it
    partition: str | None = None  # the month column of a partitioned Parquet table


def partition_column(unique_key: Sequence[str]) -> str | None:
    """The month column a delete+insert model is partitioned by on Parquet:
    the first key column named `month` or ending in `_month`."""
    for column in unique_key:
        if column.lower() == "month" or column.lower().endswith("_month"):
            return column
    return None


def stage(
    adapter: SparkAdapter,
    relation: Relation,
    batch_sql: str,
    strategy: str,
    unique_key: Sequence[str],
    valid_keys: str | None,
) -> StagedIncrement | None:
    """Write the batch beside `relation` and the view of its next version;
    None when the model is copied whole instead (see the module docstring)."""
    if adapter.format == "parquet":
        column = partition_column(unique_key) if strategy == "delete+insert" else None
        if column is None or adapter.partition_columns(relation) != [column]:
            return None
        return _stage_partitions(adapter, relation, batch_sql, unique_key, valid_keys, column)
    return _stage_commit(adapter, relation, batch_sql, strategy, unique_key, valid_keys)


def _stage_partitions(
    adapter: SparkAdapter,
    relation: Relation,
    batch_sql: str,
    unique_key: Sequence[str],
    valid_keys: str | None,
    column: str,
) -> StagedIncrement:
    from runner.engines.spark import name

    columns = adapter.column_names(relation)  # the month column last, as Spark keeps it
    listed = ", ".join(f"`{c}`" for c in columns)
    batch = adapter.batch_view(relation, batch_sql)
    touched_sql = f"select distinct `{column}` from `{batch}`"
    if valid_keys:
        in_range = " and ".join(f"old.`{k}` <=> valid.`{k}`" for k in unique_key)
        touched_sql += (
            f"\nunion\nselect distinct old.`{column}` from {name(relation)} as old\n"
            f"left anti join {valid_keys} as valid on {in_range}"
        )
    touched = [row[0] for row in adapter.sql(touched_sql).collect()]
    is_touched = " or ".join(f"`{column}` <=> {_literal(v)}" for v in touched) or "false"
    kept = adapter.delete_insert_sql(relation, batch_sql, unique_key, valid_keys, batch=batch)
    staged = adapter.staging(relation)
    adapter.write_table(
        staged,
        f"select {listed} from (\n{kept}\n) as next_rows where {is_touched}",
        partition_by=column,
    )
    next_version = Relation(relation.schema, NEXT_PREFIX + relation.identifier)
    adapter.create_scratch_view(
        next_version,
        f"select {listed} from {name(relation)} where not ({is_touched})\n"
        f"union all\nselect {listed} from {name(staged)}",
    )
    written = {
        row[0] for row in adapter.sql(f"select distinct `{column}` from {name(staged)}").collect()
    }
    emptied = [v for v in touched if v not in written]
    publish = [
        f"insert overwrite table {name(relation)} partition (`{column}`)\n"
        f"select {listed} from {name(staged)}"
    ]
    publish += [
        f"alter table {name(relation)} drop if exists partition (`{column}` = {_literal(v)})"
        for v in emptied
        if v is not None
    ]
    return StagedIncrement(relation, next_version, staged, publish, column)


def _stage_commit(
    adapter: SparkAdapter,
    relation: Relation,
    batch_sql: str,
    strategy: str,
    unique_key: Sequence[str],
    valid_keys: str | None,
) -> StagedIncrement:
    from runner.engines.spark import name

    columns = adapter.column_names(relation)
    batch = adapter.batch_view(relation, batch_sql)
    staged = adapter.staging(relation)
    adapter.write_table(staged, f"select * from `{batch}`")
    next_version = Relation(relation.schema, NEXT_PREFIX + relation.identifier)
    if strategy == "delete+insert":
        next_sql = adapter.delete_insert_sql(
            relation, f"select * from {name(staged)}", unique_key, valid_keys
        )
        types = dict(adapter.columns(staged))
        publish = merge_sql(relation, staged, columns, types, unique_key, valid_keys)
    else:
        next_sql = adapter.append_sql(relation, f"select * from {name(staged)}")
        publish = append_into_sql(relation, staged, columns)
    adapter.create_scratch_view(next_version, next_sql)
    return StagedIncrement(relation, next_version, staged, [publish])


def publish(adapter: SparkAdapter, increment: StagedIncrement) -> None:
    """Make the staged batch the table's content (see the module docstring)."""
    from runner.engines.spark import name

    if increment.partition is not None:
        adapter.sql("set spark.sql.sources.partitionOverwriteMode = dynamic")
    for statement in increment.publish:
        adapter.sql(statement)
    if increment.partition is not None:
        adapter.remove_stray_partitions(increment.relation)
    adapter.sql(f"refresh table {name(increment.relation)}")
    discard(adapter, increment)


def discard(adapter: SparkAdapter, increment: StagedIncrement) -> None:
    """Drop what was staged; the table is left as it was."""
    adapter.drop_relation(increment.next_version)
    adapter.drop_relation(increment.staged)


def merge_sql(
    target: Relation,
    batch: Relation,
    columns: Sequence[str],
    types: dict[str, str],
    unique_key: Sequence[str],
    valid_keys: str | None = None,
) -> str:
    """delete+insert as one `MERGE INTO` (Delta, Iceberg): the source holds
    each key to delete once (the batch's keys, and with `valid_keys` the
    table's keys it no longer lists), matched with `<=>` (NULL keys match),
    and the batch's rows, which match nothing and are inserted."""
    from runner.engines.spark import name

    keys = ", ".join(f"`{k}`" for k in unique_key)
    doomed = f"select distinct {keys} from {name(batch)}"
    if valid_keys:
        in_range = " and ".join(f"old.`{k}` <=> valid.`{k}`" for k in unique_key)
        doomed += (
            f"\nunion\nselect distinct {', '.join(f'old.`{k}`' for k in unique_key)} "
            f"from {name(target)} as old\nleft anti join {valid_keys} as valid on {in_range}"
        )
    as_deleted = ", ".join(
        f"`{c}`" if c in unique_key else f"cast(null as {types[c]}) as `{c}`" for c in columns
    )
    listed = ", ".join(f"`{c}`" for c in columns)
    match = " and ".join(f"target.`{k}` <=> source.`{k}`" for k in unique_key)
    values = ", ".join(f"source.`{c}`" for c in columns)
    return (
        f"merge into {name(target)} as target\n"
        f"using (\n"
        f"select {as_deleted}, true as `{DELETE_ROW}` from (\n{doomed}\n) as doomed\n"
        f"union all\n"
        f"select {listed}, false as `{DELETE_ROW}` from {name(batch)}\n"
        f") as source\n"
        f"on {match} and source.`{DELETE_ROW}`\n"
        f"when matched then delete\n"
        f"when not matched and not source.`{DELETE_ROW}` then\n"
        f"  insert ({listed}) values ({values})"
    )


def append_into_sql(target: Relation, batch: Relation, columns: Sequence[str]) -> str:
    """An append (Delta, Iceberg): the batch's rows inserted, columns by name."""
    from runner.engines.spark import name

    listed = ", ".join(f"`{c}`" for c in columns)
    return f"insert into {name(target)} ({listed})\nselect {listed} from {name(batch)}"


def _literal(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, datetime):
        return f"timestamp_ntz'{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"date'{value.isoformat()}'"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"
