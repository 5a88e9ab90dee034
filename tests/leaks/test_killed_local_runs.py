"""A killed local run (SIGKILL: no teardown runs) is reaped by `stageproof down` and by the next
run at its start, while a live run in another terminal is spared."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from harness.config import Settings, config_path
from harness.core.wait import NotYet, wait_until
from harness.lifecycle import StageRunner
from tests.support.leak_audit import (
    RUN_ID,
    leftovers,
    owner_groups,
    purge,
    run_id_of,
    spawn,
    stageproof_command,
    wait_group_gone,
)


@dataclass(frozen=True)
class UpRun:
    """A `stageproof up` in a session of its own: its shell (the group leader), run id and URL."""

    proc: subprocess.Popen[bytes]
    run_id: str
    url: str


@pytest.fixture
def stageproof_up(stageproof_settings: Settings, pytestconfig: pytest.Config,
                  tmp_path: Path) -> Iterator[Callable[[str], UpRun]]:
    """Starts `stageproof up --stage <name>` runs; at the end each is sent SIGTERM (it tears
    itself down), then killed, and whatever it left is purged."""
    config = config_path(pytestconfig.getoption("stageproof_config"))
    started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(name: str) -> UpRun:
        log = tmp_path / f"up-{len(started)}.log"
        command = shlex.join([*stageproof_command(), "--config", str(config), "up", "--stage", name])
        proc = spawn(command, cwd=stageproof_settings.root, log=log)
        started.append((proc, log))

        def url() -> str:
            found = re.search(r" is up at (\S+)", log.read_text(errors="replace"))
            if found is None:
                if proc.poll() is not None:
                    raise AssertionError(f"`stageproof up` exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
                raise NotYet("not up yet")
            return found.group(1)

        run_id = run_id_of(proc, log)
        return UpRun(proc, run_id, wait_until(url, what=f"`stageproof up --stage {name}` to be up", timeout=120))

    yield start
    for proc, log in started:
        with contextlib.suppress(ProcessLookupError, AssertionError):
            os.killpg(proc.pid, signal.SIGTERM)
            wait_group_gone(proc, timeout=60)
        _kill(proc)
        found = RUN_ID.search(log.read_text(errors="replace"))
        if found:
            purge(found.group(1))


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the whole `stageproof up` group: no teardown runs, its app and database live on."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    wait_group_gone(proc, timeout=30)


@pytest.mark.parametrize("name", ["local-sqlite", "local-mysql"])
def test_down_reaps_a_killed_up_and_spares_a_live_one(name: str, stageproof_up: Callable[[str], UpRun],
                                                      stageproof_settings: Settings,
                                                      pytestconfig: pytest.Config) -> None:
    live, killed = stageproof_up(name), stageproof_up(name)
    groups = owner_groups(killed.run_id)
    _kill(killed.proc)
    left = leftovers(killed.run_id, groups)
    assert {item.split()[0] for item in left} == {"process", "folder"}, f"the killed run left {left}"
    spared = set(leftovers(live.run_id))

    config = config_path(pytestconfig.getoption("stageproof_config"))
    down = subprocess.run([*stageproof_command(), "--config", str(config), "down", "--stage", name],  # noqa: S603
                          cwd=stageproof_settings.root, capture_output=True, text=True, timeout=120, check=False)
    assert down.returncode == 0, down.stderr
    assert leftovers(killed.run_id, groups) == [], f"`stageproof down` said:\n{down.stdout}"
    assert set(leftovers(live.run_id)) == spared, "`stageproof down` touched a live run"
    assert requests.get(live.url + (stageproof_settings.app.health_path or "/"), timeout=5).status_code < 500

    os.killpg(live.proc.pid, signal.SIGINT)  # Ctrl-C: the live run tears itself down
    wait_group_gone(live.proc, timeout=60)
    assert leftovers(live.run_id) == []


def test_the_next_run_reaps_a_killed_run_when_it_starts(stageproof_up: Callable[[str], UpRun],
                                                        stageproof_settings: Settings) -> None:
    killed = stageproof_up("local-sqlite")
    groups = owner_groups(killed.run_id)
    _kill(killed.proc)
    assert leftovers(killed.run_id, groups), "the killed run left nothing: this test proves nothing"
    runner = StageRunner(stageproof_settings)
    try:
        runner.start("local-sqlite")
        assert leftovers(killed.run_id, groups) == []
    finally:
        runner.stop_all()
