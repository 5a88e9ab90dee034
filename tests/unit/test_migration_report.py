"""One page for the whole migration, as a person sees it: headless Chromium renders it (not blank, the
accepted failure and the chaos timeline painted), and every matrix cell the page states (config,
session, stage, check -> outcome, from its data- attributes) is the one the JSON reports and the
expected matrices imply, derived here independently; the diff's pairs and the verdict are in it too."""

from __future__ import annotations

import re
from dataclasses import asdict
from html.parser import HTMLParser
from pathlib import Path

from test_report_render import chromium, colours, decode_png, rgb

from harness.cli import compare_recordings
from harness.contract.diff import Answer, Recording
from harness.load.generator import Sample, summarize
from harness.report.expected_write import read_ledger
from harness.report.html import CELLS, FAILED, screenshot
from harness.report.ledger import Ledger
from harness.report.migration import write_migration_report
from harness.report.recordings import Provenance, recording_path, write_recording

RELEASE = "abc123"
USERS = """
app = "users"
[runs.local.local-sqlite]
test_contract_case = "passed"
test_stage_answers_like_the_first_stage = "passed"
test_database_outage = "not applicable: no database server"
[runs.k8s.k8s]
test_contract_case = "passed"
test_stage_answers_like_the_first_stage = "passed"
test_pod_kill = { status = "accepted failure: GB-12 dev server", failure = 'pod kill: \\d+ of \\d+ failed' }
"""
GUESTBOOK = """
app = "guestbook"
[runs.guestbook-docker.local-sqlite]
stage = "not applicable: MySQL only"
[runs.guestbook-docker.docker]
test_contract_case = "passed"
test_stage_answers_like_the_first_stage = "passed"
"""


class Page(HTMLParser):
    """What the page states: matrix cells, diff pairs, the verdict."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str, str, str], str] = {}
        self.different: set[tuple[str, str, str, str]] = set()
        self.pairs: dict[str, int] = {}
        self.verdict = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {key: value or "" for key, value in attrs}
        if tag == "td" and "data-outcome" in found:
            key = (found["data-config"], found["data-session"], found["data-stage"], found["data-check"])
            self.cells[key] = found["data-outcome"]
            if found.get("data-expected") == "different":
                self.different.add(key)
        if "data-pair" in found:
            self.pairs[found["data-pair"]] = int(found["data-divergences"])
        self.verdict = found.get("data-verdict", self.verdict)


def report(folder: Path, app: str, session: str, run_id: str) -> Ledger:
    ledger = Ledger()
    ledger.run.run_id, ledger.run.release, ledger.run.config, ledger.run.session = run_id, RELEASE, app, session
    return ledger


def record(folder: Path, ledger: Ledger, stage: str, body: object) -> None:
    answers = (Answer("GET", "/users", "none", 200, {}, body, True),)
    write_recording(recording_path(folder / f"{ledger.run.session}.json", stage),
                    Recording(stage, RELEASE, answers).to_json(),
                    Provenance(ledger.run.run_id, RELEASE, ledger.run.config, ledger.run.session))


def ci_run(folder: Path) -> list[Path]:
    """Three sessions of two configs: users' local and k8s (its pod kill an accepted failure, measured),
    guestbook's docker (local-sqlite declared not applicable, a divergence from nothing: the reference)."""
    local = report(folder, "users", "local", "r1")
    for check in ("test_contract_case", "test_stage_answers_like_the_first_stage"):
        local.outcome("local-sqlite", "passed", contract=False, seconds=0.1, test=check)
    local.record("local-sqlite").not_applicable["test_database_outage"] = "no database server"
    record(folder, local, "local-sqlite", [{"name": "a"}])
    k8s = report(folder, "users", "k8s", "r2")
    for check, outcome in (("test_contract_case", "passed"), ("test_stage_answers_like_the_first_stage", "failed"),
                           ("test_pod_kill", "failed")):
        k8s.outcome("k8s", outcome, contract=False, seconds=0.1, test=check)
    k8s.record("k8s").messages = {"test_pod_kill": ["AssertionError: pod kill: 40 of 300 failed"],
                                  "test_stage_answers_like_the_first_stage": ["k8s answers differently"]}
    samples = [Sample(n / 20, 0.01, "timeout" if 80 <= n < 120 else None) for n in range(300)]
    k8s.record("k8s").figures.append({"check": "test_pod_kill", "what": "kill one web pod", "disrupted_at": 4.0,
                                      "recovered_seconds": 2.0, "covered": True,
                                      "load": asdict(summarize("http://127.0.0.1:1/users", 20.0, 15.0, samples))})
    record(folder, k8s, "k8s", [{"name": "b"}])
    guestbook = report(folder, "guestbook", "guestbook-docker", "r3")
    guestbook.record("local-sqlite").stage_not_applicable = "MySQL only"
    for check in ("test_contract_case", "test_stage_answers_like_the_first_stage"):
        guestbook.outcome("docker", "passed", contract=False, seconds=0.1, test=check)
    record(folder, guestbook, "docker", [{"message": "hi"}])
    paths = []
    for ledger in (local, k8s, guestbook):
        paths.append(folder / f"{ledger.run.session}.json")
        ledger.write_json(paths[-1])
    return paths


def cells_from_json(paths: list[Path], matrices: dict[str, str]) -> dict[tuple[str, str, str, str], str]:
    """The cells the reports and matrices imply, by their own fields: the outcome, "not applicable" when
    the ledger says so, "not run" else; a failure is "accepted failure" when the matrix accepts it and its
    pattern matches every message."""
    reports = [read_ledger(path) for path in paths]
    expected = {}
    for app in {ledger.run.config for ledger in reports}:
        mine = [ledger for ledger in reports if ledger.run.config == app]
        checks = {check for ledger in mine for rec in ledger.stages.values()
                  for check in [*rec.outcomes, *rec.not_applicable]}
        for ledger in mine:
            for stage, rec in ledger.stages.items():
                for check in checks:
                    outcome = rec.outcomes.get(check)
                    if outcome is None:
                        skipped = rec.stage_not_applicable is not None or check in rec.not_applicable
                        outcome = "not applicable" if skipped else "not run"
                    row = re.search(rf"^{check} = .*accepted failure.*failure = '(.*)' }}$", matrices[app], re.M)
                    if outcome == "failed" and row and all(re.search(row.group(1), message)
                                                           for message in rec.messages.get(check, [])):
                        outcome = "accepted failure"
                    expected[(app, ledger.run.session, stage, check)] = outcome
    return expected


def test_the_migration_page_renders_and_states_what_the_reports_and_matrices_say(tmp_path: Path) -> None:
    browser = chromium()
    reports, matrices = tmp_path / "reports", {"users": USERS, "guestbook": GUESTBOOK}
    reports.mkdir()
    (tmp_path / "expected").mkdir()
    for app, text in matrices.items():
        (tmp_path / "expected" / f"{app}.toml").write_text(text)
    paths = ci_run(reports)
    page = write_migration_report(paths, reports / "migration.html", expected=tmp_path / "expected", release=RELEASE,
                                  compare=compare_recordings)

    png = screenshot(page, tmp_path / "migration.png", size=(1400, 2600), browser=browser)
    width, height, rows = decode_png(png.read_bytes())
    seen = colours(rows)
    assert seen.most_common(1)[0][1] < 0.95 * width * height, "the screenshot is (nearly) blank"
    for painted in (CELLS["passed"][1], CELLS["accepted failure"][1], CELLS["not applicable"][1], FAILED):
        assert seen[rgb(painted)] > 200, f"{painted} is not on the screenshot"

    parsed = Page()
    parsed.feed(page.read_text(encoding="utf-8"))
    expected = cells_from_json(paths, matrices)
    assert parsed.cells == expected
    assert expected[("users", "k8s", "k8s", "test_pod_kill")] == "accepted failure"
    assert expected[("users", "k8s", "k8s", "test_stage_answers_like_the_first_stage")] == "failed"
    assert expected[("guestbook", "guestbook-docker", "local-sqlite", "test_contract_case")] == "not applicable"
    assert parsed.different == {("users", "k8s", "k8s", "test_stage_answers_like_the_first_stage")}
    assert parsed.pairs == {"local-sqlite (local)|k8s (k8s)": 1}
    assert parsed.verdict == "failed"  # k8s diverges, and its diff check failed where the matrix says passed
    text = page.read_text(encoding="utf-8")
    assert "http://" not in text.replace("http://127.0.0.1:1/users", "") and "<script" not in text
    assert "GET /users: body field [0].name: &#x27;a&#x27; vs &#x27;b&#x27;" in text
