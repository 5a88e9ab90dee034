"""The Kubernetes stage (kind, or the cluster stageproof.toml names): contract, then chaos checks.

The checks and their `k8s`/`report` fixtures live in harness/checks/k8s.py (any team runs them);
this folder adds the reference app's own checks and the cluster's side of every failure.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

from harness.pytest_plugin.fixtures import stage_fixture
from harness.stages.k8s import KubernetesStage

stage = stage_fixture("k8s")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed check shows the cluster's side too: pods, events, logs, `kubectl describe`."""
    report: pytest.TestReport = yield
    live = getattr(item, "funcargs", {}).get("k8s")
    if report.failed and report.when == "call" and isinstance(live, KubernetesStage):
        report.sections.append(("k8s diagnostics", live.logs()))
    return report
