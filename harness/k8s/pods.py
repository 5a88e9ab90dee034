"""One-off workloads and per-pod reads: re-running a Job, a probe pod, GET on one pod.

Per-pod reads go through the API server's pod proxy (the client's equivalent of a port-forward):
they reach one chosen pod, Ready or not, and are only ever used for read-only checks, never
for chaos traffic (that goes through the Service, which survives the loss of a pod).
"""

from __future__ import annotations

import secrets
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from harness.core.wait import NotYet
from harness.k8s.api import Api
from harness.k8s.status import job_complete
from harness.k8s.views import Answer
from harness.k8s.watch import watch_until

JOB_LABELS_SET_BY_KUBERNETES = ("controller-uid", "batch.kubernetes.io/controller-uid", "job-name",
                                "batch.kubernetes.io/job-name")


def pod_get(api: Api, namespace: str, pod: str, port: int, path: str) -> Answer:
    """GET `path` on `pod:port` through the API server's pod proxy; the body byte for byte, except
    that the proxy rewrites absolute links in HTML to go through itself: that prefix is taken out
    again, so every pod's page reads as the app wrote it."""
    try:
        response = api.core.connect_get_namespaced_pod_proxy_with_path(f"{pod}:{port}", namespace, path.lstrip("/"),
                                                                        _preload_content=False)
    except ApiException as err:
        return Answer(err.status or 0, _text(err.body))
    proxy_prefix = f"/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy"
    return Answer(response.status, _text(response.data).replace(proxy_prefix, ""))


def _text(body: object) -> str:
    return body.decode(errors="replace") if isinstance(body, bytes) else str(body or "")


def copy_job(api: Api, namespace: str, name: str, *, suffix: str | None = None) -> str:
    """Create a new Job with the pod template of Job `name` (`kubectl create job --from`-like)."""
    original = api.batch.read_namespaced_job(name, namespace)
    template = api.batch.api_client.sanitize_for_serialization(original.spec.template)
    labels = template.get("metadata", {}).get("labels", {})
    for key in JOB_LABELS_SET_BY_KUBERNETES:
        labels.pop(key, None)
    copy_name = f"{name}-{suffix or secrets.token_hex(3)}"
    body = {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": copy_name, "labels": original.metadata.labels or {}},
            "spec": {"backoffLimit": original.spec.backoff_limit,
                     "activeDeadlineSeconds": original.spec.active_deadline_seconds, "template": template}}
    api.batch.create_namespaced_job(namespace, client.V1Job.from_dict(body))
    return copy_name


def delete_job(api: Api, namespace: str, name: str) -> None:
    """Delete Job `name` and its pods (a re-run's copy, once its check is done)."""
    try:
        api.batch.delete_namespaced_job(name, namespace, propagation_policy="Background")
    except ApiException as err:
        if err.status != 404:
            raise


def run_job(api: Api, namespace: str, name: str, *, timeout: float) -> str:
    """Wait (watch) for Job `name` to complete; return the log of its last pod."""
    watch_until(api.batch.list_namespaced_job, job_complete(name), what=f"job {name} to complete",
                timeout=timeout, namespace=namespace, field_selector=f"metadata.name={name}")
    pods = api.core.list_namespaced_pod(namespace, label_selector=f"job-name={name}").items
    pods.sort(key=lambda pod: pod.metadata.creation_timestamp)
    return api.core.read_namespaced_pod_log(pods[-1].metadata.name, namespace) if pods else ""


def run_probe_pod(api: Api, namespace: str, *, image: str, labels: dict[str, str], script: str,
                  timeout: float) -> tuple[bool, str]:
    """Run `python -c script` in a short-lived pod labelled `labels`; (succeeded, its log)."""
    name = f"probe-{secrets.token_hex(3)}"
    pod = _probe_pod(name, image, labels, script)
    api.core.create_namespaced_pod(namespace, pod)
    try:
        phase = watch_until(api.core.list_namespaced_pod, _finished(name), what=f"probe pod {name} to finish",
                            timeout=timeout, namespace=namespace, field_selector=f"metadata.name={name}")
        return phase == "Succeeded", api.core.read_namespaced_pod_log(name, namespace).strip()
    finally:
        api.core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)


def _probe_pod(name: str, image: str, labels: dict[str, str], script: str) -> client.V1Pod:
    """As locked down as the app's own pods, so it runs wherever they may."""
    security = client.V1SecurityContext(allow_privilege_escalation=False, read_only_root_filesystem=True,
                                        capabilities=client.V1Capabilities(drop=["ALL"]))
    container = client.V1Container(name="probe", image=image, image_pull_policy="IfNotPresent",
                                   command=["python", "-c", script], security_context=security)
    spec = client.V1PodSpec(restart_policy="Never", containers=[container], automount_service_account_token=False,
                            security_context=client.V1PodSecurityContext(
                                run_as_non_root=True, run_as_user=10001,
                                seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault")))
    return client.V1Pod(metadata=client.V1ObjectMeta(name=name, labels=labels), spec=spec)


def _finished(name: str) -> Any:
    def check(view: dict[str, Any]) -> str:
        pod = view.get(name)
        phase = pod.status.phase if pod is not None and pod.status else None
        if phase not in ("Succeeded", "Failed"):
            raise NotYet(f"probe pod {name} is {phase}")
        return str(phase)

    return check
