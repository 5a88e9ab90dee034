"""`stageproof test` with nothing left to run (every stage given is declared not applicable): in CI a
run that proves nothing fails (exit 5, one line saying why); on a laptop it says so and exits 0."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main

NOTES = Path(__file__).resolve().parents[2] / "examples" / "notes" / "stageproof.toml"


@pytest.mark.parametrize(("ci", "code"), [("true", 5), ("false", 0)])
def test_nothing_to_run(ci: str, code: int, monkeypatch: pytest.MonkeyPatch,
                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CI", ci)
    assert main(["--config", str(NOTES), "test", "--stage", "local-sqlite", "--stage", "local-mysql"]) == code
    captured = capsys.readouterr()
    assert "local-sqlite is not applicable to this app: the app speaks PostgreSQL only" in captured.out
    assert ("nothing to run" in captured.err) == (ci == "true")
