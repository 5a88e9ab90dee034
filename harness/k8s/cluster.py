"""Which cluster the k8s stage runs on: a kind cluster it creates (or one a `--keep` run left), or
a kubeconfig context the user names (a team's own cluster is a valid target).

Only a cluster this run created is ever deleted; on any other the stage removes its namespace.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import kind
from harness.config import K8sSettings
from harness.errors import ConfigError, StageUnavailable
from harness.k8s.manifests import Kubectl
from harness.run import run

log = logging.getLogger("stageproof.k8s")


@dataclass
class Target:
    """A cluster ready for `kubectl`/API calls, and where its app NodePort answers on the host
    (and its ingress controller's, on a kind cluster: only there does stageproof install add-ons)."""

    name: str
    kubectl: Kubectl
    base_url: str
    kind_cluster: kind.KindCluster | None = None
    timings: dict[str, float] = field(default_factory=dict)
    ingress_url: str | None = None

    @property
    def created(self) -> bool:
        return self.kind_cluster is not None and self.kind_cluster.created

    def load_images(self, refs: list[str]) -> None:
        """`kind load docker-image` (kind skips images the nodes already hold); a user's own
        cluster must be able to pull them itself."""
        if self.kind_cluster is None:
            log.info("not a kind cluster: %s must be pullable by %s", ", ".join(refs), self.name)
            return
        started = time.monotonic()
        self.kind_cluster.load_images(refs)
        self.timings["image load"] = time.monotonic() - started

    def delete(self) -> None:
        if self.kind_cluster is not None:
            self.kind_cluster.delete()

    def logs(self) -> str:
        return self.kind_cluster.logs() if self.kind_cluster is not None else ""


def user_context(spec: K8sSettings) -> tuple[str, Path | None, str] | None:
    """(context, kubeconfig, base_url) when the user points at an existing cluster (the file, or
    $STAGEPROOF_K8S_CONTEXT and friends through harness/config.py), else None."""
    context = spec.context
    if not context:
        return None
    base_url = spec.base_url
    if not base_url:
        raise ConfigError(f"stages.k8s.context={context!r} needs stages.k8s.base_url ($STAGEPROOF_K8S_BASE_URL): "
                          "where the app's Service answers from this machine, e.g. http://127.0.0.1:8080")
    kubeconfig = spec.kubeconfig
    return context, Path(kubeconfig).expanduser() if kubeconfig else None, base_url.rstrip("/")


def existing_cluster(spec: K8sSettings) -> Target:
    found = user_context(spec)
    assert found is not None
    context, kubeconfig, base_url = found
    binary = shutil.which("kubectl")
    if binary is None:
        raise StageUnavailable(f"kubectl is not on PATH (needed for context {context!r})")
    return Target(context, Kubectl(binary, kubeconfig, context), base_url)


def kind_cluster(spec: K8sSettings, *, node_image: str, mirror: kind.RegistryMirror | None = None) -> Target:
    """Reuse the kind cluster `spec.cluster` if it exists (a `--keep` run left it), else create it."""
    cluster = kind.KindCluster(spec.cluster, node_image)
    target_timings: dict[str, float] = {}
    if kind.exists(spec.cluster):
        if not cluster.kubeconfig.exists():
            raise StageUnavailable(f"kind cluster {spec.cluster!r} exists but was not made by stageproof (no "
                                   f"{cluster.kubeconfig}): delete it or set stages.k8s.cluster to another name")
        log.info("reusing kind cluster %s", spec.cluster)
    else:
        cluster.config = kind.render_config(spec.cluster, source=spec.kind_config, nodes=spec.nodes,
                                            node_ports=[spec.node_port, spec.ingress_node_port], mirror=mirror).path
        target_timings["cluster create"] = cluster.create()
    kubectl = Kubectl(str(cluster.kubectl()), cluster.kubeconfig)
    base_url = f"http://{host_port(spec.cluster, spec.node_port)}"
    ingress_url = f"http://{host_port(spec.cluster, spec.ingress_node_port)}"
    return Target(spec.cluster, kubectl, base_url, cluster, target_timings, ingress_url)


def delete_leftover(spec: K8sSettings) -> bool:
    """Delete kind cluster `spec.cluster` if it exists and stageproof made it (its kubeconfig is ours)."""
    leftover = kind.KindCluster(spec.cluster, image="")
    if not kind.exists(spec.cluster) or not leftover.kubeconfig.exists():
        return False
    leftover.created = True  # ours by the kubeconfig it left in our cache
    leftover.delete()
    return True


def host_port(cluster: str, node_port: int) -> str:
    """`127.0.0.1:<port>` that the control-plane container publishes for `node_port`."""
    published = run(["docker", "port", f"{cluster}-control-plane", f"{node_port}/tcp"]).stdout.split()
    loopback = [address for address in published if address.startswith("127.0.0.1:")]
    if not loopback:
        raise StageUnavailable(f"kind cluster {cluster!r} publishes no 127.0.0.1 port for NodePort {node_port} "
                               f"(got {published}): it was made with another stages.k8s.node_port or kind "
                               f"config: `stageproof down --stage k8s` removes it")
    return loopback[0]


def image_sizes(refs: list[str]) -> dict[str, int]:
    """{ref: bytes} of local Docker images (`docker image inspect --format '{{.Size}}'`, one call)."""
    if not refs:
        return {}
    sizes = run(["docker", "image", "inspect", "--format", "{{.Size}}", *refs]).stdout.split()
    return {ref: int(size) for ref, size in zip(refs, sizes, strict=True)}
