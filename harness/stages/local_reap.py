"""What a local run leaves if it is killed (or detached): processes and temporary folders.

Each local stage writes `owner.json` into its work folder: the owning process (pid@host), the
process groups it started (with their command lines, so a recycled pid is never signalled) and
the folders to remove. `reap` ends the groups and removes the folders of runs whose owner is
gone; a live run in another terminal is spared.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

from harness.core.ownership import OWNER_MARKER, owner_alive, read_marker, write_marker

log = logging.getLogger("stageproof.local")
GRACE_SECONDS = 10.0


def write_owner(workdir: Path, *, run_id: str, stage: str, groups: list[int], folders: list[Path]) -> None:
    """Record who owns `workdir` and what to end and remove if that owner dies."""
    write_marker(workdir / OWNER_MARKER, run_id, stage=stage,
                 groups=[{"pgid": pgid, "cmdline": _started_cmdline(pgid)} for pgid in groups],
                 folders=[str(folder) for folder in folders])


def reap(stage: str) -> list[str]:
    """End the processes and remove the folders of `stage` runs whose owner is gone."""
    removed: list[str] = []
    for workdir in sorted(Path(tempfile.gettempdir()).glob(f"stageproof-{stage}-*")):
        entry = read_marker(workdir / OWNER_MARKER)
        if entry is None or owner_alive(str(entry.get("owner", ""))):  # being created right now, or alive
            continue
        for group in entry.get("groups", []):
            if _end_group(int(group["pgid"]), group.get("cmdline", "")):
                removed.append(f"process group {group['pgid']}")
        for folder in [*entry.get("folders", []), str(workdir)]:
            if Path(folder).exists():
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(f"folder {folder}")
    return removed


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def _started_cmdline(pid: int, timeout: float = 2.0) -> str:
    """The command line of a process that was just started: right after `Popen` returns, the
    kernel may not show the new program's arguments yet (empty), so wait for them briefly."""
    deadline = time.monotonic() + timeout
    while not (cmdline := _cmdline(pid)) and time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.01)
    return cmdline


def _end_group(pgid: int, cmdline: str) -> bool:
    """SIGTERM, then SIGKILL, the group led by `pgid`, if its leader is still the same program."""
    if not cmdline or _cmdline(pgid) != cmdline:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        while time.monotonic() < deadline and _cmdline(pgid) == cmdline:
            time.sleep(0.2)
        if _cmdline(pgid) == cmdline:
            os.killpg(pgid, signal.SIGKILL)
    log.info("ended process group %s (%s)", pgid, cmdline.replace("\0", " ")[:80])
    return True
