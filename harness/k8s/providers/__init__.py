"""Where the k8s stage's cluster comes from, behind one narrow interface (like kind's `Provider`):
stageproof's own kind cluster (`kind.py`), or a cluster a team already has (`external.py`).

A provider provisions the cluster (creates or reuses it, and holds it for the run), lets go of it
(deleting only what the run created), gets local images to its nodes, and says what it allows
(`ProviderInfo`: whether stageproof's add-ons and Ingress are there, whether node chaos is allowed,
whether new builds can reach the nodes). Nothing outside the providers asks "ours or theirs".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from harness.config import K8sSettings, Settings
from harness.errors import ConfigError
from harness.k8s.manifests import Kubectl


@dataclass(frozen=True)
class ProviderInfo:
    """What a provider's cluster allows; each `*_withheld` is the reason it does not (None: allowed)."""

    name: str
    #: stageproof made the cluster: it installs its add-ons (NetworkPolicy engine, ingress controller)
    ours: bool
    node_chaos_withheld: str | None = None
    builds_withheld: str | None = None


@dataclass(frozen=True)
class ClusterAccess:
    """A provisioned cluster: how to talk to it, and where its NodePorts answer on this machine."""

    name: str
    kubectl: Kubectl
    base_url: str
    ingress_url: str | None = None


class ClusterProvider(ABC):
    """One source of clusters. The stage calls provision() once, then deliver(), then release()."""

    def __init__(self, settings: Settings, *, run_id: str) -> None:
        self.settings, self.run_id = settings, run_id
        self.spec: K8sSettings = k8s_settings(settings)
        #: what provisioning and delivery measured (phase -> seconds), for the bring-up note
        self.timings: dict[str, float] = {}

    @abstractmethod
    def info(self) -> ProviderInfo:
        """What this cluster allows (known from the config, before provisioning)."""

    @abstractmethod
    def provision(self) -> ClusterAccess:
        """Create or reuse the cluster and hold it for this run (a lock); whatever stops this half-way
        lets go of it and removes what it made."""

    @abstractmethod
    def deliver(self, images: Sequence[str]) -> dict[str, str]:
        """Get local images to the nodes; returns image -> the reference the nodes run it by."""

    @abstractmethod
    def release(self, *, keep: bool) -> None:
        """Delete what this run created (unless `keep`: then mark it kept for reuse), and let go."""

    @classmethod
    @abstractmethod
    def reap(cls, settings: Settings, *, kept: bool) -> list[str]:
        """What killed (or, with `kept`, kept) runs left on this source; never a live run's."""

    def logs(self) -> str:
        """The cluster's own logs (nodes' kubelet and containerd), for failure reports."""
        return ""


def k8s_settings(settings: Settings) -> K8sSettings:
    if settings.stages.k8s is None:
        raise ConfigError("stageproof.toml has no [stages.k8s] section")
    return settings.stages.k8s


def provider_class(settings: Settings) -> type[ClusterProvider]:
    """A team's context when `stages.k8s.context` names one, else stageproof's kind cluster."""
    if k8s_settings(settings).context:
        from harness.k8s.providers.external import ExternalProvider

        return ExternalProvider
    from harness.k8s.providers.kind import KindProvider

    return KindProvider


def registry_mode(settings: Settings) -> str | None:
    """`[images] registry` unless air-gapped mode is forced: with a registry, nothing is built or loaded."""
    images = settings.images
    return images.registry if images is not None and images.registry and images.airgap != "always" else None


def push_to_registry(settings: Settings, images: Sequence[str], cluster: str) -> dict[str, str]:
    """New local builds pushed to `[images] registry`, where the cluster pulls them from."""
    registry = registry_mode(settings)
    if registry is None or settings.images is None:
        raise ConfigError(f"images.registry: {', '.join(images)} cannot reach cluster {cluster}: it pulls new "
                          "builds from a registry")
    from harness.images.push import push_all

    push_all(settings, {image: image for image in images}, stand_ins={})
    prefix = settings.images.pull_prefix or registry
    return {image: f"{prefix}/{image}" for image in images}
