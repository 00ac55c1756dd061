"""A dbt-style build engine on DuckDB: render, order, build and test SQL models.

`from runner import Project` is the Python API; `kpi` is its command line.
Heavy modules (DuckDB, sqlglot) are imported only when a command needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runner.project import Project, RunResult

__all__ = ["Project", "RunResult"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from runner import project

        return getattr(project, name)
    raise AttributeError(name)
