"""The compose stage leaves nothing behind: after a failed start or a killed run (Ctrl-C, SIGTERM,
SIGHUP and a closed stdout: tests/leaks)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.config import Settings
from harness.errors import StageFailed
from harness.lifecycle import StageRunner
from tests.support.container_cleanup import (  # noqa: F401
    child_run,
    labelled,
    test_reap_removes_a_killed_run_and_spares_live_ones,
)


def test_a_failing_seed_fails_the_start_and_leaves_nothing(stageproof_settings: Settings, tmp_path: Path) -> None:
    """A copy of the reference compose file whose seed exits 3 (the copy lives in tmp_path: its
    relative `build:` context does not matter, stageproof never builds through compose)."""
    compose = stageproof_settings.stages.compose
    assert compose is not None
    spec = yaml.safe_load(compose.file[0].read_text())
    spec["services"]["seed"]["command"] = ["python", "-c", "raise SystemExit(3)"]
    broken_file = tmp_path / "compose.yaml"
    broken_file.write_text(yaml.safe_dump(spec))
    broken = compose.model_copy(update={"file": [broken_file]})
    stages = stageproof_settings.stages.model_copy(update={"compose": broken})
    runner = StageRunner(stageproof_settings.model_copy(update={"stages": stages}))
    with pytest.raises(StageFailed, match="seed"):
        runner.start("compose")
    assert labelled("compose", runner.run_id) == []
