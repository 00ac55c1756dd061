"""Progress lines as dbt prints them, on stderr, formatted from results.

1 of 24 OK created view staging.stg_crm__users ........ [OK in 0.01s]
7 of 24 OK created table marts.kpi_win_rate ...... [1,204 rows in 0.05s]
Done. PASS=23 WARN=1 ERROR=0 SKIP=0 TOTAL=24

The runners return `NodeResult`s; only this module turns them into words.
"""

from __future__ import annotations

import re
import sys
import threading
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from runner.nodes import Node
    from runner.results import NodeResult

LINE_WIDTH = 80
Line = tuple[str, str, str, str]  # (summary bucket, word, description, detail)


class Reporter:
    """Numbers and prints one line per finished node; thread-safe."""

    def __init__(self, total: int = 0, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.total = total
        self.stream = stream
        self.quiet = quiet
        self.counts: Counter[str] = Counter()
        self.failure_blocks: list[str] = []  # printed together after the run
        self._index = 0
        self._lock = threading.Lock()

    def _out(self) -> TextIO:
        return self.stream or sys.stderr

    def info(self, message: str) -> None:
        if not self.quiet:
            with self._lock:
                print(message, file=self._out(), flush=True)

    def warning(self, message: str) -> None:
        with self._lock:
            print(f"Warning: {message}", file=self._out(), flush=True)

    def report(self, results: Sequence[NodeResult]) -> None:
        """Print one line per result, together, and keep their failure details."""
        blocks = [b for b in (failure_block(r) for r in results) if b]
        with self._lock:
            self.failure_blocks += blocks
        self.node_lines([result_line(r) for r in results])

    def node_lines(self, lines: Sequence[Line]) -> None:
        """Print lines `(summary_bucket, word, description, detail)` together."""
        with self._lock:
            for bucket, word, description, detail in lines:
                self._index += 1
                self.counts[bucket] += 1
                if self.quiet:
                    continue
                width = len(str(self.total))
                head = f"  {self._index:>{width}} of {self.total} {word} {description} "
                tail = f" [{detail}]"
                dots = "." * max(3, LINE_WIDTH - len(head) - len(tail))
                print(f"{head}{dots}{tail}", file=self._out(), flush=True)

    def block(self, text: str) -> None:
        """Print a multi-line block (failure details) as one piece."""
        if not self.quiet:
            with self._lock:
                print(text, file=self._out(), flush=True)

    def summary(self, seconds: float) -> str:
        c = self.counts
        line = (
            f"Done in {seconds:.2f}s. PASS={c['pass']} WARN={c['warn']} "
            f"ERROR={c['error']} SKIP={c['skip']} TOTAL={sum(c.values())}"
        )
        with self._lock:
            print(f"\n{line}", file=self._out(), flush=True)
        return line

    def repeat_warnings(self, warnings: Sequence[str]) -> None:
        """Repeat, at the end, the warnings a long output may have scrolled away
        (the raw load's: absent optional columns, extra columns)."""
        if warnings:
            self.warning(
                f"{len(warnings)} warning(s) from the raw load:\n"
                + "\n".join(f"  {w}" for w in warnings)
            )


def result_line(result: NodeResult) -> Line:
    """The progress line of one result."""
    node = _node(result)
    seconds = result.execution_time
    if result.status == "skipped":
        return ("skip", "SKIP", node.name if node.is_test else _what(node), "SKIP")
    if result.internal:
        return ("error", "ERROR", node.name, "ERROR")
    if node.is_test:
        return _test_line(result, node, seconds)
    if result.blocked_by:
        kept = f"kept previous in {seconds:.2f}s"
        return ("error", "ERROR", f"{_what(node)} not published", kept)
    if result.status == "error":
        return ("error", "ERROR", f"creating {_what(node)}", f"ERROR in {seconds:.2f}s")
    detail = (
        f"{thousands(result.rows)} rows in {seconds:.2f}s"
        if result.rows is not None
        else f"OK in {seconds:.2f}s"
    )
    return ("pass", "OK", f"{result.action} {node.relation.display}", detail)


def _test_line(result: NodeResult, test: Node, seconds: float) -> Line:
    if result.status == "pass":
        return ("pass", "PASS", test.name, f"PASS in {seconds:.2f}s")
    if result.status == "error":
        return ("error", "ERROR", test.name, f"ERROR in {seconds:.2f}s")
    word = "WARN" if result.status == "warn" else "FAIL"
    count = thousands(result.failures or 0)
    bucket = "warn" if result.status == "warn" else "error"
    return (bucket, f"{word} {count}", test.name, f"{word} {count} in {seconds:.2f}s")


def failure_block(result: NodeResult) -> str | None:
    """The details printed after the run for a result that failed or warned."""
    node = _node(result)
    if result.status in ("warn", "fail"):
        warned = result.status == "warn"
        threshold = node.config.warn_if if warned else node.config.error_if
        text = (
            f"Got {thousands(result.failures or 0)} failing row(s), configured to "
            f"{'warn' if warned else 'fail'} if {threshold}."
        )
        if result.sample:
            text += "\nFirst rows:\n" + format_rows(result.columns, result.sample)
        return _block(result, node, text, warning=warned)
    if result.status == "error" and not result.blocked_by:
        return _block(result, node, result.detail + _missing_relation_hint(node, result.detail))
    return None


# DuckDB's and Spark's words for a relation that is not there
_MISSING_RELATION = re.compile(
    r"Catalog Error: (Table|View) with name \S+ does not exist|\[TABLE_OR_VIEW_NOT_FOUND\]"
)


def _missing_relation_hint(node: Node, detail: str) -> str:
    """What to do when a test reads a model not built yet: in dbt's eager
    indirect selection, selecting one model of a relationships test runs it."""
    models = [uid.rsplit(".", 1)[-1] for uid in node.depends_on if uid.startswith("model.")]
    if not node.is_test or not models or not _MISSING_RELATION.search(detail):
        return ""
    return (
        "\nA model this test reads is not built yet: build it first "
        f"(kpi build -s {' '.join('+' + m for m in models)}), or leave out the tests "
        "of models that are not all selected (--indirect-selection cautious)."
    )


def _block(result: NodeResult, node: Node, text: str, warning: bool = False) -> str:
    where = (node.yml_path or node.path) if node.is_test else node.path
    kind = "Warning in" if warning else ("Failure in" if node.is_test else "Error in")
    head = f"{kind} {node.resource_type} {node.name} ({where})"
    body = "\n".join("  " + line for line in text.splitlines())
    tail = f"\n  compiled SQL: {result.compiled_path}" if result.compiled_path else ""
    return f"{head}\n{body}{tail}"


def _what(node: Node) -> str:
    """`table marts.kpi_win_rate`: what a relation was built as, for a line."""
    kind = "seed" if node.is_seed else str(node.config.materialized)
    return f"{kind.replace('incremental', 'table')} {node.relation.display}"


def _node(result: NodeResult) -> Node:
    if result.node is None:
        raise ValueError(f"the result of {result.name} does not carry its node")
    return result.node


def format_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], max_width: int = 40) -> str:
    """A small aligned text table, for test failures and `kpi show`."""
    cells = [[_cell(v, max_width) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        return " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    out = [line(columns), "-+-".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    return "\n".join(out)


def _cell(value: Any, max_width: int) -> str:
    text = "NULL" if value is None else str(value)
    text = text.replace("\n", "\\n")
    return text if len(text) <= max_width else text[: max_width - 1] + "…"


def thousands(number: int) -> str:
    return f"{number:,}"
