"""The typed raw tables, handed to Spark as Parquet.

The loader validates and types the export into DuckDB as on every target;
for Spark, each raw table the models read is then written to
`<warehouse_dir>/<schema>/<table>/` as Parquet (timestamps without a time
zone, which Spark reads as TIMESTAMP_NTZ) and registered as an external
table of the same name. A table is written again only when a load changed
it. A project whose export already lives in the lake points `sources` at
those tables instead and marks them not `load_from_export`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from runner.caches import content_key
from runner.nodes import Relation
from runner.state_tables import TABLE_CHANGES

if TYPE_CHECKING:
    from runner.engines.base import EngineAdapter

MARKER = "_kpi_export"  # Spark skips files whose names start with `_`


def export_tables(duck: EngineAdapter, relations: Iterable[Relation], root: Path) -> list[Relation]:
    """Write each DuckDB table of `relations` that changed to its Parquet
    folder under `root`; the relations written."""
    tables = set(duck.relations())
    written = []
    for relation in relations:
        if (relation.schema.lower(), relation.identifier.lower()) not in tables:
            continue
        folder = root / relation.schema / relation.identifier
        version = _version(duck, relation)
        marker = folder / MARKER
        if marker.is_file() and marker.read_text(encoding="utf-8") == version:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.parquet"):
            old.unlink()
        duck.write_parquet(f"select * from {relation}", str(folder / "part-0.parquet"))
        marker.write_text(version, encoding="utf-8")
        written.append(relation)
    return written


def _version(duck: EngineAdapter, relation: Relation) -> str:
    """What identifies a raw table's content: its loads (and its columns)."""
    try:
        loads = duck.fetchall(
            "select load_id, action, inserted_rows, updated_rows, deleted_rows "
            f"from {TABLE_CHANGES} where lower(relation) = lower(?) order by all",
            [relation.display],
        )
    except duck.Error:
        loads = []
    columns = duck.columns(relation)
    if not loads:  # not written by the loader: its rows are all we know
        loads = duck.fetchall(f"select count(*) from {relation}")
    return content_key(repr(loads), repr(columns))
