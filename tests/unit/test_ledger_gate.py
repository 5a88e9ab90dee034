"""The cross-stage diff as a gate over a CI run's reports/: a recording the matrix calls for and that
is missing, stale (another run, another release, no provenance, not called for) or divergent fails it,
per pair of stages; fresh and alike recordings pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import compare_recordings
from harness.contract.diff import Answer, Recording
from harness.report.expected import load_matrix
from harness.report.gate import diff_gate
from harness.report.ledger import Ledger
from harness.report.recordings import Provenance, recording_path, write_recording

RELEASE = "abc123"
MATRIX = """
app = "users"
[runs.local.local-sqlite]
test_stage_answers_like_the_first_stage = "passed"
[runs.local.local-mysql]
test_stage_answers_like_the_first_stage = "passed"
[runs.docker.docker]
test_stage_answers_like_the_first_stage = { status = "accepted failure: GB-2", failure = 'header Server' }
[runs.compose.compose]
stage = "not applicable: no compose file"
"""


def answers(body: object, server: str = "gunicorn") -> tuple[Answer, ...]:
    return (Answer("GET", "/users", "none", 200, {"Server": server}, body, True),
            Answer("GET", "/healthz", "none", 200, {"Server": server}, {"ok": True}, True))


def session(folder: Path, name: str, run_id: str, stages: dict[str, tuple[Answer, ...]],
            release: str = RELEASE) -> None:
    """A session's report and its recordings, as the plugin writes them."""
    ledger = Ledger()
    ledger.run.run_id, ledger.run.release, ledger.run.config, ledger.run.session = run_id, release, "users", name
    for stage, recorded in stages.items():
        ledger.outcome(stage, "passed", contract=False, seconds=0.1, test="test_stage_answers_like_the_first_stage")
        write_recording(recording_path(folder / f"{name}.json", stage), Recording(stage, release, recorded).to_json(),
                        Provenance(run_id, release, "users", name))
    ledger.write_json(folder / f"{name}.json")


@pytest.fixture
def ci_run(tmp_path: Path) -> Path:
    """A CI run whose recordings are all fresh and alike."""
    reports = tmp_path / "reports"
    session(reports, "local", "r1", {"local-sqlite": answers([{"name": "a"}]), "local-mysql": answers([{"name": "a"}])})
    session(reports, "docker", "r2", {"docker": answers([{"name": "a"}])})
    (tmp_path / "users.toml").write_text(MATRIX)
    return tmp_path


def gate(ci_run: Path, release: str = RELEASE) -> tuple[bool, list[str]]:
    result = diff_gate(ci_run / "reports", [load_matrix(ci_run / "users.toml")], release=release,
                       compare=compare_recordings)
    return result.ok, result.lines()


def test_fresh_alike_recordings_pass_and_each_pair_of_stages_is_printed(ci_run: Path) -> None:
    ok, lines = gate(ci_run)
    assert ok, lines
    assert "users: local-sqlite (local) vs local-mysql (local): 0 divergences in 2 requests [ok]" in lines
    assert "users: local-sqlite (local) vs docker (docker): 0 divergences in 2 requests [ok]" in lines


def test_a_missing_recording_fails_the_gate_unless_its_diff_check_is_an_accepted_failure(ci_run: Path) -> None:
    (ci_run / "reports" / "local.recording.local-mysql.json").unlink()
    ok, lines = gate(ci_run)
    assert not ok and any(line.startswith("  PROBLEM missing: ") and "local.recording.local-mysql.json" in line
                          for line in lines)
    (ci_run / "reports" / "docker.recording.docker.json").unlink()  # accepted failure at docker: may not record
    assert sum("PROBLEM" in line for line in gate(ci_run)[1]) == 1


def test_a_recording_of_another_run_or_release_or_without_provenance_is_stale(ci_run: Path) -> None:
    reports = ci_run / "reports"
    session(reports, "local", "r9", {"local-sqlite": answers([{"name": "a"}])})  # a rerun left local-mysql behind
    ok, lines = gate(ci_run)
    assert not ok and any("stale:" in line and "written by run r1, but the report of session local is run r9" in line
                          for line in lines)
    ok, lines = gate(ci_run, release="def456")
    stale = [line for line in lines if "not this CI run's def456" in line]
    assert len(stale) == 2 and "local.recording.local-sqlite.json" in stale[1] and "docker.recording" in stale[0]
    path = reports / "docker.recording.docker.json"
    path.write_text(Recording("docker", RELEASE, answers([{"name": "a"}])).to_json())
    assert any("carries no provenance" in line for line in gate(ci_run)[1])


def test_a_recording_no_matrix_calls_for_is_stale(ci_run: Path) -> None:
    session(ci_run / "reports", "compose", "r3", {"compose": answers([{"name": "a"}])})
    ok, lines = gate(ci_run)
    assert not ok and any("no expected matrix runs the diff at compose in session compose" in line for line in lines)


def test_a_divergence_fails_the_gate_unless_the_stage_accepts_it_as_stated(ci_run: Path) -> None:
    reports = ci_run / "reports"
    session(reports, "docker", "r2", {"docker": answers([{"name": "a"}], server="nginx")})
    ok, lines = gate(ci_run)
    assert ok, lines  # the matrix accepts a Server header divergence at docker
    assert any("[accepted]" in line for line in lines)
    session(reports, "docker", "r2", {"docker": answers([{"name": "b"}])})
    ok, lines = gate(ci_run)
    assert not ok
    assert "users: local-sqlite (local) vs docker (docker): 1 divergences in 2 requests [DIVERGES]" in lines
    assert "    GET /users: body field [0].name: 'a' vs 'b'" in lines


def test_the_reference_is_the_first_stage_of_the_migration_whatever_the_file_order(ci_run: Path) -> None:
    reports = ci_run / "reports"
    session(reports, "local", "r1", {"local-mysql": answers([{"name": "a"}]), "local-sqlite": answers([{"name": "z"}])})
    lines = gate(ci_run)[1]
    assert any(line.startswith("users: local-sqlite (local) vs local-mysql (local): 1 divergences") for line in lines)
