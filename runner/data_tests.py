"""Running one data test: count its failing rows and judge them.

A test passes when its query returns no rows. `warn_if` / `error_if`
(`"!= 0"` by default, or `"> 10"`, ...) compare the count of failing rows;
`severity: warn` never errors. A failure keeps the first rows for the report.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.engines.base import strip_statement
from runner.errors import ProjectError
from runner.nodes import NodeConfig, Relation
from runner.results import NodeStatus

if TYPE_CHECKING:
    from runner.engines.base import EngineAdapter

SAMPLE_ROWS = 5
THRESHOLD = re.compile(r"^\s*(==|=|!=|<>|>=|<=|>|<)\s*(\d+)\s*$")
_OPERATORS: dict[str, Callable[[int, int], bool]] = {
    "==": operator.eq,
    "=": operator.eq,
    "!=": operator.ne,
    "<>": operator.ne,
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}


@dataclass(frozen=True)
class TestOutcome:
    """`status` is pass, warn, fail (error severity) or error (the SQL failed)."""

    status: NodeStatus
    failures: int = 0
    message: str = ""
    columns: tuple[str, ...] = ()
    sample: tuple[tuple[Any, ...], ...] = field(default_factory=tuple)

    @property
    def blocks(self) -> bool:
        """Whether this outcome stops the tested model from being published (and
        its descendants from running): an error-severity failure (`judge` gives
        warn-severity tests `warn`, never `fail`), or a test that could not run."""
        return self.status.failed


def condition(text: str, path: str | None = None) -> Callable[[int], bool]:
    """`"> 10"` -> a predicate on the failure count."""
    match = THRESHOLD.match(text)
    if not match:
        raise ProjectError(
            f"cannot read the threshold {text!r}; write it as '!= 0', '> 10', ...",
            path=path,
        )
    op, number = _OPERATORS[match.group(1)], int(match.group(2))
    return lambda count: op(count, number)


def judge(config: NodeConfig, failures: int, path: str | None = None) -> NodeStatus:
    """pass, warn or fail for `failures` failing rows under `config`."""
    if config.severity == "error" and condition(config.error_if, path)(failures):
        return NodeStatus.FAIL
    if condition(config.warn_if, path)(failures):
        return NodeStatus.WARN
    return NodeStatus.PASS


def test_query(sql: str, config: NodeConfig) -> str:
    """The rows a compiled test counts: its query, within its `limit`."""
    query = strip_statement(sql)
    if config.limit is not None:
        query = f"select * from (\n{query}\n) as limited limit {int(config.limit)}"
    return query


SHARED_RELATION = "__kpi_tested"


def fused_count_sql(queries: Sequence[str], view: str | None = None) -> str:
    """One query that counts the rows of each of `queries` (test queries of one
    relation): rows of (index in `queries`, count). One statement instead of
    one per test: on Spark one job, on DuckDB one plan and one round trip.

    `view`, the rendered name of the view the tests audit: the queries read it
    through one common table expression instead of each expanding the view's
    query, so that DuckDB can compute its rows once for all of them (it
    materializes a CTE read more than once unless inlining it is cheaper)."""
    if view is not None:
        queries = [query.replace(view, SHARED_RELATION) for query in queries]
    fused = "\nunion all\n".join(
        f"select {i} as test_index, count(*) as failures from (\n{query}\n) as test_{i}"
        for i, query in enumerate(queries)
    )
    if view is None:
        return fused
    return f"with {SHARED_RELATION} as (select * from {view})\n{fused}"


def run_test(
    cur: EngineAdapter,
    sql: str,
    config: NodeConfig,
    path: str | None = None,
    failures: int | None = None,
) -> TestOutcome:
    """Run one compiled test query on `cur` (`failures`: its count, when a fused
    query already counted it; the query then runs only to sample a failure)."""
    query = test_query(sql, config)
    try:
        if failures is None:
            row = cur.execute(f"select count(*) from (\n{query}\n) as kpi_test").fetchone()
            failures = int(row[0]) if row else 0
        status = judge(config, failures, path)
        if status == NodeStatus.PASS:
            return TestOutcome(status, failures)
        result = cur.execute(f"select * from (\n{query}\n) as kpi_test limit {SAMPLE_ROWS}")
        columns = tuple(d[0] for d in result.description or ())
        return TestOutcome(status, failures, "", columns, tuple(result.fetchall()))
    except cur.Error as exc:
        return TestOutcome(NodeStatus.ERROR, 0, str(exc).strip())


def store_failures(cur: EngineAdapter, relation: Relation, sql: str) -> None:
    """Keep the test's failing rows in `relation` (in the `audit` schema)."""
    cur.create_table_as(relation, sql)


def export_failures(cur: EngineAdapter, sql: str, file: Path) -> None:
    """Write failing rows to a Parquet file, outside any transaction's reach."""
    file.parent.mkdir(parents=True, exist_ok=True)
    cur.write_parquet(sql, str(file))


def import_failures(cur: EngineAdapter, relation: Relation, file: Path) -> None:
    cur.create_table_as(relation, cur.parquet_select(str(file)))
    file.unlink(missing_ok=True)
