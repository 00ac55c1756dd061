"""Reading the project's yml files, keeping the line of every mapping.

`read_yml` returns plain dicts and lists, except that mappings are `LineDict`s
and strings are `LineStr`s that know the line they start on, so that errors
about a yml entry can name `models/marts/kpi_win_rate.yml:14`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from runner.errors import ProjectError

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LineDict(dict[str, Any]):
    """A yml mapping that remembers its line (1-based)."""

    line: int | None = None


class LineStr(str):
    """A yml string that remembers its line (1-based)."""

    line: int | None = None


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    pass


def _construct_map(loader: Any, node: yaml.MappingNode) -> Any:
    data = LineDict()
    data.line = node.start_mark.line + 1
    yield data
    data.update(loader.construct_mapping(node))


def _construct_str(loader: Any, node: yaml.ScalarNode) -> LineStr:
    value = LineStr(loader.construct_scalar(node))
    value.line = node.start_mark.line + 1
    return value


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:str", _construct_str)


def line_of(value: Any) -> int | None:
    """The yml line of a value read by `read_yml`, when it has one."""
    return getattr(value, "line", None)


def read_yml(path: Path, display_path: str) -> dict[str, Any]:
    """Parse one yml file; a syntax error names the file, line and column."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ProjectError("is not UTF-8 text.", path=display_path) from exc
    try:
        document = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise ProjectError(
            f"yml syntax error: {exc.problem or exc.context}.",
            path=display_path,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
            hint="Fix the indentation or quoting there.",
        ) from exc
    except yaml.YAMLError as exc:
        raise ProjectError(f"yml error: {exc}.", path=display_path) from exc
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ProjectError(
            "a properties file must be a mapping (with keys such as models:, sources:, seeds:).",
            path=display_path,
            line=1,
        )
    return document
