"""The leak audit cuts its runs as a terminal would: whatever the CI job ignored when it started
(SIGHUP under `nohup`, SIGINT as a shell's background job), the run it spawns has every
interrupting signal at its default action, so a cut can stop it."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.leak_audit import spawn

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
