"""Conditions for `watch_until`: each takes the live view {name: object} and returns a result,
raises `NotYet(reason)`, or raises `ResourceFailed` when waiting longer cannot help."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.core.wait import NotYet
from harness.errors import StageproofError
from harness.k8s.watch import View

# Container states that never heal by themselves (a missing image, a broken config or crashes).
HOPELESS = {"CrashLoopBackOff", "ErrImageNeverPull", "ErrImagePull", "ImagePullBackOff", "InvalidImageName",
            "CreateContainerConfigError", "CreateContainerError", "RunContainerError"}


class ResourceFailed(StageproofError):
    """A Kubernetes object reached a state that waiting will not fix (failed Job, crash loop)."""


def is_ready(pod: Any) -> bool:
    return pod.metadata.deletion_timestamp is None and any(
        c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


def restarts(pod: Any) -> int:
    return sum(c.restart_count for c in (pod.status.container_statuses or []))


def rolled_out(name: str) -> Callable[[View], Any]:
    """`kubectl rollout status`: every replica updated and available, no old replica left."""

    def check(view: View) -> Any:
        deployment = view.get(name)
        if deployment is None:
            raise NotYet(f"deployment {name} does not exist")
        want, status = deployment.spec.replicas, deployment.status
        if (status.observed_generation or 0) < deployment.metadata.generation:
            raise NotYet(f"deployment {name}: the controller has not seen generation {deployment.metadata.generation}")
        for condition in status.conditions or []:
            if condition.type == "Progressing" and condition.reason == "ProgressDeadlineExceeded":
                raise ResourceFailed(f"deployment {name} stalled: {condition.message}")
        updated, current, available = (status.updated_replicas or 0, status.replicas or 0,
                                       status.available_replicas or 0)
        if updated < want or current > updated or available < want:
            raise NotYet(f"deployment {name}: {updated}/{want} updated, {current} current, {available} available")
        return deployment

    return check


def daemon_set_ready(name: str) -> Callable[[View], Any]:
    """Every node the DaemonSet should run on runs its current pod, Ready."""

    def check(view: View) -> Any:
        daemon_set = view.get(name)
        if daemon_set is None:
            raise NotYet(f"daemonset {name} does not exist")
        status = daemon_set.status
        if (status.observed_generation or 0) < daemon_set.metadata.generation:
            raise NotYet(f"daemonset {name}: the controller has not seen generation {daemon_set.metadata.generation}")
        want, ready, updated = (status.desired_number_scheduled or 0, status.number_ready or 0,
                                status.updated_number_scheduled or 0)
        if want == 0 or ready < want or updated < want:
            raise NotYet(f"daemonset {name}: {ready}/{want} Ready, {updated} updated")
        return daemon_set

    return check


def pods_settled(count: int, what: str) -> Callable[[View], list[Any]]:
    """Exactly `count` pods, all Ready, none terminating (a scale-down or rollout has drained)."""

    def check(view: View) -> list[Any]:
        pods = sorted(view.values(), key=lambda pod: pod.metadata.name)
        _raise_if_hopeless(pods)
        terminating = sum(pod.metadata.deletion_timestamp is not None for pod in pods)
        ready = sum(is_ready(pod) for pod in pods)
        if terminating or ready != count or len(pods) != count:
            raise NotYet(f"{what}: {ready}/{count} Ready, {len(pods)} pods, {terminating} terminating")
        return pods

    return check


def job_complete(name: str) -> Callable[[View], Any]:
    def check(view: View) -> Any:
        job = view.get(name)
        if job is None:
            raise NotYet(f"job {name} does not exist")
        for condition in job.status.conditions or []:
            if condition.status != "True":
                continue
            if condition.type == "Complete":
                return job
            if condition.type == "Failed":
                raise ResourceFailed(f"job {name} failed: {condition.reason}: {condition.message}")
        raise NotYet(f"job {name}: {job.status.active or 0} active, {job.status.failed or 0} failed pod(s)")

    return check


def exists(name: str) -> Callable[[View], Any]:
    """`name` is in the view (e.g. a ServiceAccount its controller creates)."""
    def check(view: View) -> Any:
        if name not in view:
            raise NotYet(f"{name} not created yet")
        return view[name]
    return check


def gone(name: str) -> Callable[[View], None]:
    def check(view: View) -> None:
        if name in view:
            raise NotYet(f"{name} still exists")

    return check


def empty(what: str) -> Callable[[View], None]:
    """Nothing is left in the view (e.g. a namespace's pods)."""
    def check(view: View) -> None:
        if view:
            raise NotYet(f"{what} still there: {sorted(view)}")

    return check


def pods_replaced(old_uid: str, count: int, what: str) -> Callable[[View], list[Any]]:
    """The pod `old_uid` is gone and `count` pods are Ready again, none terminating: a deleted pod
    was re-created (same name by a StatefulSet, a new name by a Deployment)."""
    settled = pods_settled(count, what)

    def check(view: View) -> list[Any]:
        if any(pod.metadata.uid == old_uid for pod in view.values()):
            raise NotYet(f"{what}: the deleted pod is still there")
        return settled(view)

    return check


def progress_deadline_exceeded(name: str) -> Callable[[View], Any]:
    """The Deployment's controller gave up on its rollout: the Progressing condition says so."""

    def check(view: View) -> Any:
        deployment = view.get(name)
        conditions = (deployment.status.conditions or []) if deployment is not None else []
        for condition in conditions:
            if condition.type == "Progressing" and condition.reason == "ProgressDeadlineExceeded":
                return condition
        progressing = [f"{c.reason}: {c.message}" for c in conditions if c.type == "Progressing"]
        raise NotYet(f"deployment {name}: {progressing or 'no Progressing condition'}")

    return check


def ready_off(node: str, count: int, what: str) -> Callable[[View], list[Any]]:
    """At least `count` Ready pods on nodes other than `node` (a lost node's pods rescheduled)."""

    def check(view: View) -> list[Any]:
        elsewhere = [pod for pod in view.values() if is_ready(pod) and pod.spec.node_name != node]
        if len(elsewhere) < count:
            raise NotYet(f"{what}: {len(elsewhere)}/{count} Ready off node {node}")
        return sorted(elsewhere, key=lambda pod: pod.metadata.name)

    return check


def label_selector(selector: Any) -> str:
    """A `V1LabelSelector` as the `label_selector` string the list calls take."""
    terms = [f"{key}={value}" for key, value in sorted((selector.match_labels or {}).items())]
    for expression in selector.match_expressions or []:
        values = ",".join(expression.values or [])
        terms.append({"In": f"{expression.key} in ({values})", "NotIn": f"{expression.key} notin ({values})",
                      "Exists": expression.key, "DoesNotExist": f"!{expression.key}"}[expression.operator])
    return ",".join(terms)


def _raise_if_hopeless(pods: list[Any]) -> None:
    """A crash-looping pod on its way out (a broken release replaced) is no reason to stop waiting."""
    for pod in pods:
        if pod.metadata.deletion_timestamp is not None:
            continue
        for status in pod.status.container_statuses or []:
            waiting = status.state.waiting if status.state else None
            if waiting is not None and waiting.reason in HOPELESS:
                raise ResourceFailed(f"pod {pod.metadata.name}: container {status.name} is {waiting.reason}: "
                                     f"{waiting.message or ''}")
