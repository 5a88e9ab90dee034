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
    """A subprocess exited non-zero or timed out; carries the pasteable command and its output.

    `timed_out` is the timeout in seconds when the command was killed for running too long
    (then `returncode` is -1); stdout/stderr still hold what it printed before that.
    """

    def __init__(self, cmd: Sequence[str], returncode: int, stdout: str, stderr: str,
                 *, timed_out: float | None = None) -> None:
        self.cmd = list(cmd)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.timed_out = timed_out
        tail = "\n".join((stderr or stdout or "").strip().splitlines()[-30:])
        how = f"timed out after {timed_out:g}s" if timed_out is not None else f"exit {returncode}"
        super().__init__(f"command failed ({how}): {shlex.join(self.cmd)}\n{tail}")

    @property
    def command(self) -> str:
        """The command in a form you can paste into a shell."""
        return shlex.join(self.cmd)
