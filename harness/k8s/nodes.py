"""Worker nodes under chaos: which one to take away, drain and uncordon it (kubectl, as an
operator does), stop and start it (on kind a node is a Docker container named like the node).

The chosen worker runs app pods and no database pod: the database's volume pins it to its node,
so losing that node is a database outage, which the database checks measure on their own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from harness.core.run import run
from harness.core.wait import NotYet
from harness.errors import CapabilityMissing
from harness.k8s.api import Api
from harness.k8s.manifests import Kubectl
from harness.k8s.watch import View, watch_until

CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"


def pick_worker(app_nodes: Iterable[str | None], db_nodes: Iterable[str | None],
                control_planes: Iterable[str]) -> str | None:
    """The worker running the most app pods and no database pod (ties: by name); None if none does."""
    excluded = {*control_planes, *db_nodes}
    counts = Counter(node for node in app_nodes if node and node not in excluded)
    return min(counts, key=lambda node: (-counts[node], node)) if counts else None


def control_planes(api: Api) -> set[str]:
    return {node.metadata.name for node in api.core.list_node(label_selector=CONTROL_PLANE_LABEL).items}


def drain(kubectl: Kubectl, node: str, *, timeout: float) -> str:
    """Cordon `node`, then evict its pods through the Eviction API (PodDisruptionBudgets hold)."""
    return kubectl("drain", node, "--ignore-daemonsets", "--delete-emptydir-data", f"--timeout={int(timeout)}s",
                   timeout=timeout + 30)


def uncordon(kubectl: Kubectl, node: str) -> None:
    kubectl("uncordon", node)


def stop(node: str) -> None:
    """Stop the node's container: the node is gone as if powered off (no graceful node shutdown)."""
    _require_container(node)
    run(["docker", "stop", node], timeout=60)


def start(node: str) -> None:
    run(["docker", "start", node], timeout=60)


def wait_ready(api: Api, node: str, *, timeout: float) -> Any:
    """Watch `node` until its kubelet reports Ready again."""
    return watch_until(api.core.list_node, node_ready(node), what=f"node {node} to be Ready",
                       timeout=timeout, field_selector=f"metadata.name={node}")


def node_ready(name: str) -> Callable[[View], Any]:
    def check(view: View) -> Any:
        node = view.get(name)
        ready = [c for c in (node.status.conditions or []) if c.type == "Ready"] if node is not None else []
        if not ready or ready[0].status != "True":
            raise NotYet(f"node {name}: Ready={ready[0].status if ready else 'unknown'}")
        return node

    return check


def _require_container(node: str) -> None:
    if run(["docker", "container", "inspect", node], check=False).returncode != 0:
        raise CapabilityMissing(f"node {node} is not a Docker container on this machine (kind names each node's "
                                "container after it): stageproof can stop only such nodes")


def power_cut(node: str) -> None:
    """`docker kill` of the node's container: its power cut (no shutdown, no kubelet goodbye)."""
    _require_container(node)
    run(["docker", "kill", node], timeout=60)


class ContainerNodes:
    """NodeChaos of a cluster whose nodes are Docker containers here (kind's): drained through the
    Eviction API, stopped (`docker stop`: systemd shuts the node down in order), or their power cut
    (`docker kill`); started again and waited for until Ready."""

    def __init__(self, api: Api, kubectl: Kubectl, *, timeout: float) -> None:
        self._api, self._kubectl, self._timeout = api, kubectl, timeout

    def control_planes(self) -> list[str]:
        return sorted(control_planes(self._api))

    def drain(self, node: str) -> str:
        return drain(self._kubectl, node, timeout=self._timeout)

    def uncordon(self, node: str) -> None:
        uncordon(self._kubectl, node)

    def stop(self, node: str) -> None:
        stop(node)

    def power_cut(self, node: str) -> None:
        power_cut(node)

    def start(self, node: str) -> None:
        start(node)
        wait_ready(self._api, node, timeout=self._timeout)
