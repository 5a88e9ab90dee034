"""The summary counts outcomes per stage and writes them as JSON, and as one HTML page that
opens with no network: the stage x check matrix and a timeline per chaos figure."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.load.generator import Sample, summarize
from harness.report.html import FAILED, write_reports
from harness.report.ledger import Ledger

pytest_plugins = ["pytester"]
REPO = Path(__file__).resolve().parents[2]


def test_counts_and_times_per_stage(tmp_path: Path) -> None:
    ledger = Ledger()
    ledger.record("docker").up_seconds = 4.25
    ledger.outcome("docker", "passed", contract=True, seconds=0.5)
    ledger.outcome("docker", "failed", contract=False, seconds=2.0)
    ledger.outcome("docker", "skipped", contract=True, seconds=0.0)
    table = ledger.table()
    assert "docker" in table and "4.2" in table
    rec = ledger.stages["docker"]
    assert (rec.passed, rec.failed, rec.skipped, rec.contract_seconds) == (1, 1, 1, 0.5)
    ledger.write_json(tmp_path / "r" / "summary.json")
    data = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert data["stages"][0]["stage"] == "docker" and data["stages"][0]["failed"] == 1


def test_each_test_keeps_its_worst_outcome_per_stage_in_the_json(tmp_path: Path) -> None:
    ledger = Ledger()
    for outcome in ("passed", "failed", "passed"):  # three cases of one parametrized test
        ledger.outcome("k8s", outcome, contract=True, seconds=0.1, test="test_contract_case")
    ledger.outcome("k8s", "skipped", contract=False, seconds=0.0, test="test_network_policy")
    ledger.outcome("k8s", "passed", contract=False, seconds=0.0, test="test_network_policy")
    ledger.write_json(tmp_path / "summary.json")
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["stages"][0]["outcomes"] == {"test_contract_case": "failed", "test_network_policy": "passed"}
    assert Ledger.from_payload(data).stages["k8s"].outcomes == ledger.stages["k8s"].outcomes


def test_not_applicable_is_data_in_the_ledger_and_survives_its_json(tmp_path: Path) -> None:
    ledger = Ledger()
    ledger.outcome("k8s", "passed", contract=False, seconds=1.0, test="test_pod_kill")
    ledger.record("local").not_applicable["test_pod_kill"] = "the stage cannot kill_instance"
    ledger.record("local").notes.append("kept up")
    ledger.record("docs-only").stage_not_applicable = "the app ships no image"
    ledger.write_json(tmp_path / "summary.json")
    ledger = Ledger.from_payload(json.loads((tmp_path / "summary.json").read_text()))
    assert ledger.checks() == ["test_pod_kill"]
    assert ledger.stages["k8s"].cell("test_pod_kill") == ("passed", "")
    assert ledger.stages["local"].cell("test_pod_kill") == ("not applicable", "the stage cannot kill_instance")
    assert ledger.stages["docs-only"].cell("test_pod_kill") == ("not applicable", "the app ships no image")
    assert ledger.stages["local"].cell("test_something_else") == ("not run", "")


def test_load_keeps_p99_latency_per_second_of_successful_requests() -> None:
    samples = [Sample(0.1, 0.010), Sample(0.6, 0.030), Sample(1.2, 0.0, "timeout"), Sample(2.5, 0.020)]
    result = summarize("http://127.0.0.1:1/", 2.0, 3.0, samples)
    assert result.p99_ms_per_second == {0: 30.0, 2: 20.0}


class Page(HTMLParser):
    """What a browser would fetch (tags, attribute values, CSS), the text, and the matrix cells."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[str] = []
        self.text: list[str] = []
        self.styles: list[str] = []
        self.cells: dict[tuple[str, str], str] = {}
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_style = tag == "style"
        self.attributes += [value or "" for _, value in attrs]
        found = dict(attrs)
        if "data-outcome" in found:
            self.cells[(str(found["data-stage"]), str(found["data-check"]))] = str(found["data-outcome"])

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        (self.styles if self._in_style else self.text).append(data)


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def chaos_ledger() -> Ledger:
    """Two stages: one passes what applies to it, one fails a pod kill measured under load."""
    samples = [Sample(n / 10, 0.01 + (0.2 if 40 <= n < 50 else 0), "ConnectionRefusedError" if 30 <= n < 40 else None)
               for n in range(100)]
    load = summarize("http://127.0.0.1:8080/users", 10.0, 10.0, samples)
    ledger = Ledger()
    for stage in ("local-sqlite", "k8s"):
        ledger.record(stage).base_url = "http://127.0.0.1:8080"
        ledger.outcome(stage, "passed", contract=True, seconds=0.1, test="test_contract_case")
    ledger.record("local-sqlite").not_applicable["test_pod_kill"] = "the stage cannot kill_instance"
    ledger.outcome("k8s", "failed", contract=False, seconds=12.0, test="test_pod_kill")
    ledger.outcome("k8s", "skipped", contract=False, seconds=0.0, test="test_network_policy")
    ledger.record("k8s").notes.append("see https://example.invalid/runbook when this fails")
    ledger.record("k8s").figures.append({"check": "test_pod_kill", "what": "kill one web pod", "disrupted_at": 3.0,
                                         "action_seconds": 0.2, "recovered_seconds": 1.5, "covered": True,
                                         "load": asdict(load)})
    ledger.record("k8s").figures.append({"check": "test_api", "cases": 12, "failures": 0})  # no timeline: a table row
    return ledger


def test_html_report_opens_offline_with_the_ledgers_matrix_and_a_timeline(tmp_path: Path) -> None:
    ledger = chaos_ledger()
    html_path = write_reports(ledger, tmp_path / "run.json")
    assert html_path == tmp_path / "run.html"
    html = html_path.read_text(encoding="utf-8")
    page = parse(html)

    assert not {"script", "link", "img", "iframe", "object", "embed", "base"} & set(page.tags)
    assert not [value for value in page.attributes if re.search(r"https?:|//|url\(", value)]
    assert not re.search(r"url\(|@import|https?:", "".join(page.styles))
    in_text = sum(chunk.count(scheme) for chunk in page.text for scheme in ("http://", "https://"))
    assert in_text >= 1 and html.count("http://") + html.count("https://") == in_text  # addresses only as text

    assert page.cells == {
        ("local-sqlite", "test_contract_case"): "passed", ("k8s", "test_contract_case"): "passed",
        ("local-sqlite", "test_pod_kill"): "not applicable", ("k8s", "test_pod_kill"): "failed",
        ("local-sqlite", "test_network_policy"): "not run", ("k8s", "test_network_policy"): "skipped",
    }

    (svg,) = re.findall(r"<svg.*?</svg>", html, re.DOTALL)
    failures = ledger.stages["k8s"].figures[0]["load"]["failures_per_second"]
    assert svg.count(f'fill="{FAILED}"') == len(failures) + 1  # a bar per second with failures, and the legend
    assert "<polyline" in svg and "disrupted at 3.0s, recovered at 4.5s" in svg
    assert "cases 12, failures 0" in "".join(page.text)


def test_the_plugin_writes_the_html_beside_the_json(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_checks="""
        import pytest

        def test_passes(): pass
        def test_fails(): assert False
        @pytest.mark.parametrize("n", [1, 2])
        def test_twice(n): pass
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--base-url", "http://127.0.0.1:9",
                                           f"--stageproof-config={REPO / 'stageproof.toml'}",
                                           "--stageproof-report=reports/run.json")
    result.assert_outcomes(passed=3, failed=1)
    data = json.loads((pytester.path / "reports" / "run.json").read_text())
    outcomes = data["stages"][0]["outcomes"]
    assert outcomes == {"test_passes": "passed", "test_fails": "failed", "test_twice": "passed"}
    cells = parse((pytester.path / "reports" / "run.html").read_text(encoding="utf-8")).cells
    assert cells == {("external", name): outcome for name, outcome in outcomes.items()}
