"""Release ids (12-factor V): every build is released under a unique, traceable id."""

from __future__ import annotations

import os
from pathlib import Path

from harness.core.run import run

RELEASE_ENV = "STAGEPROOF_RELEASE"


def current_release(root: Path) -> str:
    """`$STAGEPROOF_RELEASE`, else the git commit of `root` (with `-dirty` for local edits)."""
    explicit = os.environ.get(RELEASE_ENV)
    if explicit:
        return explicit
    head = run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], check=False)
    if head.returncode != 0:
        return "dev"
    dirty = run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"], check=False)
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
