"""The local stages leave nothing behind: no process, no temporary directory, also on failure,
Ctrl-C, SIGTERM, SIGHUP or a closed stdout; what a killed run left, the next run or
`stageproof down` removes, sparing live runs."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests

from harness.checks.leak_audit import (
    CLOSED_STDOUT,
    interrupt_audit,
    leftovers,
    owner_groups,
    purge,
    run_id_of,
    spawn,
    stageproof_command,
    wait_group_gone,
)
from harness.config import Settings, config_path
from harness.errors import StageproofError
from harness.lifecycle import StageRunner
from harness.wait import NotYet, wait_until


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("name", ["local-sqlite", "local-mysql"])
def test_down_removes_processes_and_files(stageproof_settings: Settings, name: str) -> None:
    runner = StageRunner(stageproof_settings)
    stage, _ = runner.start(name)
    workdir = stage._workdir  # type: ignore[attr-defined]
    pids = [stage._server.pid]  # type: ignore[attr-defined]
    mariadb = getattr(stage, "_mariadb", None)
    if mariadb is not None:
        pids.append(mariadb._process.pid)
        workdir_db = mariadb._workdir
    runner.stop_all()
    assert not any(_alive(pid) for pid in pids)
    assert not Path(workdir).exists()
    if mariadb is not None:
        assert not Path(workdir_db).exists()


def test_a_failed_start_cleans_up_what_it_began(stageproof_settings: Settings, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    broken = stageproof_settings.model_copy(update={"app": stageproof_settings.app.model_copy(
        update={"local": stageproof_settings.app.local.model_copy(update={"serve": ["{python}", "-c", "exit(3)"]})})})
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # every mkdtemp of the stage lands here
    with pytest.raises(StageproofError, match="exited with 3"):
        StageRunner(broken).start("local-mysql")
    assert list(tmp_path.iterdir()) == [], "a failed start left temporary directories"


test_an_interrupted_run_leaves_nothing = interrupt_audit(
    "local-sqlite", "local-mysql", extra={"local-sqlite": [CLOSED_STDOUT]}, within=2.0)


def _up(name: str, root: Path, config: Path, log: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    """`stageproof up --stage <name>` in a session of its own: the process, its run id and URL."""
    proc = spawn(shlex.join([*stageproof_command(), "--config", str(config), "up", "--stage", name]), cwd=root, log=log)

    def url() -> str:
        found = re.search(r" is up at (\S+)", log.read_text(errors="replace"))
        if found is None:
            if proc.poll() is not None:
                raise AssertionError(f"`stageproof up` exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            raise NotYet("not up yet")
        return found.group(1)

    run_id = run_id_of(proc, log)
    return proc, run_id, wait_until(url, what=f"`stageproof up --stage {name}` to be up", timeout=120)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the whole `stageproof up` group: no teardown runs, its app and database live on."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    wait_group_gone(proc, timeout=30)


@pytest.mark.parametrize("name", ["local-sqlite", "local-mysql"])
def test_down_reaps_a_killed_up_and_spares_a_live_one(name: str, stageproof_settings: Settings,
                                                      pytestconfig: pytest.Config, tmp_path: Path) -> None:
    config, root = config_path(pytestconfig.getoption("stageproof_config")), stageproof_settings.root
    live, live_run, live_url = _up(name, root, config, tmp_path / "live.log")
    killed, killed_run, _ = _up(name, root, config, tmp_path / "killed.log")
    groups = owner_groups(killed_run)
    try:
        _kill(killed)
        left = leftovers(killed_run, groups)
        assert {item.split()[0] for item in left} == {"process", "folder"}, f"the killed run left {left}"
        spared = set(leftovers(live_run))
        down = subprocess.run([*stageproof_command(), "--config", str(config), "down", "--stage", name],  # noqa: S603
                              cwd=root, capture_output=True, text=True, timeout=120, check=False)
        assert down.returncode == 0, down.stderr
        assert leftovers(killed_run, groups) == [], f"`stageproof down` said:\n{down.stdout}"
        assert set(leftovers(live_run)) == spared, "`stageproof down` touched a live run"
        assert requests.get(live_url + (stageproof_settings.app.health_path or "/"), timeout=5).status_code < 500
        os.killpg(live.pid, signal.SIGINT)  # Ctrl-C: the live run tears itself down
        wait_group_gone(live, timeout=60)
        assert leftovers(live_run) == []
    finally:
        for proc, run_id in ((live, live_run), (killed, killed_run)):
            _kill(proc)
            purge(run_id)


def test_the_next_run_reaps_a_killed_run_when_it_starts(stageproof_settings: Settings, pytestconfig: pytest.Config,
                                                        tmp_path: Path) -> None:
    config = config_path(pytestconfig.getoption("stageproof_config"))
    killed, killed_run, _ = _up("local-sqlite", stageproof_settings.root, config, tmp_path / "killed.log")
    groups = owner_groups(killed_run)
    runner = StageRunner(stageproof_settings)
    try:
        _kill(killed)
        assert leftovers(killed_run, groups), "the killed run left nothing: this test proves nothing"
        runner.start("local-sqlite")
        assert leftovers(killed_run, groups) == []
    finally:
        runner.stop_all()
        purge(killed_run, groups)
