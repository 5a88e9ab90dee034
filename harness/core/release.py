"""Release ids (12-factor V): every build is released under a unique, traceable id.

`$STAGEPROOF_RELEASE`, else the git commit (`-dirty` with local edits), else, outside any git
repository, `dev-<hash of the tree>`: a bare "dev" would be a word the recording's normaliser finds
in bodies (`width=device-width`), and two different trees would share a release id.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from harness.config import environment
from harness.core.run import run

#: folders that say nothing about the app's own tree (or are huge)
SKIPPED = frozenset({".git", "node_modules", "__pycache__", ".venv", ".nox", ".tox", "dist", "build"})


def current_release(root: Path) -> str:
    """`$STAGEPROOF_RELEASE`, else the git commit of `root` (with `-dirty`), else `dev-<tree hash>`."""
    explicit = environment().release
    if explicit:
        return explicit
    head = run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], check=False)
    if head.returncode != 0:
        return f"dev-{tree_hash(root)}"
    dirty = run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"], check=False)
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def tree_hash(root: Path, *, length: int = 10) -> str:
    """A hash of the files under `root` by path, size and modification time (a stat walk, no reads)."""
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(name for name in dirs if name not in SKIPPED)
        for name in sorted(files):
            path = Path(folder, name)
            try:
                info = path.stat()
            except OSError:
                continue
            digest.update(f"{path.relative_to(root)}\0{info.st_size}\0{info.st_mtime_ns}\0".encode())
    return digest.hexdigest()[:length]
