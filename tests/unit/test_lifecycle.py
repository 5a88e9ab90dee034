"""A failed bring-up is reported with its real cause, and a failing teardown never hides it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from harness.config import Settings
from harness.errors import CommandFailed, StageFailed
from harness.lifecycle import StageRunner, describe_failure
from harness.stage import Capabilities, Deployment, Stage, register

UP_ERROR = StageFailed("the app process exited with 3:\n\nbooting\n---\nTraceback ...\nKeyError: 'DATABASE_URL'\n")


class TeardownBroke(RuntimeError):
    pass


@register("fake-broken")
class FakeBrokenStage(Stage):
    """Its `up` fails after half-creating things, and its `down` fails too."""

    down_calls = 0

    def up(self) -> Deployment:
        raise UP_ERROR

    def down(self) -> None:
        type(self).down_calls += 1
        raise TeardownBroke("could not remove network stageproof-x: in use")

    def logs(self) -> str:
        return ""

    def capabilities(self) -> Capabilities:
        return Capabilities()


def _runner(tmp_path: Path) -> StageRunner:
    settings = cast(Settings, SimpleNamespace(root=tmp_path))
    return StageRunner(settings, release="r1", run_id="test")


def test_a_teardown_error_never_hides_the_bring_up_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    runner = _runner(tmp_path)
    with pytest.raises(StageFailed) as caught:
        runner.start("fake-broken")
    assert caught.value is UP_ERROR
    notes = getattr(caught.value, "__notes__", [])
    assert any("teardown" in note and "network stageproof-x: in use" in note for note in notes)
    assert "network stageproof-x: in use" in caplog.text
    record = runner.ledger.stages["fake-broken"]
    assert record.error is not None and "KeyError: 'DATABASE_URL'" in record.error
    assert "exited with 3" in record.error
    assert record.down_seconds is not None
    assert FakeBrokenStage.down_calls >= 1


def test_the_ledger_names_the_failing_command_and_its_last_stderr_lines(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = "\n".join(f"line {n}" for n in range(1, 21)) + "\nError: port is already allocated\n"
    failure = CommandFailed(["docker", "run", "--name", "web x"], 125, "", stderr)

    def up(self: Stage) -> Deployment:
        raise failure

    monkeypatch.setattr(FakeBrokenStage, "up", up)
    monkeypatch.setattr(FakeBrokenStage, "down", lambda self: None)
    runner = _runner(tmp_path)
    with pytest.raises(CommandFailed):
        runner.start("fake-broken")
    error = runner.ledger.stages["fake-broken"].error
    assert error is not None and len(error) < 600
    assert "docker run --name 'web x'" in error and "exit 125" in error
    assert "Error: port is already allocated" in error and "line 17" in error
    assert "line 16" not in error


def test_stop_records_its_time_and_re_raises_a_teardown_error(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FakeBrokenStage, "up", lambda self: Deployment("fake-broken", "http://127.0.0.1:1", "r1"))
    runner = _runner(tmp_path)
    runner.start("fake-broken")
    with pytest.raises(TeardownBroke):
        runner.stop("fake-broken")
    record = runner.ledger.stages["fake-broken"]
    assert record.down_seconds is not None
    assert any("down failed" in note for note in record.notes)


def test_failure_descriptions_stay_short() -> None:
    long_lines = "\n".join("x" * 400 for _ in range(50))
    assert len(describe_failure(StageFailed(f"it broke\n{long_lines}\nthe cause"))) < 600
    assert describe_failure(StageFailed(f"it broke\n{long_lines}\nthe cause")).endswith("the cause")
    timed_out = CommandFailed(["kubectl", "wait"], -1, "", "waiting...\n", timed_out=30)
    assert describe_failure(timed_out) == "kubectl wait (timed out after 30s) | waiting..."
    assert describe_failure(KeyboardInterrupt()) == "KeyboardInterrupt"
