"""Where build artifacts live: outside the checkout, keyed by recipe, so a second run is fast."""

from __future__ import annotations

import fcntl
import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.config import environment


def cache_dir(*parts: str) -> Path:
    """`$STAGEPROOF_CACHE/<parts>` (default `~/.cache/stageproof`), created on demand."""
    path = environment().cache.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def recipe_hash(*inputs: str | Path, length: int = 12) -> str:
    """A short stable hash of literal strings and of files (directories recursively).

    A `str` is always a literal and a `Path` always content: a string never turns into a file
    read because it happens to name one. Files are keyed by their name relative to the path
    given, not by where the checkout lives, so a fresh clone elsewhere hits the same cache.
    """
    digest = hashlib.sha256()
    for item in inputs:
        if isinstance(item, str):
            digest.update(b"s:" + item.encode() + b"\0")
            continue
        files = sorted(p for p in item.rglob("*") if p.is_file()) if item.is_dir() else [item]
        for file in files:
            name = file.relative_to(item).as_posix() if item.is_dir() else file.name
            digest.update(b"f:" + name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:length]


@contextmanager
def build_lock(name: str, *, what: str, say: Callable[[str], None] = print) -> Iterator[None]:
    """One build of `what` at a time per cache, across processes (CI's background prebuild and a
    k8s stage may ask together). Waiting is said once, so a quiet minute is never a mystery."""
    with (cache_dir(name) / ".build.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            started = time.monotonic()
            say(f"waiting for another process's build of {what} (lock {handle.name}) ...")
            fcntl.flock(handle, fcntl.LOCK_EX)
            say(f"the other build of {what} ended after {time.monotonic() - started:.1f}s of waiting")
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
