"""kind cluster lifecycle, shared by the node-image checks and the k8s stage.

A `KindCluster` only ever deletes a cluster it created itself (`created`), keeps its kubeconfig
in the cache dir instead of ~/.kube/config, and runs on its own Docker network, so deleting it
leaves no container, volume or network behind. It marks the cluster as stageproof's (`owner.json`
in its cache dir) *before* `kind create`, so a cluster half-made by a killed run is still known
as ours and can be reaped.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import logging
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.core.cache import cache_dir
from harness.core.net import LOOPBACK, free_port
from harness.core.ownership import KEPT_MARKER, OWNER_MARKER, read_marker, write_marker
from harness.core.run import run
from harness.core.wait import NotYet, wait_until
from harness.errors import ConfigError, StageproofError

log = logging.getLogger("stageproof.kind")

CLUSTER_LABEL = "io.x-k8s.kind.cluster"
SETTLE_SECONDS = 1.0  # a node container a killed `kind create` asked for may appear this late
SWEEP_TIMEOUT = 180.0  # until every node container is gone (a busy daemon fails a kill now and then)
FREEZER = Path("/sys/fs/cgroup/freezer")  # cgroup v1: where a killed runc can leave a cgroup FROZEN
#: one control plane, what kind makes without a config (stageproof adds its port mapping)
DEFAULT_CONFIG: dict[str, Any] = {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4",
                                  "nodes": [{"role": "control-plane"}]}


def exists(name: str) -> bool:
    """True when kind knows a cluster called `name`."""
    return name in run(["kind", "get", "clusters"]).stdout.split()


def state_dir(cluster: str) -> Path:
    """Where a cluster's kubeconfig, kind config, kubectl and markers live (not created here)."""
    return cache_dir("kind") / cluster


def network_name(cluster: str) -> str:
    """The Docker network of our clusters: one per cluster, removed with it."""
    return f"stageproof-kind-{cluster}"


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


def render_config(name: str, *, source: Path | None = None, nodes: int = 1, node_ports: Sequence[int] = (),
                  host_ports: Mapping[int, int] | None = None, mirror: RegistryMirror | None = None) -> RenderedConfig:
    """The team's kind config (`source`, else one control plane) made fit for stageproof, written
    into the cluster's cache dir: API server and `node_ports` on 127.0.0.1 only (free host ports
    unless `host_ports` names them), `nodes - 1` workers when the file lists none, and the
    registry `mirror` in every node's containerd."""
    chosen = {port: (host_ports or {}).get(port) or free_port() for port in node_ports}
    config = with_overrides(load_config(source), nodes=nodes, host_ports=chosen)
    if mirror is not None:
        config = with_mirror(config, mirror.write_hosts(cache_dir("kind", name) / "certs.d"))
    path = cache_dir("kind", name) / "kind.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
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


@dataclass
class KindCluster:
    """One kind cluster: `create()` it, use `kubeconfig`, `delete()` it (only if we created it)."""

    name: str
    image: str
    config: Path | None = None
    run_id: str = ""
    created: bool = field(default=False, init=False)

    @property
    def state_dir(self) -> Path:
        return state_dir(self.name)

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def network(self) -> str:
        return network_name(self.name)

    @property
    def ours(self) -> bool:
        """Made by stageproof: marked before its creation began (or, made by an older version,
        its kubeconfig is in our cache)."""
        return (self.state_dir / OWNER_MARKER).exists() or self.kubeconfig.exists()

    @property
    def kept(self) -> bool:
        """Left up on purpose (`--keep`, `up --detach`): the next run reuses it, `down` removes it."""
        return (self.state_dir / KEPT_MARKER).exists()

    def mark_kept(self, *, fit: str = "") -> None:
        """Left up for reuse; `fit` says what it was made from (node image, kind config) so that a
        run needing another never reuses it."""
        write_marker(self.state_dir / KEPT_MARKER, self.run_id, fit=fit)

    def kept_fit(self) -> str | None:
        """What the kept cluster was made from (None: not kept, or kept before `fit` was recorded)."""
        entry = read_marker(self.state_dir / KEPT_MARKER)
        return str(entry.get("fit") or "") if entry is not None else None

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
        self.state_dir.mkdir(parents=True, exist_ok=True)
        write_marker(self.state_dir / OWNER_MARKER, self.run_id)  # before kind makes anything
        self.created = True  # even a failed create leaves containers behind for delete()
        run(cmd, env=self._env(), timeout=timeout)
        return time.monotonic() - started

    def delete(self) -> None:
        """Delete the cluster, its network and its cache folder, only if this object created them;
        also a half-made cluster (no kubeconfig yet, a node container that appeared late)."""
        if not self.created:
            log.info("not deleting kind cluster %s: not created by us", self.name)
            return
        deleted = run(["kind", "delete", "cluster", "--name", self.name, "--kubeconfig", str(self.kubeconfig)],
                      env=self._env(), check=False)
        if deleted.returncode != 0:
            log.warning("kind delete cluster %s failed, removing its nodes by hand: %s", self.name,
                        deleted.stderr.strip()[-300:])
        for _ in range(2):  # once more after a pause: a node a killed `kind create` asked for may come late
            wait_until(self._swept, what=f"the node containers of kind cluster {self.name} to be removed",
                       timeout=SWEEP_TIMEOUT, interval=SETTLE_SECONDS, max_interval=5.0)
            time.sleep(SETTLE_SECONDS)
        if run(["docker", "network", "inspect", self.network], check=False).returncode == 0:
            run(["docker", "network", "rm", self.network])
        shutil.rmtree(self.state_dir, ignore_errors=True)  # kubeconfig, config, kubectl copy, markers
        self.created = False

    def _swept(self) -> None:
        """Remove the node containers still there (`kind delete` failed on them, or they came after
        it listed them), with their volumes; NotYet while any is left."""
        if names := self.node_containers():
            _thaw(names)
            proc = run(["docker", "rm", "--force", "--volumes", *names], check=False)
            raise NotYet(f"node containers {', '.join(names)} still there: {proc.stderr.strip()[-200:]}")

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


def _thaw(containers: Sequence[str]) -> None:
    """A runc killed half-way inside a node (cgroup v1) can leave a pod's cgroup FROZEN, and Docker
    cannot kill a node holding frozen processes ("did not receive an exit event"): thaw them."""
    pids = run(["docker", "inspect", "--format", "{{.State.Pid}}", *containers], check=False).stdout.split()
    for pid in (pid for pid in pids if pid.isdigit() and pid != "0"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
                _, controllers, path = line.split(":", 2)
                if "freezer" in controllers.split(","):
                    for state in (FREEZER / path.lstrip("/")).rglob("freezer.state"):
                        if state.read_text().strip() == "FROZEN":
                            log.warning("thawing %s, left frozen in node %s", state.parent, pid)
                            state.write_text("THAWED")
