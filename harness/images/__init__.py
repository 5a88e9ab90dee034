"""Building every image the stages need, with or without a registry."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


def say(message: str) -> None:
    """Progress for people (like the stage runner's lines); details go to the log."""
    print(f"[images] {message}", flush=True)


@contextmanager
def step(what: str) -> Iterator[None]:
    """Say what is being built and how long it took: cold builds are slow and should say where."""
    started = time.monotonic()
    say(f"{what} ...")
    yield
    say(f"{what}: {time.monotonic() - started:.1f}s")
