"""What a failed k8s run shows in the test report: first its cause in one line (`first_cause`: the pod
that is not Ready, its state and its last log line), then pods, events, logs and `kubectl describe`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException

from harness.errors import StageproofError
from harness.k8s.api import Api
from harness.k8s.status import restarts

LOG_LINES = 60
#: container states that say why a pod is not Ready (a plain ContainerCreating says nothing yet)
TELLING = {"CrashLoopBackOff", "Error", "ErrImagePull", "ErrImageNeverPull", "ImagePullBackOff", "InvalidImageName",
           "CreateContainerConfigError", "CreateContainerError", "RunContainerError", "OOMKilled"}


def first_cause(api: Api, namespace: str, selector: str | None = None) -> str | None:
    """One line for the first pod (of `selector`) that is not Ready for a telling reason: its
    container's state and the last line its app logged (`pod web-x CrashLoopBackOff: last log line:
    Can't connect to MySQL server on '10.98.19.211'`), or why it is not scheduled. None if none is."""
    try:
        pods = api.core.list_namespaced_pod(namespace, **({"label_selector": selector} if selector else {})).items
    except ApiException:
        return None
    for pod in sorted(pods, key=lambda pod: pod.metadata.name):
        if pod.metadata.deletion_timestamp is not None:
            continue
        for status in [*(pod.status.init_container_statuses or []), *(pod.status.container_statuses or [])]:
            reason, previous = _telling_state(status)
            if reason is not None:
                line = _last_line(api, namespace, pod.metadata.name, status.name, previous)
                return f"pod {pod.metadata.name} {reason}: last log line: {line}"
        unscheduled = [condition.message for condition in pod.status.conditions or []
                       if condition.type == "PodScheduled" and condition.status == "False"]
        if unscheduled:
            return f"pod {pod.metadata.name} Pending: {unscheduled[0]}"
    return None


def _telling_state(status: Any) -> tuple[str | None, bool]:
    """(the reason, whether the log to read is the previous instance's) of a container that is not running well."""
    state = status.state
    if state is None:
        return None, False
    if state.waiting is not None and state.waiting.reason in TELLING:
        return state.waiting.reason, bool(status.restart_count)
    if state.terminated is not None and state.terminated.exit_code:
        return f"{state.terminated.reason or 'Error'} (exit {state.terminated.exit_code})", False
    return None, False


def _last_line(api: Api, namespace: str, pod: str, container: str, previous: bool) -> str:
    try:
        text = str(api.core.read_namespaced_pod_log(pod, namespace, container=container, previous=previous,
                                                    tail_lines=20))
    except ApiException as err:
        return f"(no log: {err.reason})"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(empty log)"


def collect(api: Api, namespace: str, describe: Callable[[], str] | None = None) -> str:
    """Everything worth reading after a failure; each part survives the others failing."""
    parts = [("pods", lambda: pod_table(api, namespace)), ("events", lambda: events(api, namespace)),
             ("logs", lambda: pod_logs(api, namespace))]
    if describe is not None:
        parts.append(("kubectl describe", describe))
    return "\n".join(f"--- {title} ({namespace}) ---\n{_safe(part)}" for title, part in parts)


def pod_table(api: Api, namespace: str) -> str:
    rows = []
    for pod in api.core.list_namespaced_pod(namespace).items:
        gone = " terminating" if pod.metadata.deletion_timestamp else ""
        rows.append(f"{pod.metadata.name:<32} {pod.status.phase:<10} restarts={restarts(pod)}{gone} "
                    f"{_container_states(pod)}")
    return "\n".join(rows) or "(no pods)"


def events(api: Api, namespace: str, *, last: int = 40) -> str:
    items = api.core.list_namespaced_event(namespace).items
    items.sort(key=lambda e: e.last_timestamp or e.event_time or e.metadata.creation_timestamp)
    return "\n".join(f"{e.type:<7} {e.involved_object.kind}/{e.involved_object.name}: {e.reason}: {e.message}"
                     for e in items[-last:]) or "(no events)"


def pod_logs(api: Api, namespace: str) -> str:
    """The last lines of every container, and of its previous instance when it restarted."""
    out = []
    for pod in api.core.list_namespaced_pod(namespace).items:
        for status in pod.status.container_statuses or []:
            for previous in (False, True) if status.restart_count else (False,):
                label = f"{pod.metadata.name}/{status.name}{' (previous)' if previous else ''}"
                out.append(f"[{label}]\n{_log(api, namespace, pod.metadata.name, status.name, previous)}")
    return "\n".join(out) or "(no containers)"


def _log(api: Api, namespace: str, pod: str, container: str, previous: bool) -> str:
    try:
        return str(api.core.read_namespaced_pod_log(pod, namespace, container=container, previous=previous,
                                                    tail_lines=LOG_LINES)).rstrip()
    except ApiException as err:
        return f"(no log: {err.reason})"


def _container_states(pod: Any) -> str:
    states = []
    for status in pod.status.container_statuses or []:
        state = status.state
        if state.waiting:
            states.append(f"{status.name}=waiting:{state.waiting.reason}")
        elif state.terminated:
            states.append(f"{status.name}=terminated:{state.terminated.reason}({state.terminated.exit_code})")
        else:
            states.append(f"{status.name}={'ready' if status.ready else 'running'}")
    return " ".join(states)


def _safe(part: Callable[[], str]) -> str:
    try:
        return part()
    except (ApiException, StageproofError, OSError) as err:
        return f"(could not collect: {err})"
