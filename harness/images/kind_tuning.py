"""What a test cluster's `kind create` and `kind load` wait for, and what shortens them.

Measured with our node image, 3 nodes (1 control plane, 2 workers), on the 2-core machine while
other sessions kept its load average at 18-32 (so every figure moved by +-30 s between runs):

- kind already runs `kubeadm init` and `kubeadm join` with `--skip-phases=preflight`, so
  `ignorePreflightErrors` changes nothing, and every image is already in the node (nothing pulls).
- Node Ready (what `--wait` waits for) comes within a second of our CNI agent writing its conflist;
  the agent's pod waited 16-34 s for containerd to unpack its image (~260 MB) on each node. That is
  fixed in the node image (kind_node.assemble_node imports images unpacked): the "Waiting for
  control-plane = Ready" phase went from 11-41 s to 2-5 s.
- etcd `unsafe-no-fsync`, controller-manager `node-monitor-period: 1s` and kubelet
  `nodeStatusUpdateFrequency: 1s` (TEST_CLUSTER_PATCHES): "Starting control-plane" took 31 and 67 s
  with them, 50 and 59 s without; within the noise, so not applied by default.
- The control plane keeps kubeadm's NoSchedule taint when there are workers, so the app's pods
  only run on workers: `kind load --nodes <workers>` of the app image (149 MB) took 19-21 s where
  all three nodes took 31-36 s (`load_node_args`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: kubeadm patches (v1beta3: the API kind 0.33 writes for Kubernetes 1.34) for throwaway clusters;
#: measured without a clear gain (see above): include them only after an A/B on a quiet machine.
TEST_CLUSTER_PATCHES: tuple[str, ...] = (
    "kind: ClusterConfiguration\n"
    "etcd:\n  local:\n    extraArgs:\n      unsafe-no-fsync: \"true\"\n"
    "controllerManager:\n  extraArgs:\n    node-monitor-period: 1s\n",
    "kind: KubeletConfiguration\nnodeStatusUpdateFrequency: 1s\n",
)


def with_patches(config: Mapping[str, Any], patches: Sequence[str] = TEST_CLUSTER_PATCHES) -> dict[str, Any]:
    """`config` (a kind Cluster config; not changed) with `patches` after its own kubeadm patches."""
    tuned = dict(config)
    tuned["kubeadmConfigPatches"] = [*(config.get("kubeadmConfigPatches") or []), *patches]
    return tuned


def node_names(cluster: str, config: Mapping[str, Any]) -> dict[str, list[str]]:
    """The node container names kind gives `config`'s nodes, by role: `<cluster>-control-plane`,
    `<cluster>-control-plane2`, ..., `<cluster>-worker`, `<cluster>-worker2`, ..."""
    names: dict[str, list[str]] = {"control-plane": [], "worker": []}
    for node in config.get("nodes") or [{"role": "control-plane"}]:
        role = node.get("role", "control-plane")
        same = names.setdefault(role, [])
        same.append(f"{cluster}-{role}{len(same) + 1 if same else ''}")
    return names


def load_node_args(cluster: str, config: Mapping[str, Any]) -> list[str]:
    """`kind load docker-image` options for an app image: only the workers when there are any
    (the control plane is tainted NoSchedule then), else every node (no option)."""
    workers = node_names(cluster, config)["worker"]
    return ["--nodes", ",".join(workers)] if workers else []
