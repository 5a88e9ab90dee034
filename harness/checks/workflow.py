"""The talk's workflow on Kubernetes, as checks under the configured load (`[checks] load`):
a developer changes code, a developer changes infrastructure, a worker node is drained, a
broken release meets the readiness gate and a hotfix follows, and a node fails.

Generic: each check knows the app only through the config (`[checks] code_change` names the
code change), so a team's `stageproof test` runs them too. Every check puts the stage back as
it found it (release, resources, nodes) however it ends. The node checks run only where node
chaos is allowed: on a kind cluster stageproof made, or where `stages.k8s.node_chaos` says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from harness.checks.common import needs, under_load
from harness.checks.k8s import assert_no_failure, deployment_of, k8s, per_pod, releases_served, restoring
from harness.images.build import build_release_image
from harness.k8s import disruption, nodes, rollout, status
from harness.k8s.manifests import RELEASE_ANNOTATION
from harness.k8s.watch import watch_until
from harness.load.generator import OVERLOADED
from harness.pytest_plugin import Reporter
from harness.stages.k8s import KubernetesStage

__all__ = [  # noqa: RUF022  (in the order they run)
    "k8s",
    "test_code_change_is_built_rolled_out_and_served_by_every_pod_without_failure",
    "test_infrastructure_change_rolls_out_without_failure",
    "test_broken_release_is_stopped_by_readiness_and_a_hotfix_goes_out",
    "test_draining_a_worker_loses_no_request_and_its_pods_move",
    "test_node_failure_the_app_keeps_serving_and_its_pods_are_rescheduled",
]

pytestmark = pytest.mark.slow
MORE_CPU_MILLIS = 50


# -- helpers -----------------------------------------------------------------------------------
@contextmanager
def release_kept(k8s: KubernetesStage) -> Iterator[None]:
    """The block may ship other builds and releases; afterwards the stage serves its own again."""
    image, release, releases = k8s.app_image, k8s.release, list(k8s.releases)

    def back() -> None:
        assert image is not None
        k8s.roll_out_image(image, release)
        k8s.releases[:] = releases

    with restoring(f"release {release} ({image})", back):
        yield


def web_template(k8s: KubernetesStage) -> dict[str, Any]:
    """The live web Deployment as data (what the manifests' dicts look like)."""
    live = k8s.api.apps.read_namespaced_deployment(k8s.spec.deployment, k8s.namespace)
    data: dict[str, Any] = k8s.api.apps.api_client.sanitize_for_serialization(live)
    return data


def placement(k8s: KubernetesStage) -> dict[str, str]:
    """{pod: node} of the Ready web pods."""
    return {pod.metadata.name: pod.spec.node_name for pod in k8s.web_pods()}


def chaos_worker(k8s: KubernetesStage) -> tuple[str, list[str]]:
    """A worker with app pods and without the database, and the app pods it runs."""
    app = placement(k8s)
    database = [pod.spec.node_name for pod in k8s.db_pods(ready_only=False)]
    node = nodes.pick_worker(app.values(), database, nodes.control_planes(k8s.api))
    assert node, (f"no worker runs app pods without the database (app pods: {app}; database on {database}): "
                  "give the app more replicas, or a topology spread over kubernetes.io/hostname")
    return node, sorted(pod for pod, where in app.items() if where == node)


def served_everywhere(k8s: KubernetesStage, release: str) -> Callable[[], dict[str, str]]:
    """A recovery probe: every Ready web pod reports `release` and answers the load request."""
    load = k8s.settings.checks.load

    def probe() -> dict[str, str]:
        served = releases_served(k8s)
        statuses = {pod: answer.status for pod, answer in per_pod(k8s, load.path).items()}
        assert set(served.values()) == {release}, f"release per pod: {served}"
        assert set(statuses.values()) == {load.status}, f"{load.method} {load.path} per pod: {statuses}"
        return served

    return probe


# -- 1. developer changes code -----------------------------------------------------------------
@pytest.mark.requires("roll_out_image")
@needs("checks.code_change", "images")
def test_code_change_is_built_rolled_out_and_served_by_every_pod_without_failure(k8s: KubernetesStage,
                                                                                 report: Reporter) -> None:
    change, images = k8s.settings.checks.code_change, k8s.settings.images
    assert change is not None and images is not None
    before = per_pod(k8s, change.path)
    assert not [pod for pod, answer in before.items() if change.contains in answer.body], (
        f"{change.path} contains {change.contains!r} before the change: checks.code_change proves nothing")
    release = f"{k8s.release}-code"
    started = time.monotonic()
    image = build_release_image(images.app, release=release, patch=change.patch)
    built = time.monotonic() - started
    ref = k8s.load_image(image)  # into the nodes before the load: a rollout, not an image copy, is measured
    loaded = time.monotonic() - started - built
    with release_kept(k8s):
        result = under_load(k8s.settings, deployment_of(k8s), f"code change {image}",
                            lambda: k8s.roll_out_image(image, release))
        served = per_pod(k8s, change.path)
        running = {pod.metadata.name: pod.spec.containers[0].image for pod in k8s.web_pods()}
    assert_no_failure(result, report)
    assert set(running.values()) == {ref}, f"image per pod after the rollout: {running}"
    without = {pod: answer.status for pod, answer in served.items() if change.contains not in answer.body}
    assert not without, f"pods whose {change.path} lacks {change.contains!r} (status): {without}"
    report(f"code change: {change.patch.name} built as {image} in {built:.1f}s, loaded into the nodes in "
           f"{loaded:.1f}s; all {len(served)} pods run it "
           f"and {change.path} contains {change.contains!r}")


# -- 2. developer changes infrastructure --------------------------------------------------------
@pytest.mark.requires("roll_out")
def test_infrastructure_change_rolls_out_without_failure(k8s: KubernetesStage, report: Reporter) -> None:
    """More CPU requested for the web container: a new revision, rolled out under load."""
    name, namespace, api = k8s.spec.deployment, k8s.namespace, k8s.api
    original = web_template(k8s)["spec"]["template"]["spec"]["containers"][0].get("resources") or {}
    changed = rollout.with_more_cpu(original, MORE_CPU_MILLIS)

    def set_resources(resources: dict[str, Any]) -> None:
        rollout.set_resources(api, namespace, name, resources)
        k8s.wait_rolled_out()

    what = f"web CPU request {original.get('requests', {}).get('cpu', 'unset')} -> {changed['requests']['cpu']}"
    with restoring("the web resources", lambda: set_resources(original)):
        result = under_load(k8s.settings, deployment_of(k8s), what, lambda: set_resources(changed))
        requested = {pod.metadata.name: (pod.spec.containers[0].resources.requests or {}).get("cpu")
                     for pod in k8s.web_pods()}
    assert_no_failure(result, report)
    assert set(requested.values()) == {changed["requests"]["cpu"]}, f"CPU request per pod: {requested}"
    report(f"infrastructure change: {what}; all {len(requested)} pods run with it")


# -- 4. emergency patching ---------------------------------------------------------------------
@pytest.mark.requires("roll_out_image")
@needs("images")
def test_broken_release_is_stopped_by_readiness_and_a_hotfix_goes_out(k8s: KubernetesStage,
                                                                      report: Reporter) -> None:
    settings, images, spec = k8s.settings, k8s.settings.images, k8s.spec
    assert images is not None and k8s.app_image is not None
    web = web_template(k8s)
    replicas, old_release, old_image = web["spec"]["replicas"], k8s.release, k8s.app_image
    unavailable = disruption.max_unavailable(web["spec"].get("strategy"), replicas)
    broken, hotfix = f"{old_release}-broken", f"{old_release}-hotfix"
    seen: dict[str, Any] = {}

    def stalled() -> None:
        seen["condition"] = watch_until(
            k8s.api.apps.list_namespaced_deployment, status.progress_deadline_exceeded(spec.deployment),
            what=f"deployment {spec.deployment} to exceed its progress deadline", diagnostics=k8s.logs,
            timeout=spec.progress_deadline_seconds + spec.check_timeout, namespace=k8s.namespace,
            field_selector=f"metadata.name={spec.deployment}")

    def ship_hotfix() -> None:
        seen["began_at"] = time.monotonic()
        k8s.roll_out_image(image, hotfix)
        seen["served"] = served_everywhere(k8s, hotfix)()
        seen["served_at"] = time.monotonic()

    with release_kept(k8s):
        shipped = under_load(settings, deployment_of(k8s), f"broken release {broken}", lambda: k8s.roll_out_image(
            old_image, broken, broken_deadline=spec.progress_deadline_seconds), stalled)
        during = releases_served(k8s)
        stuck = [pod.metadata.name for pod in k8s.web_pods(ready_only=False)
                 if (pod.metadata.annotations or {}).get(RELEASE_ANNOTATION) == broken]
        ready_broken = [pod.metadata.name for pod in k8s.web_pods()
                        if (pod.metadata.annotations or {}).get(RELEASE_ANNOTATION) == broken]
        image = build_release_image(images.app, release=hotfix)
        built_at = time.monotonic()
        k8s.load_image(image)  # part of "built to served", but not under load: see the code change check
        seen["loaded_at"] = time.monotonic()
        fixed = under_load(settings, deployment_of(k8s), f"hotfix {image}", ship_hotfix)
    report(f"broken release {broken} (the container cannot start; maxUnavailable {unavailable} of {replicas}): "
           f"{seen['condition'].reason}: {seen['condition'].message}; {len(during)} Ready pods kept serving "
           f"{sorted(set(during.values()))}, {len(stuck)} pod(s) of the broken release, none Ready")
    assert_no_failure(shipped, report)
    assert set(during.values()) == {old_release} and len(during) >= replicas - unavailable, during
    assert stuck and not ready_broken, f"pods of the broken release: {stuck}, Ready: {ready_broken}"
    assert_no_failure(fixed, report)
    served_seconds = seen["served_at"] - built_at
    report(f"hotfix: {image} served everywhere ({len(seen['served'])} pods Ready on it and answering) "
           f"{served_seconds:.1f}s after it was built ({seen['loaded_at'] - built_at:.1f}s loading it into the nodes, "
           f"{seen['began_at'] - seen['loaded_at']:.1f}s the load's baseline before the rollout began)",
           {"hotfix_built_to_served_seconds": round(served_seconds, 3)})


# -- 3. infrastructure improvements: a drain ----------------------------------------------------
@pytest.mark.requires("drain_node")
def test_draining_a_worker_loses_no_request_and_its_pods_move(k8s: KubernetesStage, report: Reporter) -> None:
    web = web_template(k8s)
    blocking = disruption.blocking_spread(web)
    assert not blocking, "the web pods' topology spread would keep a drained node's pods unscheduled: " + \
        "; ".join(blocking)
    replicas = web["spec"]["replicas"]
    assert replicas >= 2, f"{replicas} web replica: draining its node is an outage by design"
    node, moving = chaos_worker(k8s)

    def put_back() -> None:
        k8s.uncordon_node(node)
        k8s.restart_app()  # spread the replicas over every node again

    with restoring(f"node {node} in service", put_back):
        result = under_load(k8s.settings, deployment_of(k8s), f"drain {node}",
                            lambda: k8s.drain_node(node), k8s.wait_rolled_out)
        after = placement(k8s)
    assert_no_failure(result, report)
    assert node not in after.values() and len(after) == replicas, f"web pods after draining {node}: {after}"
    report(f"drain {node}: its {len(moving)} app pod(s) {moving} were rescheduled; now {after}")


# -- 5. node failure ---------------------------------------------------------------------------
@pytest.mark.requires("stop_node")
def test_node_failure_the_app_keeps_serving_and_its_pods_are_rescheduled(k8s: KubernetesStage,
                                                                         report: Reporter) -> None:
    limit, spec = k8s.settings.checks.node_loss_seconds, k8s.spec
    replicas = web_template(k8s)["spec"]["replicas"]
    node, lost = chaos_worker(k8s)
    stopped: list[str] = []

    def stop() -> None:
        k8s.stop_node(node)
        stopped.append(node)

    def rescheduled() -> None:
        watch_until(k8s.api.core.list_namespaced_pod, status.ready_off(node, replicas, f"deployment {spec.deployment}"),
                    what=f"{replicas} Ready web pods off the stopped node {node}", timeout=limit,
                    diagnostics=k8s.logs, namespace=k8s.namespace, label_selector=k8s.web_selector())

    def bring_back() -> None:
        if stopped:
            k8s.start_node(node)
        k8s.wait_rolled_out()
        k8s.restart_app()  # spread the replicas over every node again

    with restoring(f"node {node}", bring_back):
        result = under_load(k8s.settings, deployment_of(k8s), f"node {node} stopped", stop, rescheduled,
                            max_seconds=limit + 30)
        after = placement(k8s)
    lost_at, back_at = result.disrupted_at, result.disrupted_at + result.recovered_seconds
    during, later = result.served_between(lost_at, back_at), result.served_between(back_at, result.load.duration)
    never_sent = result.load.reasons.get(OVERLOADED, 0)
    report(f"{result.summary()}; failures allowed: {result.load.failed - never_sent} failed at the app (requests "
           f"routed to the lost pods until their endpoints went), {never_sent} never sent (the load client, its "
           f"workers held by those timeouts); {during} requests served while the node was lost, {later} after; "
           f"{len(lost)} lost pod(s) {lost} rescheduled and Ready {result.recovered_seconds:.1f}s after the stop "
           f"(limit checks.node_loss_seconds = {limit:g}); now {after}", result.figures())
    assert result.covered, "the load ended before the lost pods were rescheduled"
    assert during > 0, f"no request succeeded while node {node} was lost: the app did not keep serving"
    assert later > 0, f"no request succeeded after the lost pods were rescheduled: {result.load.summary()}"
    assert node not in after.values() and len(after) >= replicas, f"web pods after losing {node}: {after}"
