"""The Kubernetes stage (kind, or the cluster stageproof.toml names): contract, then chaos checks.

The checks live in harness/checks/ (any team runs them; the plugin gives them the workload view);
this folder adds the reference app's own checks and the cluster's side of every failure.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

from harness.pytest_plugin.fixtures import stage_fixture

stage = stage_fixture("k8s")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed check shows the cluster's side too: pods, events, logs, `kubectl describe`."""
    report: pytest.TestReport = yield
    workload = getattr(item, "funcargs", {}).get("workload")
    if report.failed and report.when == "call" and workload is not None:
        report.sections.append(("k8s diagnostics", workload.diagnostics()))
    return report
