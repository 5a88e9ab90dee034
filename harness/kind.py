"""kind cluster lifecycle, shared by the node-image checks and the k8s stage.

A `KindCluster` only ever deletes a cluster it created itself (`created`), keeps its kubeconfig
in the cache dir instead of ~/.kube/config, and runs on its own Docker network, so deleting it
leaves no container, volume or network behind.
"""

from __future__ import annotations

import logging
import shutil
import string
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.cache import cache_dir
from harness.errors import StageproofError
from harness.net import free_port
from harness.run import run

log = logging.getLogger("stageproof.kind")

CONFIG_TEMPLATE = Path(__file__).resolve().parents[1] / "stages" / "k8s" / "kind.yaml"
APP_NODE_PORT = 30080
CHECK_NODE_PORT = 30081
CLUSTER_LABEL = "io.x-k8s.kind.cluster"


def exists(name: str) -> bool:
    """True when kind knows a cluster called `name`."""
    return name in run(["kind", "get", "clusters"]).stdout.split()


def network_name(cluster: str) -> str:
    """The Docker network of our clusters: one per cluster, removed with it."""
    return f"stageproof-kind-{cluster}"


@dataclass(frozen=True)
class RenderedConfig:
    """A kind config written from the template, and the host ports it publishes on 127.0.0.1."""

    path: Path
    app_host_port: int
    check_host_port: int


def render_config(name: str, *, workers: int = 0, app_host_port: int | None = None,
                  check_host_port: int | None = None, template: Path = CONFIG_TEMPLATE) -> RenderedConfig:
    """Fill `stages/k8s/kind.yaml` (free host ports unless given) into the cluster's cache dir."""
    app_port = app_host_port or free_port()
    check_port = check_host_port or free_port()
    text = string.Template(template.read_text()).substitute(
        app_host_port=app_port,
        check_host_port=check_port,
        worker_nodes="".join("  - role: worker\n" for _ in range(workers)),
    )
    path = cache_dir("kind", name) / "kind.yaml"
    path.write_text(text)
    return RenderedConfig(path, app_port, check_port)


@dataclass
class KindCluster:
    """One kind cluster: `create()` it, use `kubeconfig`, `delete()` it (only if we created it)."""

    name: str
    image: str
    config: Path | None = None
    created: bool = field(default=False, init=False)

    @property
    def kubeconfig(self) -> Path:
        return cache_dir("kind", self.name) / "kubeconfig"

    @property
    def network(self) -> str:
        return network_name(self.name)

    def _env(self) -> dict[str, str]:
        return {"KIND_EXPERIMENTAL_DOCKER_NETWORK": self.network}

    def create(self, *, wait: str = "5m", timeout: float = 900) -> float:
        """`kind create cluster --wait`; returns the seconds it took. Refuses to reuse a cluster."""
        if exists(self.name):
            raise StageproofError(f"a kind cluster named {self.name!r} already exists and is not ours: "
                                  f"pick another name or run `kind delete cluster --name {self.name}`")
        cmd = ["kind", "create", "cluster", "--name", self.name, "--kubeconfig", str(self.kubeconfig),
               "--wait", wait, "--retain"]
        cmd += ["--image", self.image] if self.image else []  # empty: kind's own default node image
        if self.config is not None:
            cmd += ["--config", str(self.config)]
        started = time.monotonic()
        self.created = True  # even a failed create leaves containers behind for delete()
        run(cmd, env=self._env(), timeout=timeout)
        return time.monotonic() - started

    def delete(self) -> None:
        """Delete the cluster and its network, only if this object created them."""
        if not self.created:
            log.info("not deleting kind cluster %s: not created by us", self.name)
            return
        run(["kind", "delete", "cluster", "--name", self.name, "--kubeconfig", str(self.kubeconfig)],
            env=self._env())
        if run(["docker", "network", "inspect", self.network], check=False).returncode == 0:
            run(["docker", "network", "rm", self.network])
        shutil.rmtree(cache_dir("kind", self.name), ignore_errors=True)  # kubeconfig, config, kubectl copy
        self.created = False

    def load_images(self, names: Sequence[str]) -> None:
        """Copy local Docker images into every node (`kind load docker-image`)."""
        if names:
            run(["kind", "load", "docker-image", "--name", self.name, *names], env=self._env())

    def node_containers(self) -> list[str]:
        """Names of this cluster's node containers (running or not)."""
        proc = run(["docker", "ps", "-a", "--filter", f"label={CLUSTER_LABEL}={self.name}",
                    "--format", "{{.Names}}"])
        return proc.stdout.split()

    def kubectl(self) -> Path:
        """A kubectl matching the cluster: copied out of the control-plane node (no install needed)."""
        target = cache_dir("kind", self.name) / "kubectl"
        if not target.exists():
            control_plane = f"{self.name}-control-plane"
            run(["docker", "cp", f"{control_plane}:/usr/bin/kubectl", str(target)])
        return target

    def logs(self) -> str:
        """kubelet/containerd journal of the first node, for failure reports."""
        nodes = self.node_containers()
        if not nodes:
            return "(no node containers)"
        proc = run(["docker", "exec", nodes[0], "journalctl", "--no-pager", "-n", "200", "-u", "kubelet",
                    "-u", "containerd"], check=False)
        return proc.stdout + proc.stderr
