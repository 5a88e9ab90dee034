"""The k8s checks of the reference app: the generic chaos checks every team gets
(harness/checks/k8s.py), and the one its own manifests call for: the NetworkPolicy
`db-only-from-app` lets only the app's pods open the database port (stageproof's kind cluster
enforces NetworkPolicy: its engine is installed and Ready at bring-up)."""

from __future__ import annotations

import pytest

from harness.checks.k8s import *  # noqa: F403  (the generic checks and their fixtures, collected here)
from harness.k8s import pods
from harness.pytest_plugin import Reporter
from harness.stages.k8s import KubernetesStage

pytestmark = pytest.mark.slow
POLICY = "db-only-from-app"
DB_SERVICE, DB_PORT = "db", 3306  # stages/k8s/base/db.yaml


def db_reachable_from(k8s: KubernetesStage, labels: dict[str, str]) -> tuple[bool, str]:
    """Can a pod labelled `labels` (running the app image, which has python) open the database port?"""
    assert k8s.app_image is not None
    script = f"import socket; socket.create_connection(('{DB_SERVICE}', {DB_PORT}), 5); print('connected')"
    return pods.run_probe_pod(k8s.api, k8s.namespace, image=k8s.app_image, labels=labels, script=script,
                              timeout=k8s.spec.check_timeout)


def test_only_app_pods_reach_the_database(k8s: KubernetesStage, report: Reporter) -> None:
    policy = k8s.api.networking.read_namespaced_network_policy(POLICY, k8s.namespace)
    assert policy.spec.policy_types == ["Ingress"]
    web = k8s.api.apps.read_namespaced_deployment(k8s.spec.deployment, k8s.namespace)
    allowed, log = db_reachable_from(k8s, dict(web.spec.template.metadata.labels))
    assert allowed, f"a pod with the app's labels cannot reach the database: {log}"
    stranger, log = db_reachable_from(k8s, {"app.kubernetes.io/name": "stranger"})
    assert not stranger, f"NetworkPolicy {POLICY} is NOT enforced: an unlabelled pod reached the database: {log}"
    report(f"NetworkPolicy {POLICY} is enforced: an unlabelled pod could not reach the database")
