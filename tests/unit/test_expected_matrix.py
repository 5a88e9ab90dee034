"""The expected matrix holds a run strictly: every way a run proves less (or differently) is a named
difference, an accepted failure is accepted only while it fails as stated, and `expected write`
turns real reports into a file that the same reports then satisfy."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.report.expected import ExpectedMatrixError, failure_pattern, find_matrix, load_matrix
from harness.report.expected_write import write_expected
from harness.report.ledger import Ledger
from harness.report.verdict import compare, missing

MATRIX = """
app = "users"
config = "stageproof.toml"

[runs.k8s.local-sqlite]
stage = "not applicable: the k8s session runs k8s only"

[runs.k8s.k8s]
test_contract_case = "passed"
test_ingress = "not applicable: cluster 'x' is not ours"
test_pod_kill = { status = "accepted failure: GB-12 the dev server drops requests", failure = '\\d+ of \\d+ failed' }
test_drain = "passed"
"""


def run(**changes: object) -> Ledger:
    """A k8s run that matches MATRIX, with `changes` applied to its record."""
    ledger = Ledger()
    ledger.record("local-sqlite").stage_not_applicable = "the k8s session runs k8s only"
    record = ledger.record("k8s")
    record.outcomes = {"test_contract_case": "passed", "test_pod_kill": "failed", "test_drain": "passed"}
    record.not_applicable = {"test_ingress": "cluster 'x' is not ours"}
    record.messages = {"test_pod_kill": ["AssertionError: pod kill: 12 of 400 failed (HTTP 502)"]}
    record.figures = [{"check": "test_pod_kill", "failed": 12, "sent": 400}]
    for name, value in changes.items():
        setattr(record, name, value)
    return ledger


@pytest.fixture
def matrix(tmp_path: Path) -> Path:
    path = tmp_path / "expected" / "users.toml"
    path.parent.mkdir()
    path.write_text(MATRIX)
    return path


def kinds(ledger: Ledger, matrix: Path) -> dict[str, str]:
    verdict = compare(ledger, load_matrix(matrix), "k8s")
    return {f"{d.stage}/{d.check}": d.kind for d in verdict.differences}


def test_a_run_as_stated_passes_and_its_accepted_failure_is_reported_with_its_figures(matrix: Path) -> None:
    verdict = compare(run(), load_matrix(matrix), "k8s")
    assert verdict.ok and verdict.compared == 5
    (accepted,) = verdict.accepted
    assert (accepted.stage, accepted.check, accepted.reason) == ("k8s", "test_pod_kill",
                                                                 "GB-12 the dev server drops requests")
    assert accepted.figures == ({"check": "test_pod_kill", "failed": 12, "sent": 400},)
    assert "failed 12, sent 400" in accepted.line()


def test_every_way_of_proving_less_is_a_named_difference(matrix: Path) -> None:
    outcomes = {"test_contract_case": "passed", "test_pod_kill": "failed", "test_new_check": "passed"}
    assert kinds(run(outcomes=outcomes), matrix) == {"k8s/test_drain": "vanished", "k8s/test_new_check": "appeared"}
    turned = run(not_applicable={"test_ingress": "cluster 'x' is not ours", "test_drain": "no node chaos"},
                 outcomes={"test_contract_case": "passed", "test_pod_kill": "failed"})
    assert kinds(turned, matrix) == {"k8s/test_drain": "turned not applicable"}
    reason = run(not_applicable={"test_ingress": "another reason"})
    assert kinds(reason, matrix) == {"k8s/test_ingress": "not applicable for another reason"}
    skipped = run(outcomes={"test_contract_case": "skipped", "test_pod_kill": "failed", "test_drain": "passed"})
    assert kinds(skipped, matrix) == {"k8s/test_contract_case": "turned skipped"}


def test_an_accepted_failure_that_passes_or_fails_differently_is_a_difference(matrix: Path) -> None:
    passing = run(outcomes={"test_contract_case": "passed", "test_pod_kill": "passed", "test_drain": "passed"})
    assert kinds(passing, matrix) == {"k8s/test_pod_kill": "stale entry: remove it (it passes now)"}
    other = run(messages={"test_pod_kill": ["AssertionError: the replacement never became Ready"]})
    assert kinds(other, matrix)["k8s/test_pod_kill"].startswith("fails differently")


def test_a_stage_that_turns_applicable_or_not_is_a_difference(matrix: Path) -> None:
    ledger = run()
    ledger.record("local-sqlite").stage_not_applicable = None
    ledger.outcome("local-sqlite", "passed", contract=True, seconds=0.1, test="test_contract_case")
    assert kinds(ledger, matrix) == {"local-sqlite/": "now applicable: its checks are not expected"}
    ledger = run()
    ledger.record("docker").stage_not_applicable = "no image"
    assert kinds(ledger, matrix)["docker/"].startswith("appeared")
    assert compare(run(), load_matrix(matrix), "nightly").differences[0].kind.startswith("appeared: run 'nightly'")


def test_a_ci_run_that_lacks_a_session_or_a_stage_of_the_matrix_is_told(matrix: Path) -> None:
    assert [d.kind for d in missing(load_matrix(matrix), {})] == ["vanished: no report of session k8s"] * 2
    only_k8s = run()
    del only_k8s.stages["local-sqlite"]
    assert [d.stage for d in missing(load_matrix(matrix), {"k8s": only_k8s})] == ["local-sqlite"]


@pytest.mark.parametrize(("cell", "error"), [
    ('"accepted failure: GB-1"', "must say how it fails"),
    ('"passd"', "is not \"passed\""),
    ('{ status = "passed", failure = "x" }', "only with an accepted failure"),
    ('{ status = "accepted failure: GB-1", failure = "(" }', "not a valid regular expression"),
    ('"not applicable: "', "is not \"passed\""),
])
def test_a_bad_cell_is_one_error_naming_its_key(tmp_path: Path, cell: str, error: str) -> None:
    path = tmp_path / "users.toml"
    path.write_text(f"[runs.local.docker]\ntest_x = {cell}\n")
    with pytest.raises(ExpectedMatrixError, match=r"runs\.local\.docker\.test_x") as caught:
        load_matrix(path)
    assert error in str(caught.value)


def test_the_failure_pattern_frees_numbers_and_paths_and_keeps_the_rest_literal() -> None:
    message = "AssertionError: pod kill: 12 of 400 failed (p99 1.25 s) [web-1] at /work/x/.venv/bin/python\nmore"
    pattern = failure_pattern(message)
    assert pattern == r"AssertionError: pod kill: \d+(?:\.\d+)? of \d+(?:\.\d+)? failed \(p\d+(?:\.\d+)? " \
                      r"\d+(?:\.\d+)? s\) \[web-\d+(?:\.\d+)?\] at \S+"
    assert re.match(pattern, message.replace("12 of 400", "3 of 399").replace("/work/x", "/ci/checkout"))
    assert not re.match(pattern, message.replace("pod kill", "rollout"))


def test_written_from_reports_the_file_is_satisfied_by_them_and_keeps_edited_reasons(tmp_path: Path) -> None:
    ledger = run()
    ledger.run.config, ledger.run.config_path, ledger.run.session = "users", "stageproof.toml", "k8s"
    report = tmp_path / "reports" / "k8s.json"
    ledger.write_json(report)
    (written,) = write_expected([report], tmp_path / "expected")
    text = written.read_text()
    assert "[runs.k8s.k8s]" in text and 'test_drain = "passed"' in text and "FIXME" in text
    assert compare(Ledger.from_payload(json.loads(report.read_text())), load_matrix(written), "k8s").ok
    written.write_text(text.replace("FIXME: say why it is accepted (a ticket)", "GB-12"))
    write_expected([report], tmp_path / "expected")
    assert "GB-12" in written.read_text() and "FIXME" not in written.read_text()


def test_the_matrix_is_found_in_the_config_folder_or_above_it_up_to_the_repository(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "expected").mkdir()
    (tmp_path / "expected" / "guestbook.toml").write_text("")
    example = tmp_path / "examples" / "guestbook"
    example.mkdir(parents=True)
    assert find_matrix(example, "guestbook") == tmp_path / "expected" / "guestbook.toml"
    assert find_matrix(example, "notes") is None
