"""The cluster add-ons on a kind cluster stageproof made (harness/images/addons.py builds them):
a NetworkPolicy engine, so the team's policies bite, and Traefik, so the app is also served
through an Ingress as production serves it. A cluster the user names keeps its own: nothing is
installed there.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from harness.k8s import status
from harness.k8s.api import Api
from harness.k8s.manifests import Kubectl
from harness.k8s.watch import watch_until

#: (namespace, name) of what `addon_manifests()` installs
ENGINE = ("kube-system", "kube-network-policies")
INGRESS_CONTROLLER = ("stageproof-ingress", "traefik")
INGRESS_CLASS = "traefik"


def images() -> list[str]:
    """The add-on images, built once and cached (a second call reads two labels)."""
    from harness.images.addons import ensure_addon_images  # heavy: only when the stage really runs

    return list(ensure_addon_images().values())


def apply(kubectl: Kubectl, *, ingress_node_port: int) -> None:
    """`kubectl apply` both add-ons. Their images are in the node image (or loaded by the provider)
    already, so their pods start while the run delivers the app's images; `wait_ready` then waits."""
    from harness.images.addons import addon_manifests

    with tempfile.TemporaryDirectory(prefix="stageproof-addons-") as tmp:
        path = Path(tmp) / "addons.yaml"
        path.write_text(addon_manifests(ingress_node_port=ingress_node_port))
        kubectl("apply", "-f", str(path))


def wait_ready(api: Api, *, timeout: float, diagnostics: Callable[[], str]) -> None:
    """Wait (watch) until the engine runs Ready on every node and the ingress controller has rolled out."""
    namespace, name = ENGINE
    nodes = len(api.core.list_node().items)  # its pods first: an image a node lacks fails at once, not at the timeout
    watch_until(api.core.list_namespaced_pod, status.pods_settled(nodes, f"daemonset {namespace}/{name}"),
                what=f"the NetworkPolicy engine's pods (daemonset {namespace}/{name}), one Ready on each of {nodes} "
                     "nodes", timeout=timeout, diagnostics=diagnostics, namespace=namespace,
                label_selector=f"app={name}")
    watch_until(api.apps.list_namespaced_daemon_set, status.daemon_set_ready(name),
                what=f"the NetworkPolicy engine (daemonset {namespace}/{name}) on every node", timeout=timeout,
                diagnostics=diagnostics, namespace=namespace, field_selector=f"metadata.name={name}")
    namespace, name = INGRESS_CONTROLLER
    watch_until(api.apps.list_namespaced_deployment, status.rolled_out(name),
                what=f"the ingress controller (deployment {namespace}/{name})", timeout=timeout,
                diagnostics=diagnostics, namespace=namespace, field_selector=f"metadata.name={name}")


def diagnostics(kubectl: Kubectl) -> str:
    """The add-ons' pods and recent logs, for a report when they do not come up."""
    parts = []
    for namespace, name in (ENGINE, INGRESS_CONTROLLER):
        parts.append(kubectl("get", "pods", "-n", namespace, "-o", "wide", check=False))
        parts.append(kubectl("logs", "-n", namespace, f"--selector=app={name}", "--tail=40", "--prefix",
                             check=False))
    return "\n".join(parts)


def node_summary(api: Api, cluster: str) -> str:
    """`cluster <name>: 3 nodes (1 control plane, 2 workers)`, from the Node objects."""
    nodes = api.core.list_node().items
    control = sum("node-role.kubernetes.io/control-plane" in (node.metadata.labels or {}) for node in nodes)
    workers = len(nodes) - control
    return (f"cluster {cluster}: {len(nodes)} node{'s' if len(nodes) != 1 else ''} "
            f"({control} control plane, {workers} worker{'s' if workers != 1 else ''})")
