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

from harness.checks.common import Reporter, needs, requires, under_load
from harness.checks.k8s import assert_no_failure, per_pod, releases_served, restoring
from harness.config import Settings
from harness.images.build import build_release_image
from harness.k8s import disruption, rollout
from harness.k8s.nodes import pick_worker
from harness.stage import AppCrash, Deployment, NewBuilds, NodeChaos, Workload

__all__ = [  # noqa: RUF022  (in the order they run)
    "test_code_change_is_built_rolled_out_and_served_by_every_pod_without_failure",
    "test_infrastructure_change_rolls_out_without_failure",
    "test_broken_release_is_stopped_by_readiness_and_a_hotfix_goes_out",
    "test_draining_a_worker_loses_no_request_and_its_pods_move",
    "test_node_failure_the_app_keeps_serving_and_its_pods_are_rescheduled",
    "test_a_crashed_app_container_is_restarted_and_the_other_replicas_serve",
]

pytestmark = pytest.mark.slow
MORE_CPU_MILLIS = 50


# -- helpers -----------------------------------------------------------------------------------
@contextmanager
def release_kept(workload: Workload, builds: NewBuilds) -> Iterator[None]:
    """The block may ship other builds and releases; afterwards the stage serves its own again."""
    image, release, releases = workload.image, workload.release, list(workload.releases)

    def back() -> None:
        assert image is not None
        builds.roll_out_image(image, release)
        workload.releases[:] = releases

    with restoring(f"release {release} ({image})", back):
        yield


def placement(workload: Workload) -> dict[str, str]:
    """{pod: node} of the Ready web pods."""
    return {replica.name: replica.node for replica in workload.replicas()}


def chaos_worker(workload: Workload, nodes_: NodeChaos) -> tuple[str, list[str]]:
    """A worker with app pods and without the database, and the app pods it runs."""
    app = placement(workload)
    database = [replica.node for replica in workload.database_replicas(ready_only=False)]
    node = pick_worker(app.values(), database, nodes_.control_planes())
    assert node, (f"no worker runs app pods without the database (app pods: {app}; database on {database}): "
                  "give the app more replicas, or a topology spread over kubernetes.io/hostname")
    return node, sorted(pod for pod, where in app.items() if where == node)


def served_everywhere(workload: Workload, settings: Settings, release: str) -> Callable[[], dict[str, str]]:
    """A recovery probe: every Ready web pod reports `release` and answers the load request."""
    load = settings.checks.load

    def probe() -> dict[str, str]:
        served = releases_served(workload, settings)
        statuses = {pod: answer.status for pod, answer in per_pod(workload, load.path).items()}
        assert set(served.values()) == {release}, f"release per pod: {served}"
        assert set(statuses.values()) == {load.status}, f"{load.method} {load.path} per pod: {statuses}"
        return served

    return probe


# -- 1. developer changes code -----------------------------------------------------------------
@requires(Workload, NewBuilds)
@needs("checks.code_change", "images")
def test_code_change_is_built_rolled_out_and_served_by_every_pod_without_failure(
        workload: Workload, builds: NewBuilds, deployment: Deployment, stageproof_settings: Settings,
        report: Reporter) -> None:
    change, images = stageproof_settings.checks.code_change, stageproof_settings.images
    assert change is not None and images is not None
    before = per_pod(workload, change.path)
    assert not [pod for pod, answer in before.items() if change.contains in answer.body], (
        f"{change.path} contains {change.contains!r} before the change: checks.code_change proves nothing")
    release = f"{workload.release}-code"
    started = time.monotonic()
    image = build_release_image(images.app, release=release, patch=change.patch)
    built = time.monotonic() - started
    ref = builds.deliver(image)  # into the nodes before the load: a rollout, not an image copy, is measured
    loaded = time.monotonic() - started - built
    with release_kept(workload, builds):
        result = under_load(stageproof_settings, deployment, f"code change {image}",
                            lambda: builds.roll_out_image(image, release))
        served = per_pod(workload, change.path)
        running = {replica.name: replica.image for replica in workload.replicas()}
    assert_no_failure(result, report)
    assert set(running.values()) == {ref}, f"image per pod after the rollout: {running}"
    without = {pod: answer.status for pod, answer in served.items() if change.contains not in answer.body}
    assert not without, f"pods whose {change.path} lacks {change.contains!r} (status): {without}"
    report(f"code change: {change.patch.name} built as {image} in {built:.1f}s, delivered to the nodes in "
           f"{loaded:.1f}s; all {len(served)} pods run it and {change.path} contains {change.contains!r}")


# -- 2. developer changes infrastructure --------------------------------------------------------
@requires(Workload)
def test_infrastructure_change_rolls_out_without_failure(workload: Workload, deployment: Deployment,
                                                         stageproof_settings: Settings, report: Reporter) -> None:
    """More CPU requested for the web container: a new revision, rolled out under load."""
    original = workload.template()["spec"]["template"]["spec"]["containers"][0].get("resources") or {}
    changed = rollout.with_more_cpu(original, MORE_CPU_MILLIS)
    what = f"web CPU request {original.get('requests', {}).get('cpu', 'unset')} -> {changed['requests']['cpu']}"
    with restoring("the web resources", lambda: workload.set_resources(original)):
        result = under_load(stageproof_settings, deployment, what, lambda: workload.set_resources(changed))
        requested = {replica.name: replica.cpu_request for replica in workload.replicas()}
    assert_no_failure(result, report)
    assert set(requested.values()) == {changed["requests"]["cpu"]}, f"CPU request per pod: {requested}"
    report(f"infrastructure change: {what}; all {len(requested)} pods run with it")


# -- 4. emergency patching ---------------------------------------------------------------------
@requires(Workload, NewBuilds)
@needs("images")
def test_broken_release_is_stopped_by_readiness_and_a_hotfix_goes_out(workload: Workload, builds: NewBuilds,
                                                                      deployment: Deployment,
                                                                      stageproof_settings: Settings,
                                                                      report: Reporter) -> None:
    settings, images = stageproof_settings, stageproof_settings.images
    spec = settings.stages.k8s
    assert images is not None and spec is not None and workload.image is not None
    web = workload.template()
    replicas, old_release, old_image = web["spec"]["replicas"], workload.release, workload.image
    unavailable = disruption.max_unavailable(web["spec"].get("strategy"), replicas)
    broken, hotfix = f"{old_release}-broken", f"{old_release}-hotfix"
    seen: dict[str, Any] = {}

    def stalled() -> None:
        seen["condition"] = workload.wait_stalled()

    def ship_hotfix() -> None:
        seen["began_at"] = time.monotonic()
        builds.roll_out_image(image, hotfix)
        seen["served"] = served_everywhere(workload, settings, hotfix)()
        seen["served_at"] = time.monotonic()

    with release_kept(workload, builds):
        shipped = under_load(settings, deployment, f"broken release {broken}", lambda: builds.roll_out_image(
            old_image, broken, broken_deadline=spec.progress_deadline_seconds), stalled)
        during = releases_served(workload, settings)
        stuck = [replica.name for replica in workload.replicas(ready_only=False) if replica.release == broken]
        ready_broken = [replica.name for replica in workload.replicas() if replica.release == broken]
        image = build_release_image(images.app, release=hotfix)
        built_at = time.monotonic()
        builds.deliver(image)  # part of "built to served", but not under load: see the code change check
        seen["loaded_at"] = time.monotonic()
        fixed = under_load(settings, deployment, f"hotfix {image}", ship_hotfix)
    report(f"broken release {broken} (the container cannot start; maxUnavailable {unavailable} of {replicas}): "
           f"{seen['condition'].reason}: {seen['condition'].message}; {len(during)} Ready pods kept serving "
           f"{sorted(set(during.values()))}; pods of the broken release: {len(stuck)}, of them Ready: "
           f"{len(ready_broken)}")
    assert_no_failure(shipped, report)
    assert set(during.values()) == {old_release} and len(during) >= replicas - unavailable, during
    assert stuck and not ready_broken, f"pods of the broken release: {stuck}, Ready: {ready_broken}"
    assert_no_failure(fixed, report)
    served_seconds = seen["served_at"] - built_at
    report(f"hotfix: {image} served everywhere ({len(seen['served'])} pods Ready on it and answering) "
           f"{served_seconds:.1f}s after it was built ({seen['loaded_at'] - built_at:.1f}s delivering it to the "
           f"nodes, {seen['began_at'] - seen['loaded_at']:.1f}s the load's baseline before the rollout began)",
           {"hotfix_built_to_served_seconds": round(served_seconds, 3)})


# -- 3. infrastructure improvements: a drain ----------------------------------------------------
@requires(Workload, NodeChaos)
def test_draining_a_worker_loses_no_request_and_its_pods_move(workload: Workload, nodes: NodeChaos,
                                                              deployment: Deployment, stageproof_settings: Settings,
                                                              report: Reporter) -> None:
    web = workload.template()
    blocking = disruption.blocking_spread(web)
    assert not blocking, "the web pods' topology spread would keep a drained node's pods unscheduled: " + \
        "; ".join(blocking)
    replicas = web["spec"]["replicas"]
    assert replicas >= 2, f"{replicas} web replica: draining its node is an outage by design"
    node, moving = chaos_worker(workload, nodes)

    def put_back() -> None:
        nodes.uncordon(node)
        workload.restart()  # spread the replicas over every node again

    with restoring(f"node {node} in service", put_back):
        result = under_load(stageproof_settings, deployment, f"drain {node}", lambda: nodes.drain(node),
                            workload.settled)
        after = placement(workload)
    assert_no_failure(result, report)
    assert node not in after.values() and len(after) == replicas, f"web pods after draining {node}: {after}"
    report(f"drain {node}: its {len(moving)} app pod(s) {moving} were rescheduled; now {after}")


# -- crashes (before node failure: a worker brought back can leave its pods slow for a while) ------
@requires(Workload, AppCrash)
def test_a_crashed_app_container_is_restarted_and_the_other_replicas_serve(workload: Workload, app_crash: AppCrash,
                                                                           deployment: Deployment,
                                                                           stageproof_settings: Settings,
                                                                           report: Reporter) -> None:
    """SIGKILL of one pod's app process through the node's container runtime (no preStop, no SIGTERM):
    the kubelet restarts the container; with more than one replica the others serve meanwhile, so
    failures are allowed only while the killed one is away (plus one request timeout), and at least
    the share of requests the other replicas carry is served."""
    replicas = len(workload.replicas())
    before = {replica.name: replica.restarts for replica in workload.replicas()}
    victim: list[str] = []
    with restoring("the web replicas", workload.settled, only_on_failure=True):
        result = under_load(stageproof_settings, deployment, "app container SIGKILL",
                            lambda: victim.append(app_crash.crash()), app_crash.recover)
    share = (replicas - 1) / replicas * 0.5 if replicas > 1 else 0.0
    verdict = result.node_failure(min_served_share=share)
    restarted = {replica.name: replica.restarts for replica in workload.replicas()}
    report(f"{verdict.summary()}; {victim[0]} restarts {before.get(victim[0])} -> {restarted.get(victim[0])}",
           {**result.figures(), "verdict": verdict.as_dict()})
    assert restarted.get(victim[0], 0) > before.get(victim[0], 0), (
        f"{victim[0]} was not restarted in place after its SIGKILL: {restarted}")
    assert verdict.passed, "app container SIGKILL: " + "; ".join(verdict.problems)


# -- 5. node failure ---------------------------------------------------------------------------
#: how a worker is taken away: an orderly shutdown (`docker stop`: systemd stops the kubelet and the
#: pods), or a power cut (`docker kill`: nothing on the node says goodbye)
NODE_LOSSES = {"stopped": "stop", "powered off": "power_cut"}


@requires(Workload, NodeChaos)
@pytest.mark.parametrize("how", list(NODE_LOSSES))
def test_node_failure_the_app_keeps_serving_and_its_pods_are_rescheduled(how: str, workload: Workload,
                                                                         nodes: NodeChaos, deployment: Deployment,
                                                                         stageproof_settings: Settings,
                                                                         report: Reporter) -> None:
    """A worker with app pods is lost (stopped, or its power cut): failures only while it is lost
    (plus one request timeout to drain), a stated share served meanwhile by the other replicas, its
    pods Ready elsewhere within `checks.node_loss_seconds`."""
    checks = stageproof_settings.checks
    limit = checks.node_loss_seconds
    replicas = workload.template()["spec"]["replicas"]
    node, lost = chaos_worker(workload, nodes)
    taken: list[str] = []

    def take_away() -> None:
        getattr(nodes, NODE_LOSSES[how])(node)
        taken.append(node)

    def bring_back() -> None:
        if taken:
            nodes.start(node)
        workload.settled()
        workload.restart()  # spread the replicas over every node again

    with restoring(f"node {node}", bring_back):
        result = under_load(stageproof_settings, deployment, f"node {node} {how}", take_away,
                            lambda: workload.wait_ready_off(node, replicas, timeout=limit), max_seconds=limit + 30)
        after = placement(workload)
    verdict = result.node_failure(min_served_share=checks.node_loss_min_served_share)
    report(f"{verdict.summary()}; {len(lost)} lost pod(s) {lost} Ready elsewhere {result.recovered_seconds:.1f}s "
           f"after (limit checks.node_loss_seconds = {limit:g}); now {after}",
           {**result.figures(), "verdict": verdict.as_dict()})
    assert result.covered, "the load ended before the lost pods were rescheduled"
    assert node not in after.values() and len(after) >= replicas, f"web pods after losing {node}: {after}"
    assert verdict.passed, f"node {node} {how}: " + "; ".join(verdict.problems)
