"""A cluster the team already has, named by a kubeconfig context: stageproof creates nothing there but
its own namespace (labelled ours, removed at the end), installs no add-ons, never deletes the
cluster, takes nodes away only when `stages.k8s.node_chaos = true`, and gets new builds to it only
through `[images] registry`. The run owns its context + namespace by a lock, as a kind run owns its cluster.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

from harness.config import Settings
from harness.core.ownership import OwnerLock
from harness.core.shield import shielded
from harness.errors import ConfigError, StageUnavailable
from harness.k8s import namespace
from harness.k8s.api import connect
from harness.k8s.manifests import Kubectl
from harness.k8s.providers import ClusterAccess, ClusterProvider, ProviderInfo, push_to_registry, registry_mode
from harness.k8s.providers.kind import acquire, cluster_lock

log = logging.getLogger("stageproof.k8s")


class ExternalProvider(ClusterProvider):
    """`stages.k8s.context` in `stages.k8s.kubeconfig` (default: kubectl's), app at `stages.k8s.base_url`."""

    def __init__(self, settings: Settings, *, run_id: str) -> None:
        super().__init__(settings, run_id=run_id)
        self._lock: OwnerLock | None = None
        self._access: ClusterAccess | None = None

    @property
    def context(self) -> str:
        assert self.spec.context is not None
        return self.spec.context

    def info(self) -> ProviderInfo:
        theirs = f"cluster {self.context!r} is a kubeconfig context stageproof did not create"
        chaos = None if self.spec.node_chaos else (
            "[stages.k8s] node_chaos = false" if self.spec.node_chaos is False else
            f"{theirs}: set [stages.k8s] node_chaos = true to let it drain and stop that cluster's nodes")
        builds = None if registry_mode(self.settings) else f"{theirs}: it pulls new builds from a registry: set " \
                                                           "[images] registry"
        return ProviderInfo(self.context, ours=False, node_chaos_withheld=chaos, builds_withheld=builds)

    def provision(self) -> ClusterAccess:
        base_url = self.spec.base_url
        if not base_url:
            raise ConfigError(f"stages.k8s.context={self.context!r} needs stages.k8s.base_url "
                              "($STAGEPROOF_K8S_BASE_URL): where the app's Service answers from this machine, "
                              "e.g. http://127.0.0.1:8080")
        binary = shutil.which("kubectl")
        if binary is None:
            raise StageUnavailable(f"kubectl is not on PATH (needed for context {self.context!r})")
        self._lock = acquire(self.spec, run_id=self.run_id)
        self._access = ClusterAccess(self.context, Kubectl(binary, self._kubeconfig(), self.context),
                                     base_url.rstrip("/"))
        return self._access

    def deliver(self, images: Sequence[str]) -> dict[str, str]:
        """Images here reach that cluster only through the registry it pulls from."""
        return push_to_registry(self.settings, images, self.context) if images else {}

    def release(self, *, keep: bool) -> None:
        """Only the run's namespace goes (kept with `keep`); the cluster is never touched."""
        access, lock, self._access, self._lock = self._access, self._lock, None, None
        try:
            if access is not None and not keep:
                log.info("cluster %s is not ours: deleting only namespace %s", access.name, self.spec.namespace)
                with shielded(f"deleting namespace {self.spec.namespace} on {access.name}"):
                    namespace.delete(connect(self._kubeconfig(), self.context), self.spec.namespace, wait=False,
                                     timeout=self.spec.up_timeout)
        finally:
            if lock is not None:
                lock.release()

    @classmethod
    def reap(cls, settings: Settings, *, kept: bool) -> list[str]:
        """Only the run's namespace (labelled ours), and only when no live run holds its lock."""
        spec = settings.stages.k8s
        if spec is None or not spec.context:
            return []
        lock = cluster_lock(spec, run_id="reap")
        if not lock.try_acquire():
            log.info("namespace %s on %s is in use (%s): not reaped", spec.namespace, spec.context, lock.holder_text())
            return []
        try:
            kubeconfig = Path(spec.kubeconfig).expanduser() if spec.kubeconfig else None
            removed = namespace.delete_ours(connect(kubeconfig, spec.context), spec.namespace, timeout=spec.up_timeout)
            return [f"namespace {spec.namespace} on {spec.context}"] if removed else []
        finally:
            lock.release()

    def _kubeconfig(self) -> Path | None:
        return Path(self.spec.kubeconfig).expanduser() if self.spec.kubeconfig else None
