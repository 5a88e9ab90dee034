"""The errors a user can hit: one base class, messages that say what to do."""

from __future__ import annotations

import shlex
from collections.abc import Sequence


class StageproofError(Exception):
    """Base of every error stageproof raises on purpose."""


class ConfigError(StageproofError):
    """The config file is missing, unreadable or invalid (the message names the key)."""


class StageUnavailable(StageproofError):
    """A stage cannot run on this machine (missing tool, no daemon); says what is missing."""


class StageFailed(StageproofError):
    """The stage could run here but did not come up (the app crashed, a job failed): a failure."""


class CapabilityMissing(StageproofError):
    """The stage does not support an optional capability (kill, scale, roll out, ...)."""


class WaitTimeout(StageproofError):
    """Something did not become ready in time; the message says what was awaited."""


class CommandFailed(StageproofError):
    """A subprocess exited non-zero; carries the pasteable command and its stderr."""

    def __init__(self, cmd: Sequence[str], returncode: int, stdout: str, stderr: str) -> None:
        self.cmd = list(cmd)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        tail = "\n".join((stderr or stdout or "").strip().splitlines()[-30:])
        super().__init__(f"command failed (exit {returncode}): {shlex.join(self.cmd)}\n{tail}")
