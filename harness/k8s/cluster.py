"""Which cluster the k8s stage runs on: a kind cluster it creates (or one a `--keep` run left), or
a kubeconfig context the user names (a team's own cluster is a valid target).

Only a cluster this run created is ever deleted; on any other the stage removes its namespace.
A run owns its kind cluster (or, on a user's context, its namespace) by an OS file lock
(harness/lock.py) from before `kind create` to after the deletion: a second run waits for it,
and a reap never touches a cluster whose owner is alive.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.config import K8sSettings
from harness.core.ownership import OwnerLock
from harness.core.run import run
from harness.core.shield import say, shielded
from harness.errors import ConfigError, StageUnavailable
from harness.k8s import kind, namespace
from harness.k8s.api import connect
from harness.k8s.manifests import Kubectl
from harness.services.registry import NETWORK_LABEL

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
    lock: OwnerLock | None = None

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

    def keep(self) -> None:
        """Left up on purpose: marked kept (the next run reuses it), and no longer ours to hold."""
        if self.kind_cluster is not None:
            self.kind_cluster.mark_kept()
        self.release()

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()

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


def cluster_lock(spec: K8sSettings, *, run_id: str) -> OwnerLock:
    """The lock of what a run owns: the kind cluster by name, or a user's context + namespace."""
    found = user_context(spec)
    key = f"k8s-context-{found[0]}-{spec.namespace}" if found else f"kind-{spec.cluster}"
    return OwnerLock(key, run_id=run_id)


def acquire(spec: K8sSettings, *, run_id: str) -> OwnerLock:
    """This run's ownership, after waiting (up to stages.k8s.lock_timeout) for a live owner."""
    lock = cluster_lock(spec, run_id=run_id)
    waited = lock.acquire(timeout=spec.lock_timeout, say=lambda text: say(f"[stageproof] k8s: {text}"))
    if waited:
        log.info("waited %.0fs for %s", waited, lock.path)
    return lock


def existing_cluster(spec: K8sSettings, *, run_id: str) -> Target:
    found = user_context(spec)
    assert found is not None
    context, kubeconfig, base_url = found
    binary = shutil.which("kubectl")
    if binary is None:
        raise StageUnavailable(f"kubectl is not on PATH (needed for context {context!r})")
    return Target(context, Kubectl(binary, kubeconfig, context), base_url, lock=acquire(spec, run_id=run_id))


def kind_cluster(spec: K8sSettings, *, node_image: str, run_id: str,
                 mirror: kind.RegistryMirror | None = None) -> Target:
    """Own kind cluster `spec.cluster`: reuse it if a run kept it, else create it. Whatever stops
    this half-way (an error, Ctrl-C) deletes what it made and lets go of the cluster."""
    lock = acquire(spec, run_id=run_id)
    cluster = kind.KindCluster(spec.cluster, node_image, run_id=run_id)
    try:
        return _own_kind_cluster(spec, cluster, lock, mirror)
    except BaseException:
        if cluster.created:
            with shielded(f"deleting the half-made kind cluster {spec.cluster}"):
                cluster.delete()
        lock.release()
        raise


def _own_kind_cluster(spec: K8sSettings, cluster: kind.KindCluster, lock: OwnerLock,
                      mirror: kind.RegistryMirror | None) -> Target:
    timings: dict[str, float] = {}
    if not _reusable(cluster):
        cluster.config = kind.render_config(spec.cluster, source=spec.kind_config, nodes=spec.nodes,
                                            node_ports=[spec.node_port, spec.ingress_node_port], mirror=mirror).path
        timings["cluster create"] = cluster.create()
    kubectl = Kubectl(str(cluster.kubectl()), cluster.kubeconfig)
    base_url = f"http://{host_port(spec.cluster, spec.node_port)}"
    ingress_url = f"http://{host_port(spec.cluster, spec.ingress_node_port)}"
    return Target(spec.cluster, kubectl, base_url, cluster, timings, ingress_url, lock)


def _reusable(cluster: kind.KindCluster) -> bool:
    """True for a cluster a run kept (complete: it has its kubeconfig). What a dead owner left
    (we hold the lock now) is deleted first; a cluster stageproof did not make is refused."""
    there = kind.exists(cluster.name)
    if there and not cluster.ours:
        raise StageUnavailable(f"kind cluster {cluster.name!r} exists but was not made by stageproof (no "
                               f"{cluster.kubeconfig}): delete it or set stages.k8s.cluster to another name")
    if there and cluster.kept and cluster.kubeconfig.exists():
        say(f"[stageproof] k8s: reusing kind cluster {cluster.name} (kept by an earlier run)")
        return True
    if there or cluster.ours or _leftover_network(cluster.network):
        say(f"[stageproof] k8s: removing what a killed run left of kind cluster {cluster.name}")
        cluster.created = True  # ours, and its owner is gone
        cluster.delete()
    return False


def delete_leftover(spec: K8sSettings, *, kept: bool = False) -> str | None:
    """Delete kind cluster `spec.cluster` (also half-made) if stageproof made it and its owner is
    gone (nobody holds its lock); one a run kept on purpose only with `kept`. Says what went."""
    leftover = kind.KindCluster(spec.cluster, image="")
    lock = cluster_lock(spec, run_id="reap")
    if not lock.try_acquire():
        log.info("kind cluster %s is in use (%s): not reaped", spec.cluster, lock.holder_text())
        return None
    try:
        if not leftover.ours or (leftover.kept and not kept):
            return None
        complete = kind.exists(spec.cluster) and leftover.kubeconfig.exists()
        what = "kept" if leftover.kept else "complete" if complete else "half-made"
        leftover.created = True  # ours by the marker it left in our cache, and its owner is gone
        leftover.delete()
        return f"kind cluster {spec.cluster} ({what})"
    finally:
        lock.release()


def delete_leftover_namespace(spec: K8sSettings) -> str | None:
    """On a cluster stageproof did not make: only its own namespace (labelled ours), and only
    when no live run owns it (nobody holds its context + namespace lock). Says what went."""
    found = user_context(spec)
    assert found is not None
    context, kubeconfig, _ = found
    lock = cluster_lock(spec, run_id="reap")
    if not lock.try_acquire():
        log.info("namespace %s on %s is in use (%s): not reaped", spec.namespace, context, lock.holder_text())
        return None
    try:
        removed = namespace.delete_ours(connect(kubeconfig, context), spec.namespace, timeout=spec.up_timeout)
        return f"namespace {spec.namespace} on {context}" if removed else None
    finally:
        lock.release()


def _leftover_network(network: str) -> bool:
    """Our cluster's network without the cluster: a killed run's, unless it was made ready for
    the cluster on purpose (a registry listens on its gateway: labelled harness.services.registry.NETWORK_LABEL)."""
    found = run(["docker", "network", "inspect", "--format", "{{json .Labels}}", network], check=False)
    if found.returncode != 0:
        return False
    return NETWORK_LABEL not in (json.loads(found.stdout or "null") or {})


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
