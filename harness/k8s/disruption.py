"""What the run's overlay adds so the web pods survive voluntary and involuntary disruption as
production expects, and the one release that must not: pure functions over rendered manifests.

* a PodDisruptionBudget for the web Deployment when the team has none: a drain then evicts its
  pods one at a time, each replaced before the next goes;
* short tolerations for an unreachable or not-ready node: the pods of a lost node are evicted
  and rescheduled after `eviction_seconds`, not Kubernetes' default five minutes;
* a broken release (the emergency-patching check): the same image, whose container cannot
  start, under a short progress deadline.
"""

from __future__ import annotations

from typing import Any

Doc = dict[str, Any]
BUDGET_NAME = "stageproof-web"
NODE_TAINTS = ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")
#: what the broken release runs instead of the app: no such file, so the container never starts
BROKEN_COMMAND = ["/stageproof-broken-release"]


def has_budget(docs: tuple[Doc, ...], web: Doc) -> bool:
    """True when one of the team's PodDisruptionBudgets selects the web pods (by matchLabels;
    one with matchExpressions is taken as theirs for the web pods too)."""
    labels = web["spec"]["template"].get("metadata", {}).get("labels") or {}
    for doc in docs:
        if doc.get("kind") != "PodDisruptionBudget":
            continue
        selector = doc.get("spec", {}).get("selector") or {}
        wanted = selector.get("matchLabels") or {}
        if selector.get("matchExpressions") or (wanted and wanted.items() <= labels.items()):
            return True
    return False


def budget(web: Doc) -> Doc:
    """A budget of one unavailable web pod at a time, never blocking (a lone replica can move)."""
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": BUDGET_NAME},
            "spec": {"maxUnavailable": 1, "selector": web["spec"]["selector"]}}


def eviction_ops(web: Doc, seconds: int) -> list[Doc]:
    """JSON 6902 ops: a NoExecute toleration of `seconds` for each node taint the team's pod
    template does not already tolerate (theirs are kept)."""
    present = web["spec"]["template"]["spec"].get("tolerations")
    tolerated = {toleration.get("key") for toleration in present or []}
    new = [{"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}
           for key in NODE_TAINTS if key not in tolerated]
    if not new:
        return []
    if present is None:
        return [{"op": "add", "path": "/spec/template/spec/tolerations", "value": new}]
    return [{"op": "add", "path": "/spec/template/spec/tolerations/-", "value": toleration} for toleration in new]


def broken_ops(deadline: int) -> list[Doc]:
    """JSON 6902 ops of the broken release: the first container's command cannot start, and
    the rollout is declared stalled after `deadline` seconds."""
    return [{"op": "add", "path": "/spec/progressDeadlineSeconds", "value": deadline},
            {"op": "add", "path": "/spec/template/spec/containers/0/command", "value": BROKEN_COMMAND}]


def blocking_spread(web: Doc) -> list[str]:
    """The web pods' topology spread constraints over nodes that would keep a drained node's pods
    from being rescheduled: DoNotSchedule counts a cordoned node as a domain with no pods unless
    nodeTaintsPolicy is Honor."""
    constraints = web["spec"]["template"]["spec"].get("topologySpreadConstraints") or []
    return [f"topologyKey {c.get('topologyKey')}, maxSkew {c.get('maxSkew')}: whenUnsatisfiable DoNotSchedule "
            "without nodeTaintsPolicy: Honor" for c in constraints
            if c.get("whenUnsatisfiable") == "DoNotSchedule" and c.get("nodeTaintsPolicy") != "Honor"]


def max_unavailable(strategy: Doc | None, replicas: int) -> int:
    """How many web pods a rolling update may take away before new ones are Ready (Kubernetes'
    rule: a percentage rounds down; the default is 25%)."""
    rolling = (strategy or {}).get("rollingUpdate") or {}
    if (strategy or {}).get("type") == "Recreate":
        return replicas
    value = rolling.get("maxUnavailable", "25%")
    if isinstance(value, str) and value.endswith("%"):
        return replicas * int(value[:-1]) // 100
    return int(value)
