"""The k8s checks of the reference app: the generic chaos checks every team gets
(harness/checks/k8s.py), and the one its own manifests call for: the NetworkPolicy
`db-only-from-app` lets only the app's pods open the database port (stageproof's kind cluster
enforces NetworkPolicy: its engine is installed and Ready at bring-up)."""

from __future__ import annotations

import pytest

from harness.checks.common import Reporter, requires
from harness.checks.k8s import *  # noqa: F403  (the generic checks, collected here)
from harness.k8s.workload import K8sWorkload
from harness.stage import Workload

pytestmark = pytest.mark.slow
POLICY = "db-only-from-app"
DB_SERVICE, DB_PORT = "db", 3306  # stages/k8s/base/db.yaml


def db_reachable_from(workload: K8sWorkload, labels: dict[str, str]) -> tuple[bool, str]:
    """Can a pod labelled `labels` (running the app image, which has python) open the database port?"""
    script = f"import socket; socket.create_connection(('{DB_SERVICE}', {DB_PORT}), 5); print('connected')"
    return workload.probe_pod(labels, script)


@requires(Workload)
def test_only_app_pods_reach_the_database(workload: Workload, report: Reporter) -> None:
    assert isinstance(workload, K8sWorkload)
    assert workload.network_policy_types(POLICY) == ["Ingress"]
    allowed, log = db_reachable_from(workload, workload.template()["spec"]["template"]["metadata"]["labels"])
    assert allowed, f"a pod with the app's labels cannot reach the database: {log}"
    stranger, log = db_reachable_from(workload, {"app.kubernetes.io/name": "stranger"})
    assert not stranger, f"NetworkPolicy {POLICY} is NOT enforced: an unlabelled pod reached the database: {log}"
    report(f"NetworkPolicy {POLICY} is enforced: an unlabelled pod could not reach the database")
