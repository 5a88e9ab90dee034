"""The leak audit cuts its runs as a terminal would: whatever the CI job ignored when it started
(SIGHUP under `nohup`, SIGINT as a shell's background job), the run it spawns has every
interrupting signal at its default action, so a cut can stop it."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.leak_audit import cut_short, spawn

PROBE = ("import signal; "
         "print(*(signal.getsignal(s) == signal.SIG_IGN for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)))")


@pytest.fixture
def ignoring_like_nohup() -> Iterator[None]:
    saved = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def test_a_run_spawned_by_a_nohup_job_can_be_cut_by_sighup(ignoring_like_nohup: None, tmp_path: Path) -> None:
    log = tmp_path / "probe.log"
    proc = spawn(f"{sys.executable} -c '{PROBE}'", cwd=tmp_path, log=log)
    assert proc.wait(timeout=30) == 0
    assert log.read_text().split() == ["False", "False", "False"]  # ignored: SIGINT, SIGTERM, SIGHUP


def test_a_run_that_finished_despite_the_cut_fails_the_audit(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text("[stageproof] local-sqlite: up in 1.0s\n...\n"
                   "======================== 21 passed, 21 skipped in 7.50s ========================\n")
    with pytest.raises(AssertionError, match=r"the cut \(SIGHUP\) stopped nothing"):
        cut_short(log, "SIGHUP")


@pytest.mark.parametrize("tail", ["....", "...\n!!!!!!! KeyboardInterrupt !!!!!!!\n==== 3 passed in 2.00s ===="])
def test_a_run_cut_short_passes_the_check(tmp_path: Path, tail: str) -> None:
    log = tmp_path / "run.log"
    log.write_text(f"[stageproof] local-sqlite: up in 1.0s\n{tail}\n")
    cut_short(log, "SIGINT")
