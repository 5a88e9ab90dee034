"""Where build artifacts live: outside the checkout, keyed by recipe, so a second run is fast."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """`$STAGEPROOF_CACHE/<parts>` (default `~/.cache/stageproof`), created on demand."""
    root = Path(os.environ.get("STAGEPROOF_CACHE") or Path.home() / ".cache" / "stageproof")
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def recipe_hash(*inputs: str | Path, length: int = 12) -> str:
    """A short stable hash of files (recursively for directories) and literal strings."""
    digest = hashlib.sha256()
    for item in inputs:
        path = Path(item) if not isinstance(item, str) or Path(item).exists() else None
        if path is None:
            digest.update(b"s:" + str(item).encode())
            continue
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            digest.update(b"f:" + file.as_posix().encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:length]
