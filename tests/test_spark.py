"""The Spark target: the same marts as DuckDB's, built on Spark in local mode.

One Spark session serves every test here (`local[2]`, one shuffle partition,
no UI, UTC, TIMESTAMP_NTZ). The demo export is built once on each engine and
every table compared (floats at 1e-9 relative); an append is then built
incrementally on both and compared again. The small CRM fixtures are built
on both engines in `test_spark_crm.py` (a file of its own, so that a second
test worker builds them beside these).
"""

from __future__ import annotations

import io
import math
import shutil
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from runner.build import RunOptions
from runner.errors import CompilationError
from runner.planning import Command
from runner.project import Project
from runner.reporting import Reporter
from runner.transpile import to_spark

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "runner" / "crm" / "demo_export"
REL_TOL = 1e-9


def quiet(project_dir: Path, work: Path, name: str, **kwargs: Any) -> Project:
    return Project.load(
        project_dir,
        warehouse=work / f"{name}.duckdb",
        target_path=work / f"{name}-target",
        reporter=Reporter(stream=io.StringIO()),
        **kwargs,
    )


def spark_tables(folder: Path, schema: str) -> list[str]:
    return sorted(p.name for p in (folder / schema).iterdir() if not p.name.startswith("__"))


def read_spark(con: duckdb.DuckDBPyConnection, folder: Path, order: str) -> list[tuple[Any, ...]]:
    return con.execute(
        f"select * from read_parquet('{folder}/*.parquet') order by {order}"
    ).fetchall()


def assert_same_tables(
    duckdb_file: Path, spark_dir: Path, schemas: tuple[str, ...], ignore: tuple[str, ...] = ()
) -> int:
    """Every table of `schemas` in the DuckDB file equals Spark's (its Parquet
    files read by DuckDB): same columns, rows, values; floats at 1e-9
    relative. The number of tables compared."""
    compared = 0
    with duckdb.connect(str(duckdb_file), read_only=True) as con:
        for schema in schemas:
            tables = [
                t
                for (t,) in con.execute(
                    "select table_name from information_schema.tables where table_schema = ? "
                    "and table_type = 'BASE TABLE' order by 1",
                    [schema],
                ).fetchall()
            ]
            assert tables, schema
            assert set(tables) <= set(spark_tables(spark_dir, schema)), schema
            for table in tables:
                columns = [
                    c
                    for (c,) in con.execute(
                        "select column_name from information_schema.columns where "
                        "table_schema = ? and table_name = ? order by ordinal_position",
                        [schema, table],
                    ).fetchall()
                ]
                kept = [c for c in columns if c not in ignore]
                listed = ", ".join(f'"{c}"' for c in kept)
                ours = con.execute(
                    f"select {listed} from {schema}.{table} order by {listed}"
                ).fetchall()
                files = parquet_files(spark_dir / schema / table)
                described = con.execute(f"select * from {files} limit 0").description
                # a month-partitioned table lists its month column last
                partitions = [p for p in partition_columns(spark_dir / schema / table)]
                expected = [c for c in columns if c not in partitions] + partitions
                assert [d[0] for d in described or ()] == expected, (schema, table)
                theirs = con.execute(f"select {listed} from {files} order by {listed}").fetchall()
                assert len(ours) == len(theirs), (schema, table)
                for row, other in zip(ours, theirs, strict=True):
                    for column, a, b in zip(kept, row, other, strict=True):
                        assert same_value(a, b), (schema, table, column, row, other)
                compared += 1
    return compared


def partition_columns(folder: Path) -> list[str]:
    found = [p.name.split("=", 1)[0] for p in folder.iterdir() if p.is_dir() and "=" in p.name]
    return sorted(set(found))


def parquet_files(folder: Path) -> str:
    """A table folder's Parquet files for DuckDB (partition folders included)."""
    if partition_columns(folder):
        return f"read_parquet('{folder}/**/*.parquet', hive_partitioning = true)"
    return f"read_parquet('{folder}/*.parquet')"


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is None and b is None
        return math.isclose(float(a), float(b), rel_tol=REL_TOL, abs_tol=0.0)
    return bool(a == b)


# -- the demo export on both engines ---------------------------------------------


@pytest.fixture(scope="module")
def demo(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo export (a copy, which the append test extends) built on DuckDB
    and on Spark."""
    work = tmp_path_factory.mktemp("spark-demo")
    export = work / "export"
    shutil.copytree(DEMO, export)
    duck = quiet(ROOT, work, "duck", raw_dir=export)
    assert duck.build().exit_code == 0
    on_spark = quiet(ROOT, work, "spark", raw_dir=export, target="spark")
    result = on_spark.build()
    assert result.exit_code == 0, result.summary
    return {"work": work, "export": export, "result": result}


def test_every_mart_built_on_spark_equals_the_duckdb_build(demo: dict[str, Any]) -> None:
    work = demo["work"]
    compared = assert_same_tables(
        work / "duck.duckdb", work / "spark-spark", ("marts", "intermediate")
    )
    assert compared >= 26
    statuses = {r.name: str(r.status) for r in demo["result"].results}
    for mart in ("kpi_win_rate", "kpi_churn", "kpi_stage_duration", "kpi_lead_response_time"):
        assert statuses[mart] == "success"
    # the Spark SQL that ran is kept, translated
    compiled = work / "spark-target" / "compiled" / "spark" / "models" / "marts"
    assert "`intermediate`.`int_closed_deals_aggregated`" in (
        compiled / "kpi_win_rate.sql"
    ).read_text(encoding="utf-8")


def test_an_incremental_append_on_spark_equals_the_duckdb_builds(demo: dict[str, Any]) -> None:
    from runner.crm.generate import generate_export

    work, export = demo["work"], demo["export"]
    effort = work / "spark-spark" / "marts" / "kpi_sales_effort"
    before = month_files(effort)
    generate_export(export, append=True)
    duck = quiet(ROOT, work, "duck", raw_dir=export)
    assert duck.build().exit_code == 0  # incremental on DuckDB too
    on_spark = quiet(ROOT, work, "spark", raw_dir=export, target="spark")
    result = on_spark.build()
    assert result.exit_code == 0, result.summary
    actions = {r.name: r.message for r in result.results}
    assert actions["int_stage_intervals_sequenced"] == "merged into"
    assert actions["kpi_sales_effort"] == "merged into"
    # the month partitions the batch touched were replaced, and only those
    after = month_files(effort)
    assert len(before) > 12 and set(before) <= set(after)
    kept = [m for m in before if after[m] == before[m]]
    replaced = [m for m in after if after[m] != before.get(m)]
    assert kept and replaced, (kept, replaced)
    # the same loads in the same order: equal to the row, load ids included
    assert_same_tables(work / "duck.duckdb", work / "spark-spark", ("marts", "intermediate"))
    # and equal to a full build of everything at once (whose rows all carry load 1)
    full = quiet(ROOT, work, "full", raw_dir=export)
    assert full.build().exit_code == 0
    assert_same_tables(
        work / "full.duckdb", work / "spark-spark", ("marts", "intermediate"), ("_load_id",)
    )


def test_money_in_the_reporting_currency_is_exact_on_spark_at_any_size(
    spark: Any, tmp_path: Path
) -> None:
    """`money_divided_by_rate` in exact integers on both engines, up to the
    largest DECIMAL(18, 4) amount (a DOUBLE on the way, as Spark's sign() is,
    rounds above 2^53)."""
    from runner.compiling import Compiler

    cases = [
        ("1000.00", "0.9"),
        ("-12345678901.2345", "0.7"),
        ("9999999999999.9999", "1.1"),
        ("99999999999999.9999", "1"),
        ("123456789012.3457", "0.1234567891"),
        ("0.00015", "1"),
    ]
    rows = ", ".join(
        f"(cast('{a}' as decimal(18, 4)), cast('{r}' as decimal(28, 10)))" for a, r in cases
    )
    project = quiet(ROOT, tmp_path, "m", vars={"reporting_currency": "USD"})
    sql = Compiler(project.loaded).compile_inline(
        "select {{ money_divided_by_rate('amount', 'rate') }} as converted\n"
        f"from (values {rows}) as money(amount, rate)"
    )
    with duckdb.connect() as con:
        expected = [r[0] for r in con.execute(sql).fetchall()]
    assert expected[2] == Decimal("9090909090909.0908")
    got = [r[0] for r in spark.sql(to_spark(sql)).collect()]
    assert got == expected


def month_files(table: Path) -> dict[str, frozenset[str]]:
    """A month-partitioned table's files, by month folder."""
    return {
        folder.name: frozenset(p.name for p in folder.glob("*.parquet"))
        for folder in table.iterdir()
        if folder.name.startswith("month=")
    }


# -- small projects ------------------------------------------------------------

SMALL_YML = """
models:
  - name: numbers
    columns:
      - name: n
        data_tests: [not_null]
"""


def small_project(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "small"
    (root / "models").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[tool.kpi]\nthreads = 1\n[tool.kpi.targets.spark]\nmaster = "local[2]"\n',
        encoding="utf-8",
    )
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_a_failing_error_test_on_spark_keeps_the_previous_table(spark: Any, tmp_path: Path) -> None:
    root = small_project(
        tmp_path,
        {
            "models/numbers.sql": "{{ config(materialized='table') }}\n"
            "select cast({{ var('n') }} as bigint) as n",
            "models/numbers.yml": SMALL_YML,
            "models/doubled.sql": "select n * 2 as m from {{ ref('numbers') }}",
        },
    )
    first = quiet(root, tmp_path, "w", target="spark", vars={"n": 1}).build()
    assert first.exit_code == 0, first.summary
    second = quiet(root, tmp_path, "w", target="spark", vars={"n": "null"}).build()
    assert second.exit_code == 1
    by_name = {r.name: r for r in second.results}
    assert "the previous version is kept" in by_name["numbers"].message
    assert str(by_name["not_null_numbers_n"].status) == "fail"
    assert str(by_name["doubled"].status) == "skipped"
    shown = quiet(root, tmp_path, "w", target="spark", vars={"n": 1}).show("numbers")
    assert shown == (["n"], [(1,)])
    with duckdb.connect() as con:
        assert read_spark(con, tmp_path / "w-spark" / "main" / "numbers", "n") == [(1,)]
    assert not (tmp_path / "w-spark" / "main" / "__kpi_new__numbers").exists()
    # a write that fails while Spark runs it (a value that does not cast)
    # leaves the table as it was and no staging folder behind
    (root / "models" / "numbers.sql").write_text(
        "{{ config(materialized='table') }}\n"
        "select cast(concat('x', cast(m as varchar)) as bigint) as n from {{ ref('doubled') }}",
        encoding="utf-8",
    )
    (root / "models" / "doubled.sql").write_text(
        "{{ config(materialized='table') }}\nselect 2 as m", encoding="utf-8"
    )
    third = quiet(root, tmp_path, "w", target="spark", vars={"n": 1}).build(select=["numbers"])
    assert third.exit_code == 1
    assert str({r.name: r for r in third.results}["numbers"].status) == "error"
    with duckdb.connect() as con:
        assert read_spark(con, tmp_path / "w-spark" / "main" / "numbers", "n") == [(1,)]
    assert not (tmp_path / "w-spark" / "main" / "__kpi_new__numbers").exists()


def test_a_model_spark_cannot_parse_is_named_before_anything_runs(
    spark: Any, tmp_path: Path
) -> None:
    root = small_project(
        tmp_path,
        {
            "models/numbers.sql": "select 1 as n",
            "models/stacked.sql": "select 1 as a, 2 as b\nunion all by name\nselect 3 as b, 4 as a",
        },
    )
    project = quiet(root, tmp_path, "w", target="spark")
    with pytest.raises(CompilationError) as caught:
        project.execute(Command.RUN, RunOptions())
    message = str(caught.value)
    assert "'stacked'" in message and "does not parse on Spark" in message
    assert "compiled/spark/models/stacked.sql" in message
    assert not (tmp_path / "w-spark" / "main").exists()  # nothing ran


# -- without Spark ---------------------------------------------------------------


def test_translation_rewrites_what_spark_reads_otherwise() -> None:
    sql = to_spark(
        "with a as not materialized (select 1 as x)\n"
        "select row_number() over (order by x) as r, cast(x as hugeint) as h,\n"
        "  sum(x) / 3.0 as d, epoch_us(t) as e from a"
    )
    assert "MATERIALIZED" not in sql.upper()
    assert "CAST(ROW_NUMBER() OVER (ORDER BY x NULLS LAST) AS BIGINT)" in sql
    assert "DECIMAL(38, 0)" in sql
    assert "CAST(SUM(x) AS DOUBLE) / 3.0" in sql
    assert "UNIX_MICROS(t)" in sql
    # the unique tests' first step groups hashes: 64 bits on both engines
    assert "XXHASH64(a, b)" in to_spark("select hash(a, b) as h from t")
    assert "CAST(SIGN(x) AS TINYINT) * 2" in to_spark("select sign(x) * 2 from a")
    # what sqlglot would translate wrongly without a word is refused, named
    for construct in (
        "select trunc(x / 3, 4) as t from a",
        "select * from a cross join range(3) as offsets(n)",
        "select * from a qualify row_number() over (partition by k order by t) = 1",
    ):
        with pytest.raises(CompilationError, match=r"'m' uses .* sqlglot translates"):
            to_spark(construct, name="m")
    # a division that is DOUBLE already is left alone
    assert "CAST(CAST(" not in to_spark("select cast(a as double) / nullif(b, 0)")


def test_duckdb_commands_never_import_pyspark(tmp_path: Path) -> None:
    code = (
        "import sys, io\n"
        "from runner.project import Project\n"
        "from runner.reporting import Reporter\n"
        f"p = Project.load({str(ROOT)!r}, target_path={str(tmp_path)!r}, "
        "reporter=Reporter(stream=io.StringIO()))\n"
        "p.ls()\n"
        "assert 'pyspark' not in sys.modules and 'runner.spark_build' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_delete_insert_on_spark_replaces_keys_null_ones_too_and_drops_invalid_ones(
    spark: Any, tmp_path: Path
) -> None:
    from runner.engines.spark import SparkAdapter
    from runner.nodes import Relation
    from runner.spark_session import SparkTarget

    adapter = SparkAdapter(spark, SparkTarget(warehouse_dir=tmp_path / "w"))
    adapter.create_schema("inc")
    table, valid = Relation("inc", "t"), Relation("inc", "valid")
    old = "select * from values (1, 'a'), (2, 'b'), (4, 'd'), (null, 'n') as rows(k, v)"
    adapter.create_table_as(table, old)
    adapter.create_table_as(valid, "select * from values (1), (3), (4), (null) as rows(k)")
    batch = "select * from values (1, 'A'), (3, 'C'), (null, 'N') as rows(k, v)"
    assert adapter.delete_insert(table, batch, ("k",), "`inc`.`valid`") == 4
    rows = spark.sql("select k, v from inc.t order by k nulls first").collect()
    assert [tuple(r) for r in rows] == [(None, "N"), (1, "A"), (3, "C"), (4, "d")]
    assert adapter.insert_by_name(table, "select 'e' as v, 5 as k") == 5
    assert spark.sql("select v from inc.t where k = 5").collect()[0][0] == "e"


def test_a_month_partitioned_increment_replaces_only_the_months_it_touches(
    spark: Any, tmp_path: Path
) -> None:
    from runner.engines import spark_increments
    from runner.engines.spark import SparkAdapter
    from runner.nodes import Relation
    from runner.spark_session import SparkTarget

    adapter = SparkAdapter(spark, SparkTarget(warehouse_dir=tmp_path / "w"))
    adapter.create_schema("inc")
    table, valid = Relation("inc", "by_month"), Relation("inc", "months")
    old = (
        "select * from values (date'2025-01-01', 'a', 1), (date'2025-02-01', 'a', 2), "
        "(date'2025-02-01', 'b', 3), (date'2025-03-01', 'a', 4) as rows(month, k, v)"
    )
    adapter.write_table(table, old, partition_by="month")
    assert adapter.partition_columns(table) == ["month"]
    adapter.create_table_as(
        valid, "select * from values (date'2025-01-01'), (date'2025-02-01') as rows(month)"
    )
    folder = adapter.location(table)
    january = sorted(p.name for p in (folder / "month=2025-01-01").iterdir())
    batch = "select date'2025-02-01' as month, 'c' as k, 30 as v"

    def rows(relation: Relation) -> list[tuple[Any, ...]]:
        query = f"select month, k, v from `inc`.`{relation.identifier}` order by month, k"
        return [tuple(r) for r in spark.sql(query).collect()]

    # staged, then discarded (a blocking test failed): the table is as it was
    staged = spark_increments.stage(adapter, table, batch, "delete+insert", ["month"], None)
    assert staged is not None
    spark_increments.discard(adapter, staged)
    assert [r[2] for r in rows(table)] == [1, 2, 3, 4]
    assert sorted(p.name for p in folder.parent.iterdir()) == ["by_month", "months"]

    # February replaced by the batch, March (no longer valid) dropped, January untouched
    staged = spark_increments.stage(
        adapter, table, batch, "delete+insert", ["month"], "`inc`.`months`"
    )
    assert staged is not None
    expected = [(date(2025, 1, 1), "a", 1), (date(2025, 2, 1), "c", 30)]
    assert rows(staged.next_version) == expected  # what the tests read
    assert len(rows(table)) == 4  # not visible yet
    spark_increments.publish(adapter, staged)
    assert rows(table) == expected
    assert sorted(p.name for p in folder.iterdir() if "=" in p.name) == [
        "month=2025-01-01",
        "month=2025-02-01",
    ]
    assert sorted(p.name for p in (folder / "month=2025-01-01").iterdir()) == january
    # a new session's catalog finds the partitions from the folders
    adapter.drop_relation(table, keep_files=True)
    adapter.register(table)
    assert rows(table) == expected
    # an empty batch touches nothing
    empty = f"select * from ({batch}) as b where false"
    staged = spark_increments.stage(adapter, table, empty, "delete+insert", ["month"], None)
    assert staged is not None
    spark_increments.publish(adapter, staged)
    assert rows(table) == expected
    assert sorted(p.name for p in (folder / "month=2025-01-01").iterdir()) == january


def test_delta_and_iceberg_increments_are_one_merge_or_insert(spark: Any) -> None:
    """The statements' text (Delta and Iceberg jars are not installed here),
    which Spark's parser reads."""
    from runner.engines.spark_increments import append_into_sql, merge_sql
    from runner.nodes import Relation
    from runner.transpile import spark_parse_error

    target, batch = Relation("marts", "kpi"), Relation("marts", "__kpi_new__kpi")
    types = {"month": "date", "team": "string", "n": "bigint"}
    sql = merge_sql(target, batch, list(types), types, ["month"], "`marts`.`months`")
    assert sql == (
        "merge into `marts`.`kpi` as target\n"
        "using (\n"
        "select `month`, cast(null as string) as `team`, cast(null as bigint) as `n`, "
        "true as `__kpi_delete` from (\n"
        "select distinct `month` from `marts`.`__kpi_new__kpi`\n"
        "union\n"
        "select distinct old.`month` from `marts`.`kpi` as old\n"
        "left anti join `marts`.`months` as valid on old.`month` <=> valid.`month`\n"
        ") as doomed\n"
        "union all\n"
        "select `month`, `team`, `n`, false as `__kpi_delete` from `marts`.`__kpi_new__kpi`\n"
        ") as source\n"
        "on target.`month` <=> source.`month` and source.`__kpi_delete`\n"
        "when matched then delete\n"
        "when not matched and not source.`__kpi_delete` then\n"
        "  insert (`month`, `team`, `n`) values (source.`month`, source.`team`, source.`n`)"
    )
    assert append_into_sql(target, batch, ["month", "n"]) == (
        "insert into `marts`.`kpi` (`month`, `n`)\n"
        "select `month`, `n` from `marts`.`__kpi_new__kpi`"
    )
    parser = spark._jsparkSession.sessionState().sqlParser()
    assert spark_parse_error(parser, sql) is None
    assert spark_parse_error(parser, append_into_sql(target, batch, ["month"])) is None
