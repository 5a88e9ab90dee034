"""A code change as a developer makes it: the team's build context, copied as Docker sees it
(`.dockerignore` applied), with a unified diff applied to the copy. Their files are never touched."""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.core.run import run
from harness.errors import CommandFailed, ConfigError
from harness.images.context import context_files


def changed_context(context: Path, patch: Path, into: Path, *, dockerfile: Path | None = None) -> Path:
    """Copy `context` into `into` (what `docker build` would send), apply `patch` there; `into`."""
    for relative in context_files(context, dockerfile):
        source, target = context / relative, into / relative
        if source.is_dir() and not source.is_symlink():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target, follow_symlinks=False)
    try:
        # outside any repository: inside one (a TMPDIR under a checkout), `git apply` would silently
        # skip every path outside the current folder
        run(["git", "apply", "--whitespace=nowarn", str(patch)], cwd=into,
            env={"GIT_CEILING_DIRECTORIES": str(into.resolve().parent)})
    except CommandFailed as err:
        raise ConfigError(f"checks.code_change.patch: {patch} does not apply to the build context {context} "
                          f"(a unified diff with paths relative to it, as `git diff` writes): {err.stderr.strip()}"
                          ) from err
    return into

