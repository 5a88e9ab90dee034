"""Teardown that a second Ctrl-C (or SIGTERM, SIGHUP) cannot cut short.

The first signal starts the teardown; a user pressing Ctrl-C again, or a CI runner sending
SIGTERM after SIGINT, must not leave half of a stage behind. While shielded, such signals are
noted and reported, and the teardown goes on.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger("stageproof")
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def shielded(what: str) -> Iterator[None]:
    """Run the block with interrupting signals deferred (main thread only: elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def note(signum: int, frame: Any) -> None:
        received.append(signum)
        log.warning("signal %s during %s: finishing the teardown first", signum, what)

    previous = {sig: signal.signal(sig, note) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        log.warning("%s finished despite signal(s) %s", what, received)
