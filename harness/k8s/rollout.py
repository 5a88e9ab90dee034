"""Deployment revisions with the client library: restart, and the equivalent of `rollout undo`.

`kubectl rollout undo` has no API endpoint (apps/v1 dropped the rollback subresource): it copies
the pod template of the previous revision's ReplicaSet back into the Deployment. So does `undo`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from harness.errors import StageproofError
from harness.k8s.api import Api

REVISION = "deployment.kubernetes.io/revision"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
# The generated client defaults every PATCH to JSON Patch: say which kind each body is.
MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def restart(api: Api, namespace: str, name: str) -> None:
    """`kubectl rollout restart`: a new template annotation makes every pod be replaced."""
    now = dt.datetime.now(dt.UTC).isoformat()
    patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}}
    api.apps.patch_namespaced_deployment(name, namespace, patch, _content_type=MERGE_PATCH)


def scale(api: Api, namespace: str, name: str, replicas: int) -> None:
    api.apps.patch_namespaced_deployment_scale(name, namespace, {"spec": {"replicas": replicas}},
                                               _content_type=MERGE_PATCH)


def revisions(api: Api, namespace: str, name: str) -> list[tuple[int, Any]]:
    """(revision, ReplicaSet) of the Deployment `name`, oldest first."""
    deployment = api.apps.read_namespaced_deployment(name, namespace)
    selector = ",".join(f"{key}={value}" for key, value in deployment.spec.selector.match_labels.items())
    owned = [rs for rs in api.apps.list_namespaced_replica_set(namespace, label_selector=selector).items
             if any(ref.uid == deployment.metadata.uid for ref in rs.metadata.owner_references or [])]
    return sorted((int((rs.metadata.annotations or {}).get(REVISION, "0")), rs) for rs in owned)


def undo(api: Api, namespace: str, name: str) -> int:
    """Roll the Deployment back to its previous revision; returns the revision restored."""
    history = revisions(api, namespace, name)
    if len(history) < 2:
        raise StageproofError(f"deployment {name} has no previous revision to roll back to")
    revision, previous = history[-2]
    template = api.apps.api_client.sanitize_for_serialization(previous.spec.template)
    template["metadata"]["labels"].pop("pod-template-hash", None)
    # A JSON merge patch would keep keys the old template lacks; replace the template whole.
    patch = [{"op": "replace", "path": "/spec/template", "value": template}]
    api.apps.patch_namespaced_deployment(name, namespace, patch, _content_type=JSON_PATCH)
    return revision


def cpu_millis(quantity: str) -> int:
    """A CPU quantity (`100m`, `0.5`, `2`) in millicores."""
    return int(quantity[:-1]) if quantity.endswith("m") else round(float(quantity) * 1000)


def with_more_cpu(resources: dict[str, Any], millis: int) -> dict[str, Any]:
    """`resources` (a container's, as data) with its CPU request raised by `millis` (from 0 if unset)."""
    requests = dict(resources.get("requests") or {})
    requests["cpu"] = f"{cpu_millis(str(requests.get('cpu', '0'))) + millis}m"
    return {**resources, "requests": requests}


def set_resources(api: Api, namespace: str, name: str, resources: dict[str, Any]) -> None:
    """Replace the first container's resources in the Deployment's pod template (a new revision)."""
    patch = [{"op": "add", "path": "/spec/template/spec/containers/0/resources", "value": resources}]
    api.apps.patch_namespaced_deployment(name, namespace, patch, _content_type=JSON_PATCH)
