"""What a cut-short k8s run may leave, for the leak audit (harness/checks/leak_audit.py).

A `ClusterWatch` points the audited run at a kind cluster of its own (STAGEPROOF_K8S_CLUSTER,
one node: the audit counts leftovers, not topology) and a temporary folder of its own (TMPDIR),
picks the moment to cut (while `kind create` runs, or while the manifests are applied and waited
for), and counts afterwards: the kind cluster, its node containers and their volumes, its Docker
network, its cache folder (kubeconfig, markers), its lock file, temporary folders and processes.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

from harness.core.ownership import lock_path
from harness.core.run import run
from harness.errors import CommandFailed, StageproofError
from harness.k8s import kind
from tests.support.leak_audit import Watch, processes

#: when to cut, and the sign (in the run's output, or a node container) that the moment has come
MOMENTS = {"cluster create": None, "apply and wait": "k8s: add-ons ready"}
NO_CUT = ""  # a watch that only counts (a run that is not cut short)
REACH_TIMEOUT = 600.0  # until the moment: cluster create, image load and add-ons on a busy 2-core machine
PYTEST_TMP = "pytest-of-"  # pytest's own base temp (it keeps the last three runs' on purpose)
#: what `docker volume|network inspect` says of an object that does not exist (anything else: Docker failed)
ABSENT = re.compile(r"no such volume|network \S+ not found|No such object", re.IGNORECASE)


class ClusterWatch(Watch):
    """The audit's view of one kind cluster, named `cluster`, and of the run's TMPDIR `tmpdir`."""

    def __init__(self, cluster: str, tmpdir: Path, *, moment: str = NO_CUT, nodes: int = 1) -> None:
        if moment != NO_CUT and moment not in MOMENTS:
            raise ValueError(f"unknown moment {moment!r}: one of {', '.join(MOMENTS)}")
        self.cluster = cluster
        self.tmpdir = tmpdir
        self.moment = moment
        self.begin_timeout = REACH_TIMEOUT
        tmpdir.mkdir(parents=True, exist_ok=True)
        self.env: Mapping[str, str] = {"STAGEPROOF_K8S_CLUSTER": cluster, "STAGEPROOF_K8S_NODES": str(nodes),
                                       "TMPDIR": str(tmpdir)}
        self._volumes: set[str] = set()

    def begun(self, log: Path) -> bool:
        sign = MOMENTS.get(self.moment)
        if sign is None:
            return bool(self._nodes())
        return sign in log.read_text(errors="replace")

    def before_cut(self) -> None:
        self._volumes = set(self._node_volumes())

    def left(self) -> list[str]:
        found = [f"kind cluster {self.cluster}"] if self.cluster in query("kind", "get", "clusters").split() else []
        found += [f"node container {name}" for name in self._nodes()]
        found += [f"volume {name}" for name in sorted(self._volumes) if _exists("volume", name)]
        network = kind.network_name(self.cluster)
        found += [f"network {network}"] if _exists("network", network) else []
        found += [f"folder {path}" for path in (kind.state_dir(self.cluster), lock_path(f"kind-{self.cluster}"))
                  if path.exists()]
        found += [f"folder {path}" for path in sorted(self.tmpdir.iterdir()) if not path.name.startswith(PYTEST_TMP)]
        return found + processes(f"STAGEPROOF_K8S_CLUSTER={self.cluster}")

    def purge(self) -> None:
        leftover = kind.KindCluster(self.cluster, image="")
        leftover.created = True  # the audited run's, and that run is gone
        with contextlib.suppress(StageproofError):
            leftover.delete()  # nodes (thawed if need be), network, cache folder
        for volume in self._volumes:
            _docker("docker", "volume", "rm", "--force", volume)
        _docker("docker", "network", "rm", kind.network_name(self.cluster))
        shutil.rmtree(kind.state_dir(self.cluster), ignore_errors=True)
        for path in self.tmpdir.iterdir():
            shutil.rmtree(path, ignore_errors=True)

    def _nodes(self) -> list[str]:
        return query("docker", "ps", "--all", "--filter", f"label={kind.CLUSTER_LABEL}={self.cluster}",
                       "--format", "{{.Names}}").split()

    def _node_volumes(self) -> list[str]:
        nodes = self._nodes()
        if not nodes:
            return []
        mounts = query("docker", "inspect", "--format",
                         '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}} {{end}}{{end}}', *nodes)
        return mounts.split()


def _exists(kind_of: str, name: str) -> bool:
    """Whether Docker has that volume or network; CommandFailed when Docker cannot say."""
    found = run(["docker", kind_of, "inspect", name], check=False, timeout=60)
    if found.returncode == 0:
        return True
    if ABSENT.search(found.stderr):
        return False
    raise CommandFailed(["docker", kind_of, "inspect", name], found.returncode, found.stdout, found.stderr)


def query(*argv: str) -> str:
    """stdout of a `docker`/`kind` listing; CommandFailed when it fails (a listing that could not be
    read must fail the audit, not read as "nothing left")."""
    return run(list(argv), timeout=180).stdout


def _docker(*argv: str) -> str:
    """A best-effort removal for `purge` (what is already gone fails, and that is fine)."""
    return run(list(argv), check=False, timeout=180).stdout
