"""The overlay's patches on a team's rendered manifests, which stay unchanged.

harness/k8s/manifests.py renders the team's manifests and writes the run's overlay; this module
computes what that overlay changes and adds, from the render: `imagePullPolicy: IfNotPresent` on
every container, their Namespace (and, for a later release, their Jobs) deleted, the web Service
as a NodePort, the release on the web pod template, node-loss tolerations (and a broken release)
for the web pods, and the objects it adds beside them (an Ingress, a disruption budget). Kept apart
so that rendering and applying stay one thing and the patches another; it imports `Rendered` for
its types only, since manifests.py imports this module.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from harness.config import K8sSettings, Settings
from harness.core import goyaml
from harness.errors import ConfigError
from harness.k8s import disruption
from harness.k8s.web_env import k8s_spec, web_env

if TYPE_CHECKING:
    from harness.k8s.manifests import Rendered

RELEASE_ANNOTATION = "io.stageproof/release"
#: the Ingress the run adds (on a cluster with stageproof's ingress controller)
INGRESS_NAME = "stageproof"
#: where each workload kind keeps its pod spec (JSON pointer)
POD_SPECS = {"Deployment": "/spec/template/spec", "StatefulSet": "/spec/template/spec",
             "DaemonSet": "/spec/template/spec", "ReplicaSet": "/spec/template/spec", "Job": "/spec/template/spec",
             "CronJob": "/spec/jobTemplate/spec/template/spec", "Pod": "/spec"}
Doc = dict[str, Any]


# -- the patches -------------------------------------------------------------------------------
def pull_policy_patches(theirs: Rendered) -> list[Doc]:
    """`imagePullPolicy: IfNotPresent` on every container and init container (JSON 6902 by index)."""
    patches = []
    for doc in theirs.docs:
        ops = [{"op": "add", "path": f"{pointer}/imagePullPolicy", "value": "IfNotPresent"}
               for pointer, _, _ in _containers(doc)]
        if ops:
            patches.append({"target": _target(doc), "patch": goyaml.dump(ops)})
    return patches


def deletions(theirs: Rendered, *, jobs: bool = False) -> list[Doc]:
    """Their Namespace objects go: the stage creates (and labels) the namespace itself. With
    `jobs`, their Jobs too: a later release must not re-apply a Job (its template is immutable,
    and its run is over), and `kubectl apply` leaves the live one alone."""
    kinds = ("Namespace", "Job") if jobs else ("Namespace",)
    return [{"target": _target(doc), "patch": goyaml.dump({"$patch": "delete", "apiVersion": doc["apiVersion"],
                                                               "kind": doc["kind"], "metadata": {"name": _name(doc)}})}
            for doc in theirs.docs if doc.get("kind") in kinds]


def node_port_patch(theirs: Rendered, spec: K8sSettings) -> Doc:
    """The web Service becomes a NodePort on `node_port` (kind publishes it on 127.0.0.1)."""
    service = theirs.named(spec.web_service, ("Service",), key="stages.k8s.service")
    if service.get("spec", {}).get("clusterIP") == "None":
        raise ConfigError(f"stages.k8s.service: Service {spec.web_service!r} is headless (clusterIP: None): "
                          "name the Service that load-balances over the web pods")
    if not service.get("spec", {}).get("ports"):
        raise ConfigError(f"stages.k8s.service: Service {spec.web_service!r} has no ports")
    for other in theirs.docs:
        if other is not service and other.get("kind") == "Service" and any(
                port.get("nodePort") == spec.node_port for port in other.get("spec", {}).get("ports") or []):
            raise ConfigError(f"stages.k8s.node_port: {spec.node_port} is already the nodePort of Service "
                              f"{_name(other)!r}: choose another")
    ops = [{"op": "add", "path": "/spec/type", "value": "NodePort"},
           {"op": "add", "path": "/spec/ports/0/nodePort", "value": spec.node_port}]
    return {"target": _target(service), "patch": goyaml.dump(ops)}


def ingress(theirs: Rendered, spec: K8sSettings, ingress_class: str) -> Doc:
    """An Ingress of `ingress_class` sending every path (`/`, Prefix) to the web Service's first port."""
    service = theirs.named(spec.web_service, ("Service",), key="stages.k8s.service")
    first = (service.get("spec", {}).get("ports") or [{}])[0]
    port = {"name": first["name"]} if first.get("name") else {"number": first.get("port")}
    backend = {"service": {"name": spec.web_service, "port": port}}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": INGRESS_NAME},
            "spec": {"ingressClassName": ingress_class,
                     "rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}]}}


def release_patch(theirs: Rendered, settings: Settings, release: str) -> Doc:
    """The release on the web pod template: an annotation, and `web_env` (the app's run variables,
    e.g. RELEASE_ID, API_TOKEN, or with `env = "app"` all of `[app.env]`) on its first container, by name."""
    spec = k8s_spec(settings)
    web = theirs.named(spec.deployment, ("Deployment",), key="stages.k8s.deployment")
    pod_spec: Doc = {}
    env = web_env(theirs, settings, release)
    containers = web["spec"]["template"]["spec"].get("containers") or []
    if env and containers:
        first = containers[0]
        declared = {entry["name"]: entry for entry in first.get("env") or []}
        entries = [{"name": name, "value": value, **({"valueFrom": None} if "valueFrom" in declared.get(name, {})
                                                     else {})} for name, value in env.items()]
        pod_spec = {"containers": [{"name": first["name"], "env": entries}]}
    patch = {"apiVersion": web["apiVersion"], "kind": "Deployment", "metadata": {"name": spec.deployment},
             "spec": {"template": {"metadata": {"annotations": {RELEASE_ANNOTATION: release}},
                                   **({"spec": pod_spec} if pod_spec else {})}}}
    return {"target": _target(web), "patch": goyaml.dump(patch, sort_keys=False)}


def needs_budget(theirs: Rendered, spec: K8sSettings) -> bool:
    return not disruption.has_budget(theirs.docs, _web(theirs, spec))


def budget(theirs: Rendered, spec: K8sSettings) -> Doc:
    """The disruption budget the run adds for the web pods (when `needs_budget`)."""
    return disruption.budget(_web(theirs, spec))


def web_disruption_patches(theirs: Rendered, spec: K8sSettings, broken_deadline: int | None) -> list[Doc]:
    """Node-loss tolerations on the web pods, and (`broken_deadline`) the broken release."""
    web = _web(theirs, spec)
    ops = disruption.eviction_ops(web, spec.eviction_seconds)
    if broken_deadline is not None:
        ops += disruption.broken_ops(broken_deadline)
    return [{"target": _target(web), "patch": goyaml.dump(ops)}] if ops else []


# -- pieces ------------------------------------------------------------------------------------
def _web(theirs: Rendered, spec: K8sSettings) -> Doc:
    return theirs.named(spec.deployment, ("Deployment",), key="stages.k8s.deployment")


def containers_of(doc: Doc) -> Iterator[tuple[str, str, Doc]]:
    """(JSON pointer, list name, container) of every container and init container of a workload."""
    return _containers(doc)


def _containers(doc: Doc) -> Iterator[tuple[str, str, Doc]]:
    """(JSON pointer, list name, container) of every container and init container of a workload."""
    pointer = POD_SPECS.get(str(doc.get("kind")))
    if pointer is None:
        return
    pod_spec: Any = doc
    for part in pointer.strip("/").split("/"):
        pod_spec = (pod_spec or {}).get(part)
    for field in ("initContainers", "containers"):
        for index, container in enumerate((pod_spec or {}).get(field) or []):
            yield f"{pointer}/{field}/{index}", field, container


def _target(doc: Doc) -> Doc:
    group, _, version = str(doc["apiVersion"]).rpartition("/")
    return {"group": group, "version": version, "kind": doc["kind"], "name": _name(doc)}


def _name(doc: Doc) -> str:
    return str((doc.get("metadata") or {}).get("name", ""))
