"""What a run leaves of a cluster it does not own: a snapshot of the cluster's namespaces and the
objects in them, taken before and compared after (the run's own namespace must then be gone).

Objects are compared by uid (nothing re-created), and those that change only when someone writes
them (ConfigMaps, Secrets, Services, ServiceAccounts, workloads' specs) by resourceVersion or
generation. Pods, Nodes, Leases and Events change by themselves and are compared by uid or not at all.

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
from harness.k8s.api import Api, connect
from harness.k8s.cluster import user_context

Snapshot = dict[str, dict[str, str]]


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.snapshot", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["save", "check"])
    parser.add_argument("file", type=Path)
    parser.add_argument("--config", type=Path, default=None, help="default: $STAGEPROOF_CONFIG or ./stageproof.toml")
    args = parser.parse_args(argv)
    spec = load_settings(args.config).stages.k8s
    theirs = user_context(spec) if spec is not None else None
    if spec is None or theirs is None:
        raise SystemExit("stages.k8s.context is not set ($STAGEPROOF_K8S_CONTEXT): which cluster to snapshot?")
    context, kubeconfig, _ = theirs
    now = take(connect(kubeconfig, context))
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
