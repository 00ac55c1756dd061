"""Progress lines as dbt prints them, on stderr.

1 of 24 OK created view staging.stg_crm__users ........ [OK in 0.01s]
7 of 24 OK created table marts.kpi_win_rate ...... [1,204 rows in 0.05s]
Done. PASS=23 WARN=1 ERROR=0 SKIP=0 TOTAL=24
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any, TextIO

LINE_WIDTH = 80


class Reporter:
    """Numbers and prints one line per finished node; thread-safe."""

    def __init__(self, total: int = 0, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.total = total
        self.stream = stream
        self.quiet = quiet
        self.counts: Counter[str] = Counter()
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

    def node_lines(self, lines: Sequence[tuple[str, str, str, str]]) -> None:
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
