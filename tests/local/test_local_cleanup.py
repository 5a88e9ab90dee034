"""The local stages leave nothing behind: no process, no temporary directory, also on failure.
(Ctrl-C, SIGTERM, SIGHUP or a closed stdout during the bring-up, and killed runs reaped by the
next run or `stageproof down` while live ones are spared: tests/leaks.)"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from harness.config import Settings
from harness.errors import StageproofError
from harness.lifecycle import StageRunner


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
