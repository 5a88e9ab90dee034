"""A real pytest session held to its expected matrix at its end: a difference fails the run (naming
each check), a run whose only failures are accepted ones passes, and in CI the config's committed
matrix is found without being named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
REPO = Path(__file__).resolve().parents[2]
CHECKS = """
def test_passes(): pass
def test_known_bug(): assert False, "pod kill: 3 of 100 requests failed"
"""
MATRIX = """
[runs.run.external]
test_passes = "passed"
test_known_bug = { status = "accepted failure: GB-1 the dev server", failure = 'pod kill: \\d+ of \\d+' }
"""


def session(pytester: pytest.Pytester, *extra: str) -> pytest.RunResult:
    pytester.makepyfile(test_checks=CHECKS)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "--base-url", "http://127.0.0.1:9",
                                         f"--stageproof-config={REPO / 'stageproof.toml'}",
                                         "--stageproof-report=reports/run.json", *extra)


def test_a_run_whose_only_failure_is_accepted_passes_and_says_so(pytester: pytest.Pytester) -> None:
    (pytester.path / "expected.toml").write_text(MATRIX)
    result = session(pytester, "--stageproof-expected=expected.toml")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*stageproof expected matrix: as expected*",
                                 "*accepted*external / test_known_bug: accepted failure (GB-1 the dev server)*"])
    data = json.loads((pytester.path / "reports" / "run.json").read_text())
    assert data["run"]["session"] == "run" and data["run"]["config"] == "users" and data["run"]["run_id"]
    assert [item["check"] for item in data["expected"]["accepted"]] == ["test_known_bug"]
    assert data["stages"][0]["messages"]["test_known_bug"][0].startswith("AssertionError: pod kill: 3 of 100")


@pytest.mark.parametrize(("matrix", "line"), [
    (MATRIX.replace("test_passes", "test_gone"), "*DIFFERENT external / test_gone: vanished*"),
    (MATRIX.replace('test_passes = "passed"\n', ""), "*DIFFERENT external / test_passes: appeared*"),
    (MATRIX.replace("pod kill", "rollout"), "*DIFFERENT external / test_known_bug: fails differently*"),
    (MATRIX.replace("runs.run.", "runs.nightly."), "*DIFFERENT external (the whole stage): appeared: run 'run'*"),
])
def test_any_difference_fails_the_run_naming_the_check(pytester: pytest.Pytester, matrix: str, line: str) -> None:
    (pytester.path / "expected.toml").write_text(matrix)
    result = session(pytester, "--stageproof-expected=expected.toml")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*stageproof expected matrix: DIFFERENT: the run FAILS*", line])


def test_an_unreadable_matrix_fails_the_run_with_its_reason(pytester: pytest.Pytester) -> None:
    (pytester.path / "expected.toml").write_text('[runs.run.external]\ntest_passes = "pased"\n')
    result = session(pytester, "--stageproof-expected=expected.toml")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*UNREADABLE*", "*runs.run.external.test_passes*"])


def test_in_ci_the_configs_committed_matrix_applies_without_being_named(pytester: pytest.Pytester,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    result = session(pytester)
    # expected/users.toml has no rows for a run named "run": reported as not held, the plain failure stays
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*stageproof expected matrix: NOT HELD*",
                                 f"*{REPO / 'expected' / 'users.toml'}* has no rows for run 'run'*"])
    monkeypatch.delenv("CI")
    result = session(pytester)
    assert "stageproof expected matrix" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # the plain failure, nothing accepted without a matrix


def test_an_intermittent_accepted_failure_may_pass_and_the_run_says_so(pytester: pytest.Pytester) -> None:
    matrix = MATRIX.replace('test_passes = "passed"',
                            'test_passes = { status = "accepted failure: GB-3 late resets after a node loss", '
                            "failure = 'late', intermittent = true }")
    matrix = matrix.replace("of \\d+' }", "of \\d+', intermittent = true }")
    (pytester.path / "expected.toml").write_text(matrix)
    result = session(pytester, "--stageproof-expected=expected.toml")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*stageproof expected matrix: as expected*",
                                 "*external / test_passes: intermittent accepted failure (GB-3 late resets after a "
                                 "node loss): passed this run*",
                                 "*external / test_known_bug: accepted failure (GB-1 the dev server)*"])


def test_without_intermittent_an_accepted_failure_that_passes_is_stale(pytester: pytest.Pytester) -> None:
    matrix = MATRIX.replace('test_passes = "passed"',
                            "test_passes = { status = \"accepted failure: GB-3\", failure = 'late' }")
    (pytester.path / "expected.toml").write_text(matrix)
    result = session(pytester, "--stageproof-expected=expected.toml")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*DIFFERENT external / test_passes: stale entry: remove it (it passes now)*"])


def test_intermittent_is_true_or_false(pytester: pytest.Pytester) -> None:
    matrix = MATRIX.replace("of \\d+' }", "of \\d+', intermittent = \"yes\" }")
    (pytester.path / "expected.toml").write_text(matrix)
    result = session(pytester, "--stageproof-expected=expected.toml")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*UNREADABLE*", "*runs.run.external.test_known_bug: `intermittent` is true or false*"])
