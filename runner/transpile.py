"""DuckDB SQL to Spark SQL, at compile time.

The models are written once, in DuckDB SQL. For the Spark target every
compiled query is translated by sqlglot (`read="duckdb"`, `write="spark"`)
and then rewritten where sqlglot's output would parse but mean something
else on Spark, or not parse at all:

- `with x as not materialized (...)`: the hint is dropped (Spark has none);
- `row_number()`, `rank()`, `dense_rank()`, `ntile()` are BIGINT on DuckDB
  and INT on Spark: cast to BIGINT;
- `sign(x)` is TINYINT on DuckDB and DOUBLE on Spark (a sign times an exact
  integer above 2^53 would silently round): cast to TINYINT;
- `hugeint` (sqlglot writes `INT128`, which Spark does not know):
  `DECIMAL(38, 0)`;
- functions sqlglot passes through unknown: `epoch_us(t)` is
  `unix_micros(t)`, `to_months(n)` is `make_ym_interval(0, n)`, `error(m)`
  is `cast(raise_error(m) as string)` (DuckDB's error() has a type; Spark's
  raise_error() is void, which no table can hold), `hash(...)` is
  `xxhash64(...)` (64 bits, as DuckDB's; Spark's `hash` has 32, so that ten
  million keys would share thousands of values);
- `/` is DOUBLE division on DuckDB whatever its operands, DECIMAL division
  on Spark when both are decimals (a silent drift of up to 2e-7 in an
  average): the numerator is cast to DOUBLE unless it already is.

Three constructs sqlglot translates wrongly without a word are refused with
the model's name instead (`untranslatable`): `trunc(x, n)` (written as a
cast to BIGINT), `range()` / `generate_series()` as a table (an invalid
call), `select *` with `qualify` (its window column joins the `*`).

sqlglot's "OK" proves nothing about Spark: every translated query is then
parsed by Spark's own parser (`spark_parse_error`) before anything runs.
`docs/spark.md` lists these rewrites and which of them belong in sqlglot.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from runner.errors import CompilationError

if TYPE_CHECKING:
    from sqlglot import exp

_RANKING = ("RowNumber", "Rank", "DenseRank", "Ntile")
_SPARK_POSITION = re.compile(r"line (\d+), pos (\d+)", re.IGNORECASE)


def to_spark(sql: str, *, name: str = "query", path: str | None = None) -> str:
    """`sql` (one DuckDB statement) as Spark SQL; a `CompilationError` naming
    `name` when sqlglot cannot read it."""
    import sqlglot

    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.SqlglotError as exc:
        raise CompilationError(
            f"'{name}' cannot be translated to Spark SQL: {_first_line(str(exc))}.",
            path=path,
            hint="Write the construct in SQL both engines read (see docs/spark.md), "
            "or give the model a Spark branch with `{% if target.type == 'spark' %}`.",
        ) from exc
    refused = untranslatable(tree)  # type: ignore[arg-type]
    if refused is not None:
        construct, instead = refused
        raise CompilationError(
            f"'{name}' uses {construct}, which sqlglot translates to Spark SQL wrongly.",
            path=path,
            hint=f"{instead} (docs/spark.md lists the constructs both engines read).",
        )
    tree = rewrite(tree)  # type: ignore[arg-type]
    return tree.sql(dialect="spark", pretty=True) + "\n"


def untranslatable(tree: exp.Expression) -> tuple[str, str] | None:
    """`(construct, what to write instead)` for the first construct of `tree`
    that sqlglot would turn into other Spark SQL without a word (a query that
    parses and computes something else, or fails at run time), else None."""
    from sqlglot import exp

    for node in tree.walk():
        if isinstance(node, exp.Trunc) and node.args.get("decimals") is not None:
            return (
                "trunc(x, n)",
                "Use the macro truncate_double(x, n) (sqlglot writes CAST(x AS BIGINT): "
                "Spark's trunc is for dates)",
            )
        if isinstance(node, exp.Table) and isinstance(node.this, exp.GenerateSeries):
            return (
                "range() or generate_series() as a table",
                "Use (values (0), (1), ...) as t(c), or unnest() of a list in its own CTE",
            )
        if (
            isinstance(node, exp.Select)
            and node.args.get("qualify") is not None
            and any(isinstance(e, exp.Star) for e in node.expressions)
        ):
            return (
                "select * with qualify",
                "Name the columns, or keep the rows with not exists (sqlglot's rewrite of "
                "qualify adds its window column to select *)",
            )
    return None


def rewrite(tree: exp.Expression) -> exp.Expression:
    """The rewrites of the module docstring, on a tree sqlglot read as DuckDB."""
    from sqlglot import exp

    def fix(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.CTE) and node.args.get("materialized") is not None:
            node.set("materialized", None)
            return node
        if isinstance(node, exp.DataType) and node.this in (
            exp.DataType.Type.INT128,
            exp.DataType.Type.UINT128,
        ):
            return exp.DataType.build("DECIMAL(38, 0)")
        if isinstance(node, exp.Anonymous):
            function = str(node.this).lower()
            arguments = [a.copy() for a in node.expressions]
            if function == "epoch_us":
                return exp.Anonymous(this="unix_micros", expressions=arguments)
            if function == "to_months":
                zero = exp.Literal.number(0)
                return exp.Anonymous(this="make_ym_interval", expressions=[zero, *arguments])
            if function == "hash":
                return exp.Anonymous(this="xxhash64", expressions=arguments)
            if function == "error":
                fail = exp.Anonymous(this="raise_error", expressions=arguments)
                return exp.Cast(this=fail, to=exp.DataType.build("STRING"))
        if isinstance(node, exp.Sign) and not isinstance(node.parent, exp.Cast):
            return exp.Cast(this=node.copy(), to=exp.DataType.build("TINYINT"))
        if (
            isinstance(node, exp.Window)
            and type(node.this).__name__ in _RANKING
            and not isinstance(node.parent, exp.Cast)
        ):
            return exp.Cast(this=node.copy(), to=exp.DataType.build("BIGINT"))
        if isinstance(node, exp.Div) and not _is_double(node.this):
            numerator = exp.Cast(this=node.this.copy(), to=exp.DataType.build("DOUBLE"))
            node.set("this", numerator)
            return node
        return node

    return tree.transform(fix, copy=True)


def _is_double(node: exp.Expression) -> bool:
    from sqlglot import exp

    while isinstance(node, exp.Paren):
        node = node.this
    return isinstance(node, exp.Cast) and node.to.this in (
        exp.DataType.Type.DOUBLE,
        exp.DataType.Type.FLOAT,
    )


def retarget(sql: str, replacements: dict[tuple[str, str], tuple[str, str]]) -> str:
    """Spark SQL reading `(schema, table)` from another relation instead (a
    test of a model reads the model's staging table before it is swapped in)."""
    import sqlglot
    from sqlglot import exp

    wanted = {(s.lower(), t.lower()): v for (s, t), v in replacements.items()}
    tree = sqlglot.parse_one(sql, read="spark")
    for table in tree.find_all(exp.Table):
        key = (table.db.lower(), table.name.lower())
        if key in wanted:
            schema, name = wanted[key]
            table.set("db", exp.to_identifier(schema, quoted=True))
            table.set("this", exp.to_identifier(name, quoted=True))
    return tree.sql(dialect="spark", pretty=True)


def spark_parse_error(parser: Any, sql: str) -> tuple[str, int, int] | None:
    """`(message, line, column)` when Spark's parser (`sessionState().sqlParser()`)
    refuses `sql`, else None."""
    try:
        parser.parsePlan(sql)
    except Exception as exc:  # noqa: BLE001 - py4j or pyspark's ParseException
        text = _spark_message(exc)
        found = _SPARK_POSITION.search(text)
        line, column = (int(found.group(1)), int(found.group(2)) + 1) if found else (1, 1)
        return _first_line(text), line, column
    return None


def spark_first_line(exc: BaseException) -> str:
    """The first non-empty line of a Spark error's message."""
    return _first_line(_spark_message(exc))


def _spark_message(exc: BaseException) -> str:
    java = getattr(exc, "java_exception", None)
    if java is not None:
        return str(java.getMessage())
    message = getattr(exc, "getMessage", None)
    if callable(message):
        return str(message())
    return str(exc)


def _first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip().rstrip(".")
    return "unknown error"
