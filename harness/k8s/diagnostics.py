"""What a failed k8s run shows in the test report: pods, events, logs and `kubectl describe`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException

from harness.errors import StageproofError
from harness.k8s.api import Api
from harness.k8s.status import restarts

LOG_LINES = 60


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
