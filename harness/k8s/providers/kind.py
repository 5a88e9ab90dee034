"""stageproof's own kind cluster: created (or reused when a run kept it), owned by a lock for the run,
deleted at the end unless kept. Only here does stageproof install its add-ons and an Ingress, load
images with `kind load`, and take nodes away (a kind node is a Docker container named like the node).

A run owns its cluster by an OS file lock (harness/core/ownership.py) from before `kind create` to
after the deletion: a second run waits for it, and a reap never touches a cluster whose owner lives.
The cluster is marked stageproof's (harness/k8s/kind.py) before `kind create`, so a half-made one is
still known as ours.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence

from harness.config import K8sSettings, Settings, environment
from harness.core.cache import recipe_hash
from harness.core.ownership import OwnerLock
from harness.core.run import run
from harness.core.shield import say, shielded
from harness.errors import StageUnavailable
from harness.k8s import kind, kind_config
from harness.k8s.manifests import Kubectl
from harness.k8s.providers import ClusterAccess, ClusterProvider, ProviderInfo, push_to_registry, registry_mode
from harness.services.registry import NETWORK_LABEL

log = logging.getLogger("stageproof.k8s")


class KindProvider(ClusterProvider):
    """`stages.k8s.cluster`, a kind cluster of `stages.k8s.nodes` nodes with NodePorts on 127.0.0.1."""

    def __init__(self, settings: Settings, *, run_id: str) -> None:
        super().__init__(settings, run_id=run_id)
        self._cluster: kind.KindCluster | None = None
        self._lock: OwnerLock | None = None
        self._fit = ""

    def info(self) -> ProviderInfo:
        chaos = "[stages.k8s] node_chaos = false" if self.spec.node_chaos is False else None
        return ProviderInfo(self.spec.cluster, ours=True, node_chaos_withheld=chaos)

    @property
    def reuse(self) -> bool:
        """Keep the cluster for the next run: `stages.k8s.reuse`, by default on a laptop, not in CI."""
        return self.spec.reuse if self.spec.reuse is not None else not environment().ci

    def provision(self) -> ClusterAccess:
        node_image = self._node_image()
        self._lock = acquire(self.spec, run_id=self.run_id)
        self._cluster = kind.KindCluster(self.spec.cluster, node_image, run_id=self.run_id)
        self._fit = self._fit_of(node_image)
        try:
            if not self._reusable(self._cluster, self._fit):
                self._cluster.config = kind_config.render_config(
                    self.spec.cluster, source=self.spec.kind_config, nodes=self.spec.nodes,
                    node_ports=[self.spec.node_port, self.spec.ingress_node_port], mirror=self._mirror(),
                    node_lost_seconds=self.spec.node_lost_seconds or None).path
                self.timings["cluster create"] = self._cluster.create()
            else:
                self.timings["cluster reused"] = 0.0
            if registry_mode(self.settings) is not None:  # the pulled node image holds no add-ons: load them
                from harness.k8s import addons

                self._cluster.load_images(addons.images(), everywhere=True)  # DaemonSets: the control plane too
            kubectl = Kubectl(str(self._cluster.kubectl()), self._cluster.kubeconfig)
            name = self.spec.cluster
            return ClusterAccess(name, kubectl, f"http://{host_port(name, self.spec.node_port)}",
                                 f"http://{host_port(name, self.spec.ingress_node_port)}")
        except BaseException:
            self.release(keep=False)
            raise

    def deliver(self, images: Sequence[str]) -> dict[str, str]:
        """`kind load docker-image` into every node (kind skips what a node holds); in registry mode
        the nodes pull instead: the images are pushed to `[images] registry`."""
        if not images:
            return {}
        if registry_mode(self.settings) is not None:
            return push_to_registry(self.settings, images, self.spec.cluster)
        assert self._cluster is not None, "deliver() before provision()"
        started = time.monotonic()
        self._cluster.load_images(images)
        self.timings["image load"] = self.timings.get("image load", 0.0) + time.monotonic() - started
        return {image: image for image in images}

    def release(self, *, keep: bool) -> None:
        """Delete the cluster this run created; kept instead with `keep` (the run's namespace too) or
        when reused (only the run's namespace goes: the next run resets it anyway)."""
        cluster, lock, self._cluster, self._lock = self._cluster, self._lock, None, None
        try:
            if cluster is not None and (keep or self.reuse) and cluster.kubeconfig.exists():
                if not keep:
                    self._drop_namespace(cluster)
                cluster.mark_kept(fit=self._fit)
                say(f"[stageproof] k8s: kind cluster {cluster.name} kept for the next run (`stageproof down` "
                    "removes it)")
            elif cluster is not None and cluster.created:
                with shielded(f"deleting kind cluster {cluster.name}"):
                    cluster.delete()
        finally:
            if lock is not None:
                lock.release()

    @classmethod
    def reap(cls, settings: Settings, *, kept: bool) -> list[str]:
        """Kind cluster `stages.k8s.cluster` (also half-made) if stageproof made it and its owner is
        gone (nobody holds its lock); one a run kept on purpose only with `kept`."""
        spec = settings.stages.k8s
        if spec is None:
            return []
        leftover = kind.KindCluster(spec.cluster, image="")
        lock = cluster_lock(spec, run_id="reap")
        if not lock.try_acquire():
            log.info("kind cluster %s is in use (%s): not reaped", spec.cluster, lock.holder_text())
            return []
        try:
            if not leftover.ours or (leftover.kept and not kept):
                return []
            complete = kind.exists(spec.cluster) and leftover.kubeconfig.exists()
            what = "kept" if leftover.kept else "complete" if complete else "half-made"
            leftover.created = True  # ours by the marker it left in our cache, and its owner is gone
            leftover.delete()
            return [f"kind cluster {spec.cluster} ({what})"]
        finally:
            lock.release()

    def logs(self) -> str:
        return self._cluster.logs() if self._cluster is not None else ""

    def _node_image(self) -> str:
        """Ours, built from source, when no registry answers; in registry mode pulled from `[images]
        registry` (our node image pushed there as a stand-in for kindest/node); else kind's default ("")."""
        from harness.images.build import use_airgap

        if (registry := registry_mode(self.settings)) is not None:
            from harness.images.kind_node_recipe import load_versions
            from harness.images.push import kind_node_name

            return f"{registry}/{kind_node_name(load_versions().kubernetes)}"  # Docker on this machine pulls it
        if self.settings.images is not None and not use_airgap(self.settings.images):
            return ""
        from harness.images.kind_node_preload import ensure_cluster_node_image

        started = time.monotonic()
        image = ensure_cluster_node_image()  # the add-ons go in once
        self.timings["kind node image (build or cache)"] = time.monotonic() - started
        return image

    def _mirror(self) -> kind_config.RegistryMirror | None:
        """What the nodes pull through `[images] registry` (registry mode only)."""
        images = self.settings.images
        if images is None or images.registry is None or registry_mode(self.settings) is None:
            return None
        host = images.registry.split("/")[0]
        return kind_config.RegistryMirror(images.registry_endpoint or f"https://{host}",
                                          own=images.registry_endpoint is not None,
                                          mirror_for=tuple(images.mirror_for),
                                          credentials=self.settings.registry_credentials)

    def _fit_of(self, node_image: str) -> str:
        """What a reused cluster must have been made from: the node image (by id) and the kind config."""
        image = run(["docker", "image", "inspect", "--format", "{{.Id}}", node_image], check=False).stdout.strip()
        spec = self.spec
        return recipe_hash("kind-fit-v1", image or node_image, str(spec.nodes), str(spec.node_port),
                           str(spec.ingress_node_port), *([spec.kind_config] if spec.kind_config else []),
                           *([f"node-lost-{spec.node_lost_seconds}"] if spec.node_lost_seconds else []))

    def _drop_namespace(self, cluster: kind.KindCluster) -> None:
        """The run's namespace goes (not waited for): a kept cluster holds no run's pods busy."""
        kubectl = Kubectl(str(cluster.kubectl()), cluster.kubeconfig)
        kubectl("delete", "namespace", self.spec.namespace, "--ignore-not-found", "--wait=false", check=False)

    @staticmethod
    def _reusable(cluster: kind.KindCluster, fit: str) -> bool:
        """True for a cluster a run kept (complete: it has its kubeconfig) from the same node image and
        kind config. What a dead owner left (we hold the lock now), or a kept cluster of another node
        image, is deleted first; a cluster stageproof did not make is refused."""
        there = kind.exists(cluster.name)
        if there and not cluster.ours:
            raise StageUnavailable(f"kind cluster {cluster.name!r} exists but was not made by stageproof (no "
                                   f"{cluster.kubeconfig}): delete it or set stages.k8s.cluster to another name")
        kept = there and cluster.kept and cluster.kubeconfig.exists()
        if kept and cluster.kept_fit() == fit:
            say(f"[stageproof] k8s: reusing kind cluster {cluster.name} (kept by an earlier run)")
            return True
        if kept:
            say(f"[stageproof] k8s: kind cluster {cluster.name} was kept from another node image or kind config: "
                "made anew")
        if there or cluster.ours or _leftover_network(cluster.network):
            if not kept:
                say(f"[stageproof] k8s: removing what a killed run left of kind cluster {cluster.name}")
            cluster.created = True  # ours, and its owner is gone
            cluster.delete()
        return False


def cluster_lock(spec: K8sSettings, *, run_id: str) -> OwnerLock:
    """The lock of what a run owns: the kind cluster by name, or a team's context + namespace."""
    key = f"k8s-context-{spec.context}-{spec.namespace}" if spec.context else f"kind-{spec.cluster}"
    return OwnerLock(key, run_id=run_id)


def acquire(spec: K8sSettings, *, run_id: str) -> OwnerLock:
    """This run's ownership, after waiting (up to stages.k8s.lock_timeout) for a live owner."""
    lock = cluster_lock(spec, run_id=run_id)
    waited = lock.acquire(timeout=spec.lock_timeout, say=lambda text: say(f"[stageproof] k8s: {text}"))
    if waited:
        log.info("waited %.0fs for %s", waited, lock.path)
    return lock


def _leftover_network(network: str) -> bool:
    """Our cluster's network without the cluster: a killed run's, unless it was made ready for the
    cluster on purpose (a registry listens on its gateway: labelled NETWORK_LABEL)."""
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
