"""Where build artifacts live: outside the checkout, keyed by recipe, so a second run is fast."""

from __future__ import annotations

import hashlib
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
