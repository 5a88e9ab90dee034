"""The kind config a cluster is created with: the team's own (`stages.k8s.kind_config`) or one
control plane, made fit for stageproof (API server and NodePorts on 127.0.0.1 only, workers up to
the node count, the registry mirror in every node's containerd) and written into the cluster's
cache dir. harness/k8s/kind.py creates the cluster from it.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.core import goyaml
from harness.core.cache import cache_dir
from harness.core.net import LOOPBACK, free_port
from harness.errors import ConfigError

#: one control plane, what kind makes without a config (stageproof adds its port mapping)
DEFAULT_CONFIG: dict[str, Any] = {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4",
                                  "nodes": [{"role": "control-plane"}]}


@dataclass(frozen=True)
class RenderedConfig:
    """A kind config written for one cluster, and the 127.0.0.1 port each NodePort is published on."""

    path: Path
    host_ports: dict[int, int]

    def host_port(self, node_port: int) -> int:
        return self.host_ports[node_port]


@dataclass(frozen=True)
class RegistryMirror:
    """How the nodes' containerd reaches a registry (`config_path` + one `hosts.toml` per host):
    `endpoint` itself over plain http when `own` (the registry the images name), and every host of
    `mirror_for` (e.g. docker.io) through `endpoint`. containerd sends a pod's pull secret only to
    the host its image names, so a mirror gets the registry's credentials from `hosts.toml`."""

    endpoint: str
    own: bool = True
    mirror_for: tuple[str, ...] = ()
    credentials: tuple[str, str] | None = field(default=None, repr=False)

    def write_hosts(self, certs_dir: Path) -> Path:
        """`<certs_dir>/<host>/hosts.toml` per host, mounted into every node at CERTS_DIR."""
        if self.own:  # kind's documented local-registry form: the server, and itself as a host
            self._write(certs_dir, self.endpoint.split("://", 1)[1], f'server = "{self.endpoint}"\n\n'
                        f'[host."{self.endpoint}"]\n  capabilities = ["pull", "resolve"]\n')
        header = ""
        if self.credentials is not None:
            token = base64.b64encode(":".join(self.credentials).encode()).decode()
            header = f'  [host."{self.endpoint}".header]\n    Authorization = "Basic {token}"\n'
        for host in self.mirror_for:
            server = "https://registry-1.docker.io" if host == "docker.io" else f"https://{host}"
            self._write(certs_dir, host, f'server = "{server}"\n\n[host."{self.endpoint}"]\n'
                                         f'  capabilities = ["pull", "resolve"]\n{header}')
        return certs_dir

    @staticmethod
    def _write(certs_dir: Path, host: str, text: str) -> None:
        folder = certs_dir / host
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "hosts.toml").write_text(text)


CERTS_DIR = "/etc/containerd/certs.d"
#: a kind `containerdConfigPatches` entry: containerd reads registry hosts from CERTS_DIR
CONFIG_PATH_PATCH = f'[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "{CERTS_DIR}"\n'


def with_mirror(config: dict[str, Any], certs_dir: Path) -> dict[str, Any]:
    """`config` (a copy) whose nodes all mount `certs_dir` at CERTS_DIR and whose containerd uses it."""
    config = copy.deepcopy(config)
    config["containerdConfigPatches"] = [*(config.get("containerdConfigPatches") or []), CONFIG_PATH_PATCH]
    for node in config["nodes"]:
        node["extraMounts"] = [*(node.get("extraMounts") or []),
                               {"hostPath": str(certs_dir), "containerPath": CERTS_DIR, "readOnly": True}]
    return config


def node_loss_patches(seconds: int) -> list[str]:
    """kubeadm patches (v1beta3, what kind 0.33 writes) by which a silent node is called lost after
    `seconds` (the controller manager's node-monitor-grace-period; Kubernetes' default is 50 s)
    rather than 50. Each kubelet renews its lease every quarter of the lease's duration, set to
    `seconds` too: a live node renews four times within the grace period (Kubernetes' own: a 40 s
    lease renewed every 10 s, five times in 50 s)."""
    grace = ("kind: ClusterConfiguration\ncontrollerManager:\n  extraArgs:\n"
             f'    node-monitor-grace-period: "{seconds}s"\n')
    return [grace, f"kind: KubeletConfiguration\nnodeLeaseDurationSeconds: {seconds}\n"]


def with_node_loss(config: dict[str, Any], seconds: int) -> dict[str, Any]:
    """`config` (a copy) with node_loss_patches first: the team's own patches, applied after, win."""
    config = copy.deepcopy(config)
    config["kubeadmConfigPatches"] = [*node_loss_patches(seconds), *(config.get("kubeadmConfigPatches") or [])]
    return config


def render_config(name: str, *, source: Path | None = None, nodes: int = 1, node_ports: Sequence[int] = (),
                  host_ports: Mapping[int, int] | None = None, mirror: RegistryMirror | None = None,
                  node_lost_seconds: int | None = None) -> RenderedConfig:
    """The team's kind config (`source`, else one control plane) made fit for stageproof, written
    into the cluster's cache dir: API server and `node_ports` on 127.0.0.1 only (free host ports
    unless `host_ports` names them), `nodes - 1` workers when the file lists none, the registry
    `mirror` in every node's containerd, and a node lost after `node_lost_seconds` of silence."""
    chosen = {port: (host_ports or {}).get(port) or free_port() for port in node_ports}
    config = with_overrides(load_config(source), nodes=nodes, host_ports=chosen)
    if node_lost_seconds is not None:
        config = with_node_loss(config, node_lost_seconds)
    if mirror is not None:
        config = with_mirror(config, mirror.write_hosts(cache_dir("kind", name) / "certs.d"))
    path = cache_dir("kind", name) / "kind.yaml"
    path.write_text(goyaml.dump(config, sort_keys=False))
    return RenderedConfig(path, chosen)


def load_config(source: Path | None) -> dict[str, Any]:
    """A kind `Cluster` config from `source` (a team's own file), else the default."""
    if source is None:
        return copy.deepcopy(DEFAULT_CONFIG)
    try:
        config = yaml.safe_load(source.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"stages.k8s.kind_config: {source} is not valid YAML: {err}") from err
    if not isinstance(config, dict) or config.get("kind") != "Cluster":
        raise ConfigError(f"stages.k8s.kind_config: {source} is not a kind config (kind: Cluster)")
    return config


def with_overrides(config: dict[str, Any], *, nodes: int, host_ports: Mapping[int, int]) -> dict[str, Any]:
    """`config` with stageproof's overrides (a copy): loopback-only API server and port mappings,
    workers up to `nodes`, no `name` (the cluster is named on the command line)."""
    config = copy.deepcopy(config)
    config.pop("name", None)
    config["networking"] = {**(config.get("networking") or {}), "apiServerAddress": LOOPBACK}
    config["nodes"] = list(config.get("nodes") or [{"role": "control-plane"}])
    if not any(node.get("role") == "worker" for node in config["nodes"]):
        config["nodes"] += [{"role": "worker"} for _ in range(nodes - 1)]
    control_plane = _control_plane(config)
    mappings = [m for m in control_plane.get("extraPortMappings") or [] if m.get("containerPort") not in host_ports]
    mappings += [{"containerPort": node_port, "hostPort": host_port, "listenAddress": LOOPBACK, "protocol": "TCP"}
                 for node_port, host_port in host_ports.items()]
    control_plane["extraPortMappings"] = mappings
    return config


def _control_plane(config: dict[str, Any]) -> dict[str, Any]:
    """The first control-plane node (kind's default role), where NodePorts are published."""
    nodes: list[dict[str, Any]] = config["nodes"]
    for node in nodes:
        if node.get("role", "control-plane") == "control-plane":
            return node
    raise ConfigError("stages.k8s.kind_config: the kind config has no control-plane node")
