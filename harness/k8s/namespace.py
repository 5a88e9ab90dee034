"""The run's namespace: stageproof creates and labels it, and removes only one it labelled."""

from __future__ import annotations

import base64
import json

from kubernetes import client

from harness.core import ownership
from harness.errors import StageproofError
from harness.k8s import status
from harness.k8s.api import Api
from harness.k8s.watch import watch_until

PART_OF, OURS = ownership.PART_OF


def create_fresh(api: Api, name: str, *, labels: dict[str, str], timeout: float) -> bool:
    """Create namespace `name` (labelled ours), first deleting an earlier run's; refuse a namespace
    stageproof did not make. True when an earlier run's namespace had to go."""
    found = api.core.list_namespace(field_selector=f"metadata.name={name}").items
    if found and (found[0].metadata.labels or {}).get(PART_OF) != OURS:
        raise StageproofError(f"namespace {name!r} exists and is not stageproof's: "
                              "set stages.k8s.namespace to another name")
    if found:
        delete(api, name, wait=True, timeout=timeout)
    metadata = client.V1ObjectMeta(name=name, labels={**labels, PART_OF: OURS})
    api.core.create_namespace(client.V1Namespace(metadata=metadata))
    return bool(found)


def delete_ours(api: Api, name: str, *, timeout: float) -> bool:
    """Delete namespace `name` if stageproof labelled it (a killed run's); True if it did."""
    found = api.core.list_namespace(field_selector=f"metadata.name={name}").items
    if not found or (found[0].metadata.labels or {}).get(PART_OF) != OURS:
        return False
    delete(api, name, wait=True, timeout=timeout)
    return True


def delete(api: Api, name: str, *, wait: bool, timeout: float) -> None:
    """The namespace first, then its pods without their grace period: nobody is served by a namespace
    being removed. In that order, because a terminating namespace admits no new pod, while pods
    deleted first can be recreated by their ReplicaSets and then go with their full grace period
    (the web pods' preStop pause and drain): a kept cluster's reset took 38.1 s that way, 11-12 s so.

    With `wait`, the claims go too once no pod holds them. The namespace controller first acts 5 s
    after a deletion; a claim it finds still held keeps its pvc-protection finalizer, and the
    controller comes back for it only about 5 s later (measured: content remaining at 6.0 s, the
    namespace gone at 11.4 s)."""
    api.core.delete_namespace(name)
    api.core.delete_collection_namespaced_pod(name, grace_period_seconds=0)
    if wait:
        watch_until(api.core.list_namespaced_pod, status.empty(f"pods of namespace {name}"),
                    what=f"the pods of namespace {name} to be deleted", timeout=timeout, namespace=name)
        api.core.delete_collection_namespaced_persistent_volume_claim(name)
        watch_until(api.core.list_namespace, status.gone(name), what=f"namespace {name} to be deleted",
                    timeout=timeout, field_selector=f"metadata.name={name}")


PULL_SECRET = "stageproof-registry"


def add_pull_secret(api: Api, name: str, registry: str, credentials: tuple[str, str], *, timeout: float) -> None:
    """A dockerconfigjson Secret for `registry`, named in the namespace's default ServiceAccount:
    every pod of the team's manifests (unchanged) pulls with it."""
    user, password = credentials
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    config = {"auths": {registry: {"username": user, "password": password, "auth": token}}}
    secret = client.V1Secret(metadata=client.V1ObjectMeta(name=PULL_SECRET, labels={PART_OF: OURS}),
                             type="kubernetes.io/dockerconfigjson",
                             string_data={".dockerconfigjson": json.dumps(config)})
    api.core.create_namespaced_secret(name, secret)
    watch_until(api.core.list_namespaced_service_account, status.exists("default"),
                what=f"service account default in namespace {name}", timeout=timeout, namespace=name,
                field_selector="metadata.name=default")
    api.core.patch_namespaced_service_account("default", name, {"imagePullSecrets": [{"name": PULL_SECRET}]})
