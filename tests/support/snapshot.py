"""What a run leaves of a cluster it does not own: a snapshot of the cluster's namespaces and the
objects in them, taken before and compared after (the run's own namespace must then be gone).

Objects are compared by uid (nothing re-created), and those that change only when someone writes
them (ConfigMaps, Secrets, Services, ServiceAccounts, workloads' specs) by resourceVersion or
generation. Pods, Nodes, Leases and Events change by themselves and are compared by uid or not at all.

The after-snapshot waits until removing the run's namespace has settled: the namespace is gone, the
PersistentVolumes its claims had are reclaimed, and two snapshots `SETTLE_INTERVAL` apart agree (the
storage provisioner's helper pods, which delete the volume data, have come and gone). Nothing is
exempted from the comparison: what never settles is a timeout naming the last differences.

    python -m tests.support.snapshot save FILE     # the cluster [stages.k8s] context names
    python -m tests.support.snapshot check FILE    # ... and its namespace must be gone
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.config import load_settings
from harness.core.wait import NotYet, wait_until
from harness.k8s.api import Api, connect

Snapshot = dict[str, dict[str, str]]
SETTLE_INTERVAL = 3.0
SETTLE_TIMEOUT = 180.0


def _versioned(item: Any) -> str:
    return f"{item.metadata.uid}@{item.metadata.resource_version}"


def _generation(item: Any) -> str:
    return f"{item.metadata.uid}@gen{item.metadata.generation}"


def _uid(item: Any) -> str:
    return str(item.metadata.uid)


def _kinds(api: Api) -> dict[str, tuple[Callable[..., Any], Callable[[Any], str]]]:
    """kind -> (list in all namespaces, what of an object must stay the same)."""
    return {
        "ConfigMap": (api.core.list_config_map_for_all_namespaces, _versioned),
        "Secret": (api.core.list_secret_for_all_namespaces, _versioned),
        "Service": (api.core.list_service_for_all_namespaces, _versioned),
        "ServiceAccount": (api.core.list_service_account_for_all_namespaces, _versioned),
        "Deployment": (api.apps.list_deployment_for_all_namespaces, _generation),
        "DaemonSet": (api.apps.list_daemon_set_for_all_namespaces, _generation),
        "StatefulSet": (api.apps.list_stateful_set_for_all_namespaces, _generation),
        "Pod": (api.core.list_pod_for_all_namespaces, _uid),
        "PersistentVolumeClaim": (api.core.list_persistent_volume_claim_for_all_namespaces, _versioned),
    }


def take(api: Api) -> Snapshot:
    """{namespace: {"Kind/name": identity}}, plus "(cluster)" for namespaces and nodes."""
    found: Snapshot = {"(cluster)": {}}
    for namespace in api.core.list_namespace().items:
        found["(cluster)"][f"Namespace/{namespace.metadata.name}"] = _uid(namespace)
        found.setdefault(namespace.metadata.name, {})
    for node in api.core.list_node().items:
        found["(cluster)"][f"Node/{node.metadata.name}"] = _uid(node)
    for volume in api.core.list_persistent_volume().items:
        found["(cluster)"][f"PersistentVolume/{volume.metadata.name}"] = _uid(volume)
    for kind, (list_all, identity) in _kinds(api).items():
        for item in list_all().items:
            found.setdefault(item.metadata.namespace, {})[f"{kind}/{item.metadata.name}"] = identity(item)
    return found


def differences(before: Snapshot, after: Snapshot, *, gone: str) -> list[str]:
    """Every object added, removed or changed outside namespace `gone`, and `gone` if it is still there."""
    problems = [f"namespace {gone} is still there"] if f"Namespace/{gone}" in after.get("(cluster)", {}) else []
    for scope in sorted((set(before) | set(after)) - {gone}):
        old, new = before.get(scope, {}), after.get(scope, {})
        for key in sorted(set(old) | set(new)):
            if key == f"Namespace/{gone}":
                continue
            if old.get(key) != new.get(key):
                problems.append(f"{scope}: {key}: {old.get(key, '(absent)')} -> {new.get(key, '(absent)')}")
    return problems


def settled(take_now: Callable[[], Snapshot], *, gone: str, claims_left: Callable[[], list[str]],
            interval: float = SETTLE_INTERVAL, timeout: float = SETTLE_TIMEOUT) -> Snapshot:
    """The snapshot once the run's removal has settled: namespace `gone` absent, no volume still
    bound to a claim of it (`claims_left` names them), and two snapshots `interval` apart equal."""
    def namespace_and_volumes_gone() -> None:
        if f"Namespace/{gone}" in take_now()["(cluster)"]:
            raise NotYet(f"namespace {gone} is still there")
        if volumes := claims_left():
            raise NotYet(f"volumes of namespace {gone} not reclaimed yet: {', '.join(volumes)}")

    wait_until(namespace_and_volumes_gone, what=f"namespace {gone} and its volumes to be removed", timeout=timeout,
               interval=interval, max_interval=interval)
    last: list[Snapshot] = [take_now()]

    def stable() -> Snapshot:
        now = take_now()
        changed = differences(last[0], now, gone=gone)
        last[0] = now
        if changed:
            raise NotYet(f"still changing: {'; '.join(changed[:5])}")
        return now

    return wait_until(stable, what=f"the cluster to settle after removing namespace {gone} (two snapshots "
                      f"{interval:g}s apart agreeing)", timeout=timeout, interval=interval, max_interval=interval)


def volumes_of(api: Api, namespace: str) -> Callable[[], list[str]]:
    """The PersistentVolumes still bound (claimRef) to a claim in `namespace`."""
    def claimed() -> list[str]:
        return sorted(volume.metadata.name for volume in api.core.list_persistent_volume().items
                      if volume.spec.claim_ref is not None and volume.spec.claim_ref.namespace == namespace)

    return claimed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.snapshot", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["save", "check"])
    parser.add_argument("file", type=Path)
    parser.add_argument("--config", type=Path, default=None, help="default: $STAGEPROOF_CONFIG or ./stageproof.toml")
    args = parser.parse_args(argv)
    spec = load_settings(args.config).stages.k8s
    if spec is None or not spec.context:
        raise SystemExit("stages.k8s.context is not set ($STAGEPROOF_K8S_CONTEXT): which cluster to snapshot?")
    api = connect(Path(spec.kubeconfig).expanduser() if spec.kubeconfig else None, spec.context)
    if args.action == "check":
        now = settled(lambda: take(api), gone=spec.namespace, claims_left=volumes_of(api, spec.namespace))
    else:
        now = take(api)
    objects = sum(len(scope) for scope in now.values())
    if args.action == "save":
        args.file.write_text(json.dumps(now, indent=1, sort_keys=True))
        print(f"[snapshot] {len(now) - 1} namespaces, {objects} objects saved to {args.file}")
        return 0
    problems = differences(json.loads(args.file.read_text()), now, gone=spec.namespace)
    for problem in problems:
        print(f"[snapshot] CHANGED {problem}")
    print(f"[snapshot] {len(now) - 1} namespaces, {objects} objects compared: {len(problems)} difference(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
