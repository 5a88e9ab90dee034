"""Teardown that a second Ctrl-C (or SIGTERM, SIGHUP), or a closed terminal, cannot cut short.

The first signal starts the teardown; a user pressing Ctrl-C again, a CI runner sending SIGTERM
after SIGINT, or a terminal's Ctrl-C reaching both `stageproof` and the pytest it forwards to,
must not leave half of a stage behind. After the first interrupt, and while shielded, such
signals are noted and reported, and the teardown goes on. Output to a terminal or pipe that is
gone (`| tee` dies with the process group on Ctrl-C) is dropped instead of raising.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

log = logging.getLogger("stageproof")
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
Handlers = dict[signal.Signals, Any]


def arm(handler: Any) -> Handlers:
    """Install `handler` (which calls `interrupt`) for every interrupting signal that is not
    ignored (`nohup`, a background job); the previous handlers, for `disarm`. Main thread only."""
    ignored = [sig for sig in SIGNALS if signal.getsignal(sig) == signal.SIG_IGN]
    return {sig: signal.signal(sig, handler) for sig in SIGNALS if sig not in ignored}


def disarm(previous: Handlers) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def interrupt(signum: int) -> None:
    """Unwind like Ctrl-C, once: later signals are only noted, so the teardown this one starts
    (fixtures, `finally` blocks) runs to the end instead of being interrupted in turn."""
    for sig in SIGNALS:
        if signal.getsignal(sig) != signal.SIG_IGN:
            signal.signal(sig, _late)
    raise KeyboardInterrupt(f"signal {signum}")


def _late(signum: int, frame: Any) -> None:
    with contextlib.suppress(Exception):
        log.warning("signal %s: already tearing down, finishing that first", signum)


@contextmanager
def shielded(what: str) -> Iterator[None]:
    """Run the block with interrupting signals deferred (main thread only: elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def note(signum: int, frame: Any) -> None:
        received.append(signum)
        with contextlib.suppress(Exception):
            log.warning("signal %s during %s: finishing the teardown first", signum, what)

    previous = arm(note)
    try:
        yield
    finally:
        disarm(previous)
    if received:
        with contextlib.suppress(Exception):
            log.warning("%s finished despite signal(s) %s", what, received)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold interrupting signals over a short step that must not be cut in two (a process started
    but not yet recorded, so nobody would stop it); the first one is delivered right after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = arm(lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        disarm(previous)
        if held:
            handler = previous[signal.Signals(held[0])]
            if callable(handler):
                handler(held[0], None)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), held[0])


def say(text: str, *, file: TextIO | None = None) -> None:
    """Print a progress line; if the terminal or pipe is gone, drop it: a bring-up or teardown
    must not fail on its own progress report (pytest stops the run on its next write)."""
    stream = file if file is not None else sys.stdout
    with contextlib.suppress(OSError, ValueError):  # EPIPE, EIO (terminal hung up), a closed file
        print(text, file=stream, flush=True)


def mute_dead_output() -> None:
    """Point stdout and stderr at /dev/null where their reader is gone, so nothing that still has
    to run (a teardown, pytest's summary, Python's exit flush) fails on writing to them."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        fd = _fileno(stream)
        if stream is None or fd is None or not _gone(fd):
            continue
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)
        with contextlib.suppress(OSError, ValueError):
            stream.flush()  # what was buffered for the dead reader goes to /dev/null now


def _fileno(stream: TextIO | None) -> int | None:
    try:
        return stream.fileno() if stream is not None else None
    except (OSError, ValueError, AttributeError):
        return None


def _gone(fd: int) -> bool:
    """True when writing to `fd` fails: a pipe without reader, a hung-up terminal, a closed fd."""
    import select

    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    try:
        events = poller.poll(0)
    except OSError:
        return True
    return any(mask & (select.POLLERR | select.POLLHUP | select.POLLNVAL) for _, mask in events)
