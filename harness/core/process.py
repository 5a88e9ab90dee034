"""Long-running local processes (gunicorn, mariadbd) owned by a stage: started, logged, stopped.

Each process gets its own process group so that stopping it also stops its workers, and its
output goes to a log file the stage can attach to a failure report.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.core.shield import deferred

log = logging.getLogger("stageproof.process")


class ManagedProcess:
    """One background process with its log file; `stop()` is always safe to call."""

    def __init__(self, name: str, cmd: Sequence[str], *, log_path: Path, cwd: Path | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.cmd = list(cmd)
        self.log_path = log_path
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        log.info("start %s: %s", self.name, shlex.join(self.cmd))
        with self.log_path.open("ab") as out, deferred():  # a Ctrl-C now must not orphan it
            self._proc = subprocess.Popen(  # noqa: S603 - argv list, never a shell
                self.cmd, cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def exit_code(self) -> int | None:
        """None while running."""
        return self._proc.poll() if self._proc else None

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait(self, timeout: float) -> int:
        """The exit code once the process has ended (`subprocess.TimeoutExpired` after `timeout`)."""
        if self._proc is None:
            raise RuntimeError(f"{self.name} was not started")
        return self._proc.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL the whole group at once, as a crash would, and reap it."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGKILL)
            _group_ended(proc, 10)
        self._proc = None
        log.info("killed %s (exit %s)", self.name, proc.returncode)

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM the whole group, then SIGKILL what is left after `grace` seconds. Returns once
        the leader and every other member (workers, a script's children) are gone: a folder they
        write to can then be removed for good. An interrupted stop is finished by the next one."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:  # once its leader is gone and reaped, the group id may be reused
            _signal_group(proc.pid, signal.SIGTERM)
            if not _group_ended(proc, grace):
                log.warning("%s ignored SIGTERM for %.0fs; killing it", self.name, grace)
                _signal_group(proc.pid, signal.SIGKILL)
                _group_ended(proc, 10)
        self._proc = None
        log.info("stopped %s (exit %s)", self.name, proc.returncode)


def _group_ended(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait up to `timeout` seconds until the leader has exited and its group has no member left."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None and not _group_alive(proc.pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
