"""A compose run writes nothing into the team's tree: their file bind-mounts `./mysql-data` into the
database (33 MB, owned by the container's user, kept across runs and shipped by the next build when
the folder has no .dockerignore); the run gives that folder's mount a run-labelled volume instead.
Checked on tests/fixtures/two-tier by a real run: every path under it and its mtime, before and after."""

from __future__ import annotations

import os
from pathlib import Path

import requests

from harness.config import load_settings
from harness.lifecycle import StageRunner
from tests.support.container_cleanup import labelled

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "two-tier"


def tree(folder: Path) -> dict[str, int]:
    """Every file and folder under `folder` (itself included) -> its mtime in ns."""
    found = {".": folder.stat().st_mtime_ns}
    for parent, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            path = Path(parent, name)
            found[str(path.relative_to(folder))] = path.lstat().st_mtime_ns
    return found


def test_a_compose_run_leaves_their_tree_as_it_was() -> None:
    before = tree(FIXTURE)
    assert "mysql-data" not in before, "a previous run left mysql-data in the fixture: remove it first"
    runner = StageRunner(load_settings(FIXTURE / "stageproof.toml", env={}))
    try:
        _, deployment = runner.start("compose")
        answer = requests.get(f"{deployment.base_url}/", timeout=10)
        assert answer.status_code == 200 and "Hello from the seed file." in answer.text
        assert any("mysql-data -> /var/lib/mysql runs on the run's volume" in note for note in deployment.notes)
        assert tree(FIXTURE) == before, "the run wrote into the team's tree while up"
    finally:
        runner.stop_all()
    assert tree(FIXTURE) == before, "the run wrote into the team's tree"
    assert labelled("compose", runner.run_id) == []
