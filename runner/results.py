"""What running a node produced: one `NodeResult` per node, whatever its kind.

Runners (`execution.py`) return results and never print; the reporter
(`reporting.py`) turns them into progress lines and failure blocks, and
`artifacts.py` writes the fields dbt's `run_results.json` has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from runner.nodes import Node

if TYPE_CHECKING:
    from runner.data_tests import TestOutcome


class NodeStatus(StrEnum):
    """dbt's word for what happened to a node; compares equal to that word."""

    SUCCESS = "success"  # a model or seed was built
    ERROR = "error"  # it could not be built or run, or it was not published
    SKIPPED = "skipped"
    PASS = "pass"  # a test found no failing rows (or fewer than its thresholds)
    WARN = "warn"
    FAIL = "fail"  # an error-severity test failed

    @property
    def failed(self) -> bool:
        return self in (NodeStatus.ERROR, NodeStatus.FAIL)


# The fields of a result that `run_results.json` holds, in its order.
ARTIFACT_FIELDS = (
    "unique_id",
    "name",
    "resource_type",
    "status",
    "message",
    "rows",
    "failures",
    "execution_time",
    "started_at",
    "completed_at",
    "relation",
    "compiled_path",
)


@dataclass(frozen=True)
class NodeResult:
    """What happened to one node.

    The artifact fields come first; `node` and the fields after it are what
    the reporter needs to describe the result: the action taken (`created
    view`), the full error text, the failing rows of a test, the names of the
    tests that kept a model from being published.
    """

    unique_id: str
    name: str
    resource_type: str
    status: NodeStatus
    message: str = ""
    rows: int | None = None
    failures: int | None = None
    execution_time: float = 0.0
    started_at: str = ""
    completed_at: str = ""
    relation: str | None = None
    compiled_path: str | None = None
    node: Node | None = field(default=None, repr=False, compare=False)
    action: str = ""
    detail: str = ""
    columns: tuple[str, ...] = ()
    sample: tuple[tuple[Any, ...], ...] = ()
    blocked_by: tuple[str, ...] = ()
    internal: bool = False

    def artifact(self) -> dict[str, Any]:
        """The result as `run_results.json` records it."""
        return {name: getattr(self, name) for name in ARTIFACT_FIELDS}


def make_result(
    node: Node,
    status: NodeStatus,
    message: str,
    seconds: float,
    wall: float,
    compiled_path: str | None = None,
    **details: Any,
) -> NodeResult:
    """A result for `node` that took `seconds` from `wall` (a Unix time)."""
    return NodeResult(
        unique_id=node.unique_id,
        name=node.name,
        resource_type=node.resource_type,
        status=status,
        message=message,
        execution_time=round(seconds, 6),
        started_at=iso_time(wall),
        completed_at=iso_time(wall + seconds),
        relation=node.relation.display if not node.is_test else None,
        compiled_path=compiled_path,
        node=node,
        **details,
    )


def make_test_result(
    test: Node,
    outcome: TestOutcome,
    seconds: float,
    wall: float,
    compiled_path: str | None = None,
) -> NodeResult:
    """The result of a data test, with its failing rows' count and sample."""
    return make_result(
        test,
        outcome.status,
        outcome.message,
        seconds,
        wall,
        compiled_path,
        failures=outcome.failures,
        detail=outcome.message,
        columns=outcome.columns,
        sample=outcome.sample,
    )


def iso_time(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class RunResult:
    """The outcome of run, seed, test or build."""

    command: str
    results: list[NodeResult] = field(default_factory=list)
    elapsed: float = 0.0
    summary: str = ""
    stale: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if any(r.status.failed for r in self.results) else 0

    def by_name(self) -> dict[str, NodeResult]:
        return {r.name: r for r in self.results}

    def statuses(self) -> dict[str, str]:
        return {r.name: r.status for r in self.results}
