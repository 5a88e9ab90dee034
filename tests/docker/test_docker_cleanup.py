"""The docker stage leaves nothing behind: after a failed start or a killed run (Ctrl-C and
SIGTERM: tests/leaks)."""

from __future__ import annotations

import pytest

from harness.config import Settings
from harness.errors import StageFailed
from harness.lifecycle import StageRunner
from tests.support.container_cleanup import (  # noqa: F401
    child_run,
    labelled,
    test_reap_removes_a_killed_run_and_spares_live_ones,
)


def test_a_failing_seed_fails_the_start_and_leaves_nothing(stageproof_settings: Settings) -> None:
    broken = stageproof_settings.seed.model_copy(update={"command": ["python", "-c", "raise SystemExit(3)"]})
    runner = StageRunner(stageproof_settings.model_copy(update={"seed": broken}))
    with pytest.raises(StageFailed, match="seed container exited with 3"):
        runner.start("docker")
    assert labelled("docker", runner.run_id) == []
