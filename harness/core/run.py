"""The one subprocess helper: every docker/kind/kubectl call goes through here.

It logs the command in a form you can paste, how long it took, and on failure raises
`CommandFailed` carrying stderr, so a failing step never hides its reason.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.config import child_env
from harness.errors import CommandFailed, StageUnavailable

log = logging.getLogger("stageproof.run")


def run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    input: str | None = None,
    check: bool = True,
    capture: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run `cmd` (never through a shell); `env` is merged over the current environment."""
    argv = [os.fspath(part) for part in cmd]
    pasteable = shlex.join(argv)
    log.info("$ %s", pasteable)
    merged_env = child_env(env)
    started = time.monotonic()
    try:
        proc = subprocess.run(  # noqa: S603 - an argv list, never a shell
            argv,
            cwd=cwd,
            env=merged_env,
            timeout=timeout,
            input=input,
            text=True,
            capture_output=capture,
            check=False,
        )
    except FileNotFoundError as err:
        raise StageUnavailable(f"{argv[0]!r} is not installed or not on PATH (needed for: {pasteable})") from err
    except subprocess.TimeoutExpired as err:
        log.info("  -> timed out after %.1fs", time.monotonic() - started)
        raise CommandFailed(argv, -1, _text(err.stdout), _text(err.stderr), timed_out=err.timeout) from err
    elapsed = time.monotonic() - started
    log.info("  -> exit %s in %.1fs", proc.returncode, elapsed)
    if check and proc.returncode != 0:
        raise CommandFailed(argv, proc.returncode, proc.stdout or "", proc.stderr or "")
    return proc


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data
