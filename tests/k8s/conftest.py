"""The Kubernetes stage (kind, or the cluster stageproof.toml names): contract, then chaos checks."""

from __future__ import annotations

from collections.abc import Callable

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
