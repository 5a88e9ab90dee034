"""The proof ledger's commands, as CI's diff job calls them: `expected write` then `expected check`
over the same reports pass, `diff-gate` fails (exit 1) on a missing recording, `report migration`
writes the page; none needs a config file."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_ledger_gate import MATRIX, RELEASE, answers, session

from harness.cli import main


@pytest.fixture
def run_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    session(tmp_path / "reports", "local", "r1", {"local-sqlite": answers([{"name": "a"}])})
    session(tmp_path / "reports", "docker", "r2", {"docker": answers([{"name": "a"}])})
    return tmp_path


def test_write_then_check_passes_and_a_changed_matrix_fails(run_folder: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    reports = [str(path) for path in sorted((run_folder / "reports").glob("*.json")) if ".recording." not in path.name]
    assert main(["expected", "write", *reports]) == 0
    assert (run_folder / "expected" / "users.toml").is_file()
    assert main(["expected", "check", *reports]) == 0
    matrix = run_folder / "expected" / "users.toml"
    row = 'test_stage_answers_like_the_first_stage = "passed"'
    matrix.write_text(matrix.read_text().replace(row, row + '\ntest_more = "passed"', 1))
    assert main(["expected", "check", *reports]) == 1
    assert "DIFFERENT docker / test_more: vanished" in capsys.readouterr().out


def test_the_diff_gate_and_the_migration_page_from_the_command_line(run_folder: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    (run_folder / "expected").mkdir()
    (run_folder / "expected" / "users.toml").write_text(MATRIX.replace(
        "[runs.local.local-mysql]\ntest_stage_answers_like_the_first_stage = \"passed\"\n", ""))
    assert main(["diff-gate", "--release", RELEASE]) == 0
    assert "diff gate: 1 pairs of stages compared, 0 failing: PASSED" in capsys.readouterr().out
    (run_folder / "reports" / "local.recording.local-sqlite.json").unlink()
    assert main(["diff-gate", "--release", RELEASE]) == 1
    assert "PROBLEM missing" in capsys.readouterr().out
    reports = [str(path) for path in (run_folder / "reports").glob("*.json") if ".recording." not in path.name]
    assert main(["report", "migration", *reports, "-o", "reports/migration.html", "--release", RELEASE]) == 0
    assert 'data-verdict="failed"' in (run_folder / "reports" / "migration.html").read_text()
