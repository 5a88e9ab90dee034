"""kind cluster lifecycle, shared by the node-image checks and the k8s stage.

A `KindCluster` only ever deletes a cluster it created itself (`created`), keeps its kubeconfig
in the cache dir instead of ~/.kube/config, and runs on its own Docker network, so deleting it
leaves no container, volume or network behind. It marks the cluster as stageproof's (`owner.json`
in its cache dir) *before* `kind create`, so a cluster half-made by a killed run is still known
as ours and can be reaped. The kind config it is created with: harness/k8s/kind_config.py.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.core.cache import cache_dir
from harness.core.ownership import KEPT_MARKER, OWNER_MARKER, read_marker, write_marker
from harness.core.run import run
from harness.core.wait import NotYet, wait_until
from harness.errors import StageproofError

log = logging.getLogger("stageproof.kind")

CLUSTER_LABEL = "io.x-k8s.kind.cluster"
SETTLE_SECONDS = 1.0  # a node container a killed `kind create` asked for may appear this late
SWEEP_TIMEOUT = 180.0  # until every node container is gone (a busy daemon fails a kill now and then)
FREEZER = Path("/sys/fs/cgroup/freezer")  # cgroup v1: where a killed runc can leave a cgroup FROZEN


def exists(name: str) -> bool:
    """True when kind knows a cluster called `name`."""
    return name in run(["kind", "get", "clusters"]).stdout.split()


def state_dir(cluster: str) -> Path:
    """Where a cluster's kubeconfig, kind config, kubectl and markers live (not created here)."""
    return cache_dir("kind") / cluster


def network_name(cluster: str) -> str:
    """The Docker network of our clusters: one per cluster, removed with it."""
    return f"stageproof-kind-{cluster}"


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

    def load_images(self, names: Sequence[str], *, everywhere: bool = False) -> None:
        """Copy local Docker images into the nodes that run pods (`kind load docker-image`): the
        workers when there are any (the control plane is tainted NoSchedule then), else every node;
        `everywhere` for the add-ons, whose DaemonSets tolerate that taint."""
        if names:
            workers = [] if everywhere else self.worker_nodes()
            nodes = ["--nodes", ",".join(workers)] if workers else []
            run(["kind", "load", "docker-image", "--name", self.name, *nodes, *names], env=self._env())

    def worker_nodes(self) -> list[str]:
        """The node containers of role worker."""
        proc = run(["docker", "ps", "-a", "--filter", f"label={CLUSTER_LABEL}={self.name}",
                    "--filter", "label=io.x-k8s.kind.role=worker", "--format", "{{.Names}}"])
        return sorted(proc.stdout.split())

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
