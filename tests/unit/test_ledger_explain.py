"""A failed chaos check says why from the team's rendered manifests: the issue's example (Flask's dev
server, one replica, no readiness probe, no preStop) gets facts naming object and field, and the
smallest patch (2 replicas, maxUnavailable 0, readiness on /, a 5 s preStop sleep); the repo's own
manifests need no advice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.k8s import disruption
from harness.report import manifest_rules as rules
from harness.report.explain import DISRUPTIONS, disruption_of, explain

REPO = Path(__file__).resolve().parents[2]
ROLLOUT = "test_rolling_update_serves_the_new_release_everywhere_without_failure"
EVERY_CHECK = ["test_pod_kill_loses_no_request_and_a_replacement_becomes_ready", ROLLOUT,
               "test_rollback_returns_the_previous_release_without_failure",
               "test_scaling_2_5_1_every_replica_identical_and_no_failure_on_scale_down",
               "test_code_change_is_built_rolled_out_and_served_by_every_pod_without_failure",
               "test_infrastructure_change_rolls_out_without_failure",
               "test_draining_a_worker_loses_no_request_and_its_pods_move",
               "test_node_failure_the_app_keeps_serving_and_its_pods_are_rescheduled",
               "test_database_pod_kill_keeps_data_and_the_app_recovers_unrestarted"]


def issue_example() -> list[dict[str, Any]]:
    """The issue's guestbook: `python app.py` (Flask's dev server), 1 replica, no probes, no preStop."""
    labels = {"app": "guestbook"}
    web = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "guestbook"},
           "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                        {"name": "guestbook", "image": "guestbook:latest", "command": ["python", "app.py"],
                         "ports": [{"containerPort": 5000}]}]}}}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "guestbook"},
               "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 5000}]}}
    return [web, service]


def test_every_chaos_check_has_a_disruption() -> None:
    assert all(disruption_of(check) for check in EVERY_CHECK)
    assert disruption_of("test_database_pod_kill_x") == "database pod kill" and disruption_of("test_contract") is None
    assert len({what for _, what in DISRUPTIONS}) == len(DISRUPTIONS)


def test_the_issues_example_gets_facts_with_object_and_field_and_the_smallest_patch() -> None:
    explanation = explain(ROLLOUT, issue_example(), "guestbook")
    fields = {(fact.object, fact.field): fact.value for fact in explanation.facts}
    assert fields == {
        ("Deployment/guestbook", "spec.replicas"): "1",
        ("Deployment/guestbook", "spec.template.spec.containers[guestbook].readinessProbe"): "(absent)",
        ("Deployment/guestbook", "spec.template.spec.containers[guestbook].lifecycle.preStop"): "(absent)",
        ("Deployment/guestbook", "spec.strategy.rollingUpdate.maxUnavailable"): "(absent: 25%)",
        ("Deployment/guestbook", "spec.template.spec.containers[guestbook].command"): "python app.py",
    }
    assert "development server" in str(explanation.facts[-1])
    assert explanation.patch is not None
    (patch,) = [doc for doc in yaml.safe_load_all(explanation.patch) if doc]
    assert patch["kind"] == "Deployment" and patch["metadata"] == {"name": "guestbook"}
    assert patch["spec"]["replicas"] == 2
    assert patch["spec"]["strategy"] == {"rollingUpdate": {"maxUnavailable": 0}}
    (container,) = patch["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "guestbook"
    assert container["readinessProbe"]["httpGet"] == {"path": "/", "port": 5000}
    assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    assert "Deployment/guestbook spec.replicas = 1: one pod" in explanation.text()


def test_each_disruption_names_only_the_facts_that_can_explain_it() -> None:
    docs = issue_example()
    pod_kill = {fact.field for fact in explain(EVERY_CHECK[0], docs, "guestbook").facts}
    assert not any("strategy" in name or "topology" in name for name in pod_kill)
    drain = explain("test_draining_a_worker_loses_no_request_and_its_pods_move", docs, "guestbook")
    assert {fact.object for fact in drain.facts} >= {"PodDisruptionBudget"}
    assert any("topologySpreadConstraints" in fact.field for fact in drain.facts)
    assert "kind: PodDisruptionBudget" in (drain.patch or "")
    node = {fact.field for fact in explain(EVERY_CHECK[7], docs, "guestbook").facts}
    assert not any("preStop" in name for name in node)


def test_a_chart_gets_helm_values_for_the_keys_its_values_have() -> None:
    values = {"replicaCount": 1, "preStopSleepSeconds": 0, "image": {"tag": "x"}}
    patch = explain(EVERY_CHECK[0], issue_example(), "guestbook", values=values).patch or ""
    helm, rest = [doc for doc in yaml.safe_load_all(patch) if doc]
    assert helm == {"replicaCount": 2, "preStopSleepSeconds": 5}
    assert "readinessProbe" in rest["spec"]["template"]["spec"]["containers"][0]  # no values key: a patch


def test_the_image_cmd_tells_the_server_when_the_manifest_sets_no_command() -> None:
    docs = issue_example()
    del docs[0]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert not any("command" in fact.field or "CMD" in fact.field for fact in explain(ROLLOUT, docs, "guestbook").facts)
    facts = explain(ROLLOUT, docs, "guestbook", image_command=["python", "app.py"]).facts
    assert [fact.value for fact in facts if fact.field == "(the image's CMD)"] == ["python app.py"]
    docs[0]["spec"]["template"]["spec"]["containers"][0]["command"] = ["gunicorn", "-b", ":5000", "app:app"]
    assert not any("command" in fact.field for fact in explain(ROLLOUT, docs, "guestbook").facts)


def repo_manifests() -> list[dict[str, Any]]:
    docs = []
    for path in sorted((REPO / "stages" / "k8s" / "base").glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


@pytest.mark.parametrize("check", EVERY_CHECK)
def test_the_repos_own_manifests_need_no_advice(check: str) -> None:
    explanation = explain(check, repo_manifests(), "web", ready_path="/readyz", health_path="/healthz")
    assert explanation.facts == [] and explanation.patch is None
    assert explanation.text().startswith("nothing in the rendered manifests explains a failed")


def test_a_liveness_probe_on_the_readiness_path_explains_a_database_pod_kill() -> None:
    docs = repo_manifests()
    web = next(doc for doc in docs if doc["kind"] == "Deployment")
    web["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["path"] = "/readyz"
    explanation = explain(EVERY_CHECK[-1], docs, "web", ready_path="/readyz", health_path="/healthz")
    (fact,) = explanation.facts
    assert (fact.object, fact.field, fact.value) == ("Deployment/web",
                                                     "spec.template.spec.containers[web].livenessProbe.httpGet.path",
                                                     "/readyz")
    assert "path: /healthz" in (explanation.patch or "")


def test_the_restated_kubernetes_rules_agree_with_the_overlays() -> None:
    """harness.report.manifest_rules restates harness.k8s.disruption's rules (the report layer is below
    harness.k8s): on the same manifests they give the same answers."""
    for docs, name in ((issue_example(), "guestbook"), (repo_manifests(), "web")):
        web = next(doc for doc in docs if doc["kind"] == "Deployment" and doc["metadata"]["name"] == name)
        assert rules.has_budget(tuple(docs), web) == disruption.has_budget(tuple(docs), web)
        assert rules.blocking_spread(web) == disruption.blocking_spread(web)
    blocking = {"spec": {"template": {"spec": {"topologySpreadConstraints": [
        {"topologyKey": "kubernetes.io/hostname", "maxSkew": 1, "whenUnsatisfiable": "DoNotSchedule"}]}}}}
    assert rules.blocking_spread(blocking) == disruption.blocking_spread(blocking) != []
    for strategy in (None, {"type": "Recreate"}, {"rollingUpdate": {"maxUnavailable": "50%"}},
                     {"rollingUpdate": {"maxUnavailable": 2}}):
        for replicas in (1, 2, 5):
            assert rules.max_unavailable(strategy, replicas) == disruption.max_unavailable(strategy, replicas)
