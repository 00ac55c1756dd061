"""A dbt-style build engine on DuckDB: render, order, build and test SQL models.

`from runner import Project` is the Python API; `kpi` is its command line.
Heavy modules (DuckDB, sqlglot) are imported only when a command needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runner.project import Project
    from runner.results import RunResult

__all__ = ["Project", "RunResult"]


def __getattr__(name: str) -> Any:
    if name == "Project":
        from runner.project import Project

        return Project
    if name == "RunResult":
        from runner.results import RunResult

        return RunResult
    raise AttributeError(name)
