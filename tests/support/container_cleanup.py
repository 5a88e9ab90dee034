"""A container stage leaves nothing behind after a killed run (`reap`, i.e. `stageproof down`),
while a live run elsewhere is spared. (Ctrl-C, SIGTERM, SIGHUP and a closed stdout during `up`:
harness/checks/leak_audit.py, which cuts the real `stageproof test` command short.)

Each test drives a real run of the stage in a child process, found by its owner label. The stage
folder's conftest names the stage with a `container_stage_name` fixture.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.config import Settings, config_path
from harness.core.ownership import OWNER_LABEL, RUN_LABEL
from harness.core.process import ManagedProcess
from harness.core.wait import NotYet, wait_until
from harness.stage import get_stage
from harness.stages.containers import docker_client, label_filters, labelled_objects

CHILD = """
import logging, sys, time
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
from harness.config import load_settings
from harness.lifecycle import StageRunner
runner = StageRunner(load_settings(sys.argv[1]))
runner.start(sys.argv[2])
open(sys.argv[3], "w").write("up")
time.sleep(600)
"""
UP_TIMEOUT = 300.0


def labelled(stage: str, run_id: str | None = None, *, alive: bool = False) -> list[str]:
    """Containers, networks and volumes carrying the stage's (and run's) labels, as `kind name`."""
    return labelled_objects(docker_client(), stage, run_id, alive_only=alive)


def run_of(stage: str, child: ManagedProcess) -> str:
    """The run id of the child's run, read from the labels of what it created."""
    for container in docker_client().containers.list(all=True, filters={"label": label_filters(stage)}):
        if container.labels.get(OWNER_LABEL, "").startswith(f"{child.pid}@"):
            return container.labels[RUN_LABEL]
    if child.exit_code() is not None:
        raise AssertionError(f"the child run exited with {child.exit_code()}:\n{child.output()[-3000:]}")
    raise NotYet(f"no container of process {child.pid} yet")


@pytest.fixture
def child_run(container_stage_name: str, pytestconfig: pytest.Config, tmp_path: Path) -> Iterator[ManagedProcess]:
    """A child process (own process group) bringing the stage up; stopped at the end regardless."""
    config = config_path(pytestconfig.getoption("stageproof_config"))
    child = ManagedProcess(f"child {container_stage_name} run",
                           [sys.executable, "-c", CHILD, str(config), container_stage_name, str(tmp_path / "up")],
                           log_path=tmp_path / "child.log").start()
    yield child
    child.stop()


def test_reap_removes_a_killed_run_and_spares_live_ones(container_stage_name: str, stageproof_settings: Settings,
                                                        child_run: ManagedProcess, tmp_path: Path) -> None:
    assert child_run.pid is not None

    def child_up() -> None:
        if child_run.exit_code() is not None:
            raise AssertionError(f"the child run exited with {child_run.exit_code()}:\n{child_run.output()[-3000:]}")
        if not (tmp_path / "up").exists():
            raise NotYet("the child run is not up yet")

    wait_until(child_up, what=f"the {container_stage_name} stage to come up in a child process", timeout=UP_TIMEOUT)
    run_id = run_of(container_stage_name, child_run)
    live = set(labelled(container_stage_name, alive=True)) - set(labelled(container_stage_name, run_id))
    os.killpg(child_run.pid, signal.SIGKILL)  # no teardown runs
    wait_until(lambda: _exited(child_run), what="the killed child to exit", timeout=60)
    left = labelled(container_stage_name, run_id)
    assert left, "the killed run left nothing: this test proves nothing"

    removed = get_stage(container_stage_name).reap(stageproof_settings)
    assert set(left) <= set(removed)
    assert labelled(container_stage_name, run_id) == []
    assert live <= set(labelled(container_stage_name)), "reap removed objects of a live run"
    leftovers = list(Path(tempfile.gettempdir()).glob(f"stageproof-*{child_run.pid}-{run_id}-*"))
    assert leftovers == [], "reap left the killed run's folders"


def _exited(child: ManagedProcess) -> int:
    code = child.exit_code()
    if code is None:
        raise NotYet("still running")
    return code
