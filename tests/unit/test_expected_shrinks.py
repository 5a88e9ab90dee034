"""What CI proves cannot shrink silently: `checks.persistence` deleted from a copy of the guestbook's
config turns its two data checks "not applicable", and a CI-mode run held to the committed matrix
(found beside the config, as CI finds it) FAILS, naming each of them. (Last round this stayed green.)
Only those two checks are selected: they are judged at collection, so no stage comes up."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
REPO = Path(__file__).resolve().parents[2]
CHECKS = ("test_acknowledged_writes_survive_a_database_crash",
          "test_data_written_before_a_database_outage_reads_back_after")


def test_deleting_checks_persistence_fails_a_ci_run_naming_the_checks(pytester: pytest.Pytester,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    repo = pytester.path / "repo"
    (repo / ".git").mkdir(parents=True)  # the top of a checkout: where the search for expected/ stops
    shutil.copytree(REPO / "examples" / "guestbook", repo / "guestbook")
    (repo / "expected").mkdir()
    shutil.copy2(REPO / "expected" / "guestbook.toml", repo / "expected" / "guestbook.toml")
    config = repo / "guestbook" / "stageproof.toml"
    text = config.read_text()
    line = next(line for line in text.splitlines(keepends=True) if line.startswith("persistence = "))
    config.write_text(text.replace(line, ""))
    monkeypatch.setenv("CI", "true")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--pyargs", "harness.checks.suite",
                                           "--stage", "local-mysql", f"--stageproof-config={config}",
                                           "--stageproof-report=reports/guestbook-local-mysql.json",
                                           "-k", " or ".join(CHECKS))
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    result.stdout.fnmatch_lines(["*stageproof expected matrix: DIFFERENT: the run FAILS*"])
    for check in CHECKS:
        assert f"DIFFERENT local-mysql / {check}: turned not applicable" in out, out
