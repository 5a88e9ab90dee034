"""Kubernetes' rules over rendered manifests that the explanations need: which budget selects the
web pods, how many pods a rolling update may take away, which spread keeps a drained node's pods
from moving. The same rules as harness.k8s.disruption's (which the run's overlay uses), restated
because the report layer may not import harness.k8s; tests/unit/test_ledger_explain.py holds the
two to the same answers."""

from __future__ import annotations

from typing import Any

Doc = dict[str, Any]


def has_budget(docs: tuple[Doc, ...], web: Doc) -> bool:
    """True when a PodDisruptionBudget selects the web pods (matchLabels; matchExpressions counts)."""
    labels = web["spec"]["template"].get("metadata", {}).get("labels") or {}
    for doc in docs:
        selector = (doc.get("spec") or {}).get("selector") or {} if doc.get("kind") == "PodDisruptionBudget" else None
        wanted = (selector or {}).get("matchLabels") or {}
        if selector is not None and (selector.get("matchExpressions") or (wanted and wanted.items() <= labels.items())):
            return True
    return False


def max_unavailable(strategy: Doc | None, replicas: int) -> int:
    """Pods a rolling update may take away before new ones are Ready (a percentage rounds down; 25%)."""
    if (strategy or {}).get("type") == "Recreate":
        return replicas
    value = ((strategy or {}).get("rollingUpdate") or {}).get("maxUnavailable", "25%")
    if isinstance(value, str) and value.endswith("%"):
        return replicas * int(value[:-1]) // 100
    return int(value)


def blocking_spread(web: Doc) -> list[str]:
    """Spread constraints that keep a drained node's pods unscheduled: DoNotSchedule counts a cordoned
    node as a domain with no pods unless nodeTaintsPolicy is Honor."""
    constraints = web["spec"]["template"]["spec"].get("topologySpreadConstraints") or []
    return [f"topologyKey {c.get('topologyKey')}, maxSkew {c.get('maxSkew')}: whenUnsatisfiable DoNotSchedule "
            "without nodeTaintsPolicy: Honor" for c in constraints
            if c.get("whenUnsatisfiable") == "DoNotSchedule" and c.get("nodeTaintsPolicy") != "Honor"]
