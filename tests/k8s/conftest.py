"""The Kubernetes stage (kind, or the cluster stageproof.toml names): contract, then chaos checks.

The checks live in harness/checks/ (any team runs them; the plugin gives them the workload view);
this folder adds the reference app's own checks and the cluster's side of every failure.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator

import pytest

from harness.errors import StageUnavailable
from harness.images.kind_node import ensure_kind_node_image
from harness.lifecycle import in_ci
from harness.pytest_plugin.fixtures import stage_fixture
from tests.support.plain_cluster import PlainCluster, plain_cluster

stage = stage_fixture("k8s")

#: the node image's check that deletes the shared plain cluster: after every test that uses it
DELETES_THE_PLAIN_CLUSTER = "test_kind_delete_leaves_nothing_behind"


@pytest.fixture(scope="session")
def shared_plain_cluster() -> Iterator[PlainCluster]:
    """One plain cluster of our node image for the node image's checks and the Helm tool's."""
    try:
        image = ensure_kind_node_image()
    except StageUnavailable as err:
        if in_ci():
            raise
        pytest.skip(f"kind node image cannot be built here: {err}")
    with plain_cluster(image, workers=int(os.environ.get("STAGEPROOF_KIND_WORKERS", "0"))) as cluster:
        yield cluster


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The check that deletes the shared plain cluster runs after every other test of the session."""
    last = [item for item in items if item.name == DELETES_THE_PLAIN_CLUSTER]
    items[:] = [item for item in items if item.name != DELETES_THE_PLAIN_CLUSTER] + last


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed check shows the cluster's side too: pods, events, logs, `kubectl describe`."""
    report: pytest.TestReport = yield
    workload = getattr(item, "funcargs", {}).get("workload")
    if report.failed and report.when == "call" and workload is not None:
        report.sections.append(("k8s diagnostics", workload.diagnostics()))
    return report
