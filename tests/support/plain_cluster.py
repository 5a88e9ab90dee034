"""One plain kind cluster from our node image, shared by the k8s session's tests that need a cluster
of their own rather than the stage's: the node image's checks and the Helm tool's.

It is made the way `render_config` writes a default kind config (one node, plus
STAGEPROOF_KIND_WORKERS workers), with CHECK_NODE_PORT published on 127.0.0.1. One `kind create`
for both (about 25 s each in the k8s session, issue 18); the node image's last check deletes it
and checks that nothing is left, and the fixture deletes it at the end in any case.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from kubernetes import client, config

from harness.core.wait import NotYet, wait_until
from harness.images.kind_node_recipe import load_versions
from harness.k8s.kind import KindCluster
from harness.k8s.kind_config import RenderedConfig, render_config

CHECK_NODE_PORT = 30081  # published on 127.0.0.1 by the cluster's kind config


@dataclass
class PlainCluster:
    kind: KindCluster
    ports: RenderedConfig
    core: client.CoreV1Api
    api_client: client.ApiClient
    #: the Debian toolbox image that is in the node already (nothing can be pulled)
    image: str


@contextmanager
def plain_cluster(node_image: str, *, workers: int = 0) -> Iterator[PlainCluster]:
    """A new cluster of `node_image`, Ready down to CoreDNS and kube-proxy; deleted afterwards."""
    name = f"sp-node-{uuid.uuid4().hex[:6]}"
    ports = render_config(name, nodes=1 + workers, node_ports=[CHECK_NODE_PORT])
    kind = KindCluster(name, node_image, ports.path)
    try:
        started = time.monotonic()
        seconds = kind.create()
        print(f"[kind-node] kind create cluster {name} --wait: {seconds:.1f}s (control plane Ready)")
        api_client = config.new_client_from_config(config_file=str(kind.kubeconfig))  # type: ignore[no-untyped-call]
        core = client.CoreV1Api(api_client)
        wait_until(lambda: _all_nodes_ready(core), what="every node Ready", timeout=180, diagnostics=kind.logs)
        print(f"[kind-node] all nodes Ready {time.monotonic() - started:.1f}s after create started")
        # "Ready" nodes are not a ready cluster: CoreDNS and kube-proxy may lag them.
        wait_until(lambda: _cluster_dns_ready(core), what="CoreDNS endpoints and kube-proxy on every node",
                   timeout=180, diagnostics=kind.logs)
        print(f"[kind-node] cluster DNS ready {time.monotonic() - started:.1f}s after create started")
        yield PlainCluster(kind, ports, core, api_client, load_versions().toolbox_image)
    finally:
        kind.delete()  # a no-op once the node image's last check deleted it


def _all_nodes_ready(core: client.CoreV1Api) -> None:
    for node in core.list_node().items:
        if not any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or []):
            raise NotYet(f"node {node.metadata.name} not Ready")


def _cluster_dns_ready(core: client.CoreV1Api) -> None:
    endpoints = core.read_namespaced_endpoints("kube-dns", "kube-system")
    if not any(subset.addresses for subset in endpoints.subsets or []):
        raise NotYet("the kube-dns Service has no ready CoreDNS endpoint yet")
    proxy = client.AppsV1Api(core.api_client).read_namespaced_daemon_set("kube-proxy", "kube-system").status
    if not proxy.desired_number_scheduled or proxy.number_ready != proxy.desired_number_scheduled:
        raise NotYet(f"kube-proxy ready on {proxy.number_ready} of {proxy.desired_number_scheduled} nodes")
