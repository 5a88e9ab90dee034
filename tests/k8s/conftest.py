"""The Kubernetes stage (kind, or the cluster stageproof.toml names): contract, then chaos checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from harness.lifecycle import StageRunner
from harness.plugin import stage_fixture
from harness.stage import Stage
from harness.stages.k8s import KubernetesStage

stage = stage_fixture("k8s")


@pytest.fixture(scope="session")
def k8s(stage: Stage | None, stage_runner: StageRunner) -> KubernetesStage:
    """The live k8s stage; its bring-up timings go into the run summary once."""
    if not isinstance(stage, KubernetesStage):
        pytest.skip("the k8s checks need the k8s stage itself (not --base-url)")
    notes = stage_runner.ledger.record(stage.name).notes
    notes.append("bring-up: " + ", ".join(f"{phase} {seconds:.1f}s" for phase, seconds in stage.timings.items()))
    return stage


@pytest.fixture
def report(k8s: KubernetesStage, stage_runner: StageRunner) -> Callable[[str], None]:
    """Print a check's measured figures and keep them in the run summary."""

    def note(text: str) -> None:
        print(f"[stageproof] k8s: {text}", flush=True)
        stage_runner.ledger.record(k8s.name).notes.append(text)

    return note


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed check shows the cluster's side too: pods, events, logs, `kubectl describe`."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    live = getattr(item, "funcargs", {}).get("k8s")
    if report.failed and report.when == "call" and isinstance(live, KubernetesStage):
        report.sections.append(("k8s diagnostics", live.logs()))
