"""Who owns what a run created, written once: the labels, the owner marker, the liveness test and
the lock. Every stage uses these and nothing else.

- Labels (Docker objects and Kubernetes objects alike: one set of names): `io.stageproof.run`,
  `io.stageproof.stage`, `io.stageproof.owner` (`<pid>@<host>` of the process that made it), and
  `app.kubernetes.io/part-of=stageproof` on a namespace stageproof made.
- A marker file (`owner.json`, or `kept.json` for what a run left up on purpose): the run id, the
  owner and when, plus what a reap must end or remove; written whole, atomically.
- `owner_alive`: does that process still run here (a zombie does not count)?
- `OwnerLock`: a shared resource (a kind cluster, a namespace) is owned by an OS file lock.

`flock` is held by the open file, so the kernel releases it when its process ends, even by
SIGKILL: a lock that nobody holds means its last owner is gone, and what it left may be reaped.
The lock file names its holder (pid, run, since when) for the "waiting for" line of a second run.
A release unlinks the file; an acquire checks it still locks the file at that path (not one a
release just unlinked), so no two runs ever hold the same name.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.cache import cache_dir
from harness.core.wait import NotYet, wait_until
from harness.errors import StageproofError

PROGRESS_EVERY = 30.0  # seconds between two "still waiting" lines
RUN_LABEL = "io.stageproof.run"
STAGE_LABEL = "io.stageproof.stage"
OWNER_LABEL = "io.stageproof.owner"
PART_OF = ("app.kubernetes.io/part-of", "stageproof")
OWNER_MARKER = "owner.json"
KEPT_MARKER = "kept.json"


def owner_token() -> str:
    """`<pid>@<host>` of this process: what an object's owner label and marker say."""
    return f"{os.getpid()}@{socket.gethostname()}"


def run_labels(run_id: str, stage: str) -> dict[str, str]:
    """The labels of everything a run creates; the owner lets a reap spare live runs."""
    return {RUN_LABEL: run_id, STAGE_LABEL: stage, OWNER_LABEL: owner_token()}


def owner_alive(owner: str | Mapping[str, str]) -> bool:
    """True when the process an owner token (or a labels mapping with OWNER_LABEL) names still
    runs on this machine."""
    token = owner if isinstance(owner, str) else owner.get(OWNER_LABEL, "")
    pid, _, host = token.partition("@")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    return not _zombie(int(pid))


def _zombie(pid: int) -> bool:
    """A killed process whose parent has not collected it yet: dead, though `kill -0` succeeds."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def write_marker(path: Path, run_id: str, **extra: Any) -> None:
    """The marker of what a run owns: run, owner, when, and `extra` (written whole, atomically)."""
    entry = {"run": run_id, "owner": owner_token(), "at": time.strftime("%Y-%m-%d %H:%M:%S %Z"), **extra}
    staged = path.with_name(f".{path.name}.tmp")
    staged.write_text(json.dumps(entry))
    staged.replace(path)


def read_marker(path: Path) -> dict[str, Any] | None:
    """A marker's content, or None when there is none (or it is being written right now)."""
    try:
        entry = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return entry if isinstance(entry, dict) else None


class LockTimeout(StageproofError):
    """Another live run held the lock for longer than this run may wait."""


@dataclass(frozen=True)
class Holder:
    """What the lock file says of the run holding it."""

    pid: int
    run_id: str
    since: str

    def describe(self) -> str:
        return f"held by pid {self.pid}, run {self.run_id}, since {self.since}"


def lock_path(key: str) -> Path:
    """`<cache>/locks/<key>.lock`: outside every folder a teardown removes."""
    safe = "".join(char if char.isalnum() or char in "-_." else "_" for char in key)
    return cache_dir("locks") / f"{safe}.lock"


class OwnerLock:
    """An exclusive lock named `key`, held by one run of one process at a time."""

    def __init__(self, key: str, *, run_id: str) -> None:
        self.key = key
        self.run_id = run_id
        self.path = lock_path(key)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; False (and nothing changed) if someone does."""
        if self._fd is not None:
            return True
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            if _same_file(fd, self.path):
                break
            os.close(fd)  # a release unlinked it meanwhile: lock the file that is there now
        self._fd = fd
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "run": self.run_id,
                                 "since": time.strftime("%Y-%m-%d %H:%M:%S %Z")}).encode())
        return True

    def acquire(self, *, timeout: float, say: Callable[[str], None]) -> float:
        """Wait up to `timeout` seconds for the lock, saying who holds it and, every
        PROGRESS_EVERY seconds, how long this run has waited; returns the seconds waited."""
        started = time.monotonic()
        if self.try_acquire():
            return 0.0
        say(f"waiting for {self.path} ({self.holder_text()}; up to {timeout:.0f}s)")
        last_said = started

        def probe() -> None:
            nonlocal last_said
            if self.try_acquire():
                return
            if time.monotonic() - last_said >= PROGRESS_EVERY:
                last_said = time.monotonic()
                say(f"still waiting for {self.path} after {last_said - started:.0f}s ({self.holder_text()})")
            raise NotYet(self.holder_text())

        try:
            wait_until(probe, what=f"lock {self.path}", timeout=timeout, interval=0.5, max_interval=2.0)
        except StageproofError as err:
            raise LockTimeout(f"{err}: another run still uses it; stop that run or raise the wait "
                              "(stages.k8s.lock_timeout)") from err
        waited = time.monotonic() - started
        say(f"got {self.path} after {waited:.0f}s")
        return waited

    def holder(self) -> Holder | None:
        """Who the lock file names (the holder, while one holds it), if it names anyone."""
        try:
            entry = json.loads(self.path.read_text())
            return Holder(int(entry["pid"]), str(entry["run"]), str(entry["since"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def holder_text(self) -> str:
        holder = self.holder()
        return holder.describe() if holder is not None else "held by a run that has not named itself yet"

    def release(self) -> None:
        """Unlink the lock file, then let go: a waiter re-checks the path and locks a fresh file."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            if _same_file(fd, self.path):
                self.path.unlink()
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = path.stat()
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (on_disk.st_dev, on_disk.st_ino)
