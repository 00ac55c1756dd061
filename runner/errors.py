"""One root error type, with small subclasses that say who is at fault.

Every error carries the file (and the line and column where known) that the
user should open, and a sentence that says what to do. The CLI turns
`ProjectError` into exit code 2 and `LoadError` into exit code 1; a model or
test that fails is a result (exit code 1), not an exception.
"""

from __future__ import annotations

from pathlib import Path


class KpiError(Exception):
    """Root of every error the runner raises on purpose."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        column: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.column = column
        self.hint = hint
        super().__init__(self.render())

    @property
    def location(self) -> str:
        """`file:line:column`, as far as it is known."""
        if self.path is None:
            return ""
        parts = [self.path]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def render(self) -> str:
        text = f"{self.location}: {self.message}" if self.location else self.message
        if self.hint:
            text = f"{text} {self.hint}"
        return text


class ProjectError(KpiError):
    """The project or the command line is wrong (exit 2)."""


class CompilationError(ProjectError):
    """A model, test or macro does not render, or its SQL does not parse."""


class DependencyError(ProjectError):
    """A missing ref/source, a cycle, or a duplicate node name."""


class SelectionError(ProjectError):
    """A selector the runner cannot read."""


class WarehouseError(KpiError):
    """The warehouse file cannot be opened or written."""

    exit_code = 2


class LockError(WarehouseError):
    """Another process holds the warehouse."""


class ResourceError(KpiError):
    """The machine ran out of something: memory, disk space (exit 1)."""

    exit_code = 1


class LoadError(KpiError):
    """A raw export does not follow its contract (exit 1)."""

    exit_code = 1


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (DuckDB's run to several)."""
    return str(exc).strip().split("\n", 1)[0]
