"""Ctrl-C remembered, so that a load cannot commit after one.

Python turns SIGINT into KeyboardInterrupt at the next bytecode; when it
arrives while DuckDB runs a query, DuckDB cancels the query and raises
"Query interrupted", but a signal that lands as a query finishes can be
consumed without either. `remembered_interrupts` keeps the usual behaviour
and also records the signal, so that the caller can check before it commits.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType


@contextlib.contextmanager
def remembered_interrupts() -> Iterator[Callable[[], None]]:
    """Within the block, Ctrl-C raises KeyboardInterrupt as usual and is
    remembered; the block gets a check that raises KeyboardInterrupt when
    one arrived. Outside the main thread (no signals there) the check does
    nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    arrived = threading.Event()
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: FrameType | None) -> None:
        arrived.set()
        if callable(previous):
            previous(signum, frame)
        else:
            raise KeyboardInterrupt

    def check() -> None:
        if arrived.is_set():
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield check
    finally:
        signal.signal(signal.SIGINT, previous)
