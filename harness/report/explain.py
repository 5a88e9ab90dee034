"""Why a chaos check failed, from the team's own rendered manifests: the facts that explain it (each
an object, a field and its value) and the smallest change to their files that addresses them, as a
patch to read (a kustomize strategic-merge patch, or Helm values when the chart has the keys), never
applied. Pure functions over a list of manifest dicts; with no such fact, the explanation says so.

Kubernetes' rules it needs (a budget selecting the pods, maxUnavailable's rounding, a spread that
blocks a drain) are restated here, in manifest_rules.py: the report layer sits below harness.k8s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.core import goyaml
from harness.report.manifest_rules import blocking_spread, has_budget, max_unavailable

Doc = dict[str, Any]
#: a check's name -> the disruption it measures (the first part found in the name wins)
DISRUPTIONS = (("database_pod_kill", "database pod kill"), ("pod_kill", "pod kill"), ("rolling_update", "rollout"),
               ("rollback", "rollback"), ("scaling", "scale down"), ("code_change", "code change"),
               ("infrastructure_change", "infrastructure change"), ("draining", "drain"),
               ("node_failure", "node failure"), ("broken_release", "broken release"))
ROLLOUT = frozenset({"replicas", "readiness", "prestop", "grace", "strategy", "server"})
#: which facts can explain each disruption's failure
CAUSES: dict[str, frozenset[str]] = {
    "pod kill": frozenset({"replicas", "readiness", "prestop", "grace", "server"}),
    "rollout": ROLLOUT, "rollback": ROLLOUT, "code change": ROLLOUT, "infrastructure change": ROLLOUT,
    "scale down": frozenset({"readiness", "prestop", "grace", "server"}),
    "drain": frozenset({"replicas", "readiness", "prestop", "grace", "budget", "spread", "server"}),
    "node failure": frozenset({"replicas", "readiness", "spread"}),
    "database pod kill": frozenset({"readiness", "liveness"}),
    "broken release": frozenset({"readiness", "strategy"}),
}
DEV_SERVERS = (("flask", "run"), ("manage.py", "runserver"))
PRESTOP_SECONDS, GRACE_MARGIN = 5, 25


@dataclass(frozen=True)
class Fact:
    """One field of one object in the rendered manifests, and what it does to the disruption."""

    object: str  # "Deployment/web"
    field: str  # "spec.replicas"
    value: str
    meaning: str

    def __str__(self) -> str:
        return f"{self.object} {self.field} = {self.value}: {self.meaning}"


@dataclass(frozen=True)
class Explanation:
    check: str
    disruption: str | None
    facts: list[Fact]
    patch: str | None

    def text(self) -> str:
        if not self.facts:
            return (f"nothing in the rendered manifests explains a failed {self.disruption or self.check}: "
                    "replicas, probes, preStop, grace period, budget, strategy and spread are as they should be")
        lines = ["what in your manifests explains it:", *(f"  - {fact}" for fact in self.facts)]
        return "\n".join([*lines, "the smallest change to your files (not applied):", self.patch or ""])


def disruption_of(check: str) -> str | None:
    return next((what for part, what in DISRUPTIONS if part in check), None)


def explain(check_name: str, docs: Sequence[Doc], web_deployment_name: str, *, ready_path: str = "/",
            health_path: str | None = None, values: Mapping[str, Any] | None = None,
            image_command: Sequence[str] | None = None) -> Explanation:
    """The facts of `docs` (the team's rendered manifests) that explain why `check_name` failed.
    `values`: the chart's default values (a Helm values snippet then, where it has the keys);
    `image_command`: the image's CMD, when the manifests set no command (the server can then be told)."""
    what = disruption_of(check_name)
    web = next((d for d in docs if d.get("kind") == "Deployment" and _name(d) == web_deployment_name), None)
    if what is None or web is None:
        return Explanation(check_name, what, [], None)
    found: list[tuple[str, Fact, Doc]] = []
    for cause in (cause for cause in FINDERS if cause in CAUSES[what]):
        for fact, change in FINDERS[cause](web, docs, ready_path=ready_path, health_path=health_path,
                                           image_command=image_command):
            found.append((cause, fact, change))
    facts = [fact for _, fact, _ in found]
    if not found:
        return Explanation(check_name, what, [], None)
    return Explanation(check_name, what, facts, render_patch(web, [(c, ch) for c, _, ch in found], values))


# -- the facts ------------------------------------------------------------------------------------
Found = list[tuple[Fact, Doc]]


def _replicas(web: Doc, docs: Sequence[Doc], **_: Any) -> Found:
    replicas = web["spec"].get("replicas", 1)
    if replicas >= 2:
        return []
    shown = replicas if "replicas" in web["spec"] else "(absent: 1)"
    return [(Fact(_obj(web), "spec.replicas", str(shown), "one pod: while it is replaced or moved, nothing serves"),
             {"spec": {"replicas": 2}})]


def _readiness(web: Doc, docs: Sequence[Doc], *, ready_path: str, **_: Any) -> Found:
    container = _container(web)
    if container.get("readinessProbe"):
        return []
    port = (container.get("ports") or [{}])[0].get("containerPort", 80)
    probe = {"httpGet": {"path": ready_path, "port": port}, "periodSeconds": 2}
    return [(Fact(_obj(web), f"{_field(web)}.readinessProbe", "(absent)",
                  "a new pod gets traffic as soon as its process starts, before the app answers"),
             _container_patch(web, {"readinessProbe": probe}))]


def _prestop(web: Doc, docs: Sequence[Doc], **_: Any) -> Found:
    if (_container(web).get("lifecycle") or {}).get("preStop"):
        return []
    return [(Fact(_obj(web), f"{_field(web)}.lifecycle.preStop", "(absent)",
                  "the pod hears SIGTERM while the Service still sends it requests: those fail"),
             _container_patch(web, {"lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_SECONDS}}}}))]


def _grace(web: Doc, docs: Sequence[Doc], **_: Any) -> Found:
    pod = web["spec"]["template"]["spec"]
    grace = pod.get("terminationGracePeriodSeconds", 30)
    sleep = ((_container(web).get("lifecycle") or {}).get("preStop") or {}).get("sleep", {}).get("seconds", 0)
    if grace > sleep:
        return []
    return [(Fact(_obj(web), "spec.template.spec.terminationGracePeriodSeconds", str(grace),
                  f"no longer than the preStop sleep ({sleep}s): the app is killed before it can finish requests"),
             {"spec": {"template": {"spec": {"terminationGracePeriodSeconds": sleep + GRACE_MARGIN}}}})]


def _strategy(web: Doc, docs: Sequence[Doc], **_: Any) -> Found:
    strategy = web["spec"].get("strategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    fix = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}}}
    if strategy.get("type") == "Recreate":
        return [(Fact(_obj(web), "spec.strategy.type", "Recreate",
                      "every old pod stops before a new one starts: each rollout is an outage"), fix)]
    if rolling.get("maxUnavailable") in (0, "0%"):
        return []
    replicas = max(2, web["spec"].get("replicas", 1))
    value = rolling.get("maxUnavailable", "(absent: 25%)")
    return [(Fact(_obj(web), "spec.strategy.rollingUpdate.maxUnavailable", str(value),
                  f"not pinned to 0: a rollout may take pods away before their replacements are Ready "
                  f"({max_unavailable(strategy, replicas)} of {replicas}, {max_unavailable(strategy, 5)} of 5 as the "
                  "scaling check runs)"),
             {"spec": {"strategy": {"rollingUpdate": {"maxUnavailable": 0, **(
                 {"maxSurge": 1} if rolling.get("maxSurge") in (0, "0%") else {})}}}})]


def _budget(web: Doc, docs: Sequence[Doc], **_: Any) -> Found:
    if has_budget(tuple(docs), web):
        replicas = web["spec"].get("replicas", 1)
        blocking = [d for d in docs if d.get("kind") == "PodDisruptionBudget"
                    and isinstance(least := d.get("spec", {}).get("minAvailable"), int) and least >= replicas]
        return [(Fact(_obj(d), "spec.minAvailable", str(d["spec"]["minAvailable"]),
                      f"with {replicas} replicas a drain can never evict a web pod"),
                 {"spec": {"replicas": d["spec"]["minAvailable"] + 1}}) for d in blocking]
    labels = web["spec"]["selector"].get("matchLabels", {})
    budget = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": _name(web)},
              "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}}}
    return [(Fact("PodDisruptionBudget", "(any) spec.selector", "(none selects the web pods)",
                  "a drain may evict every web pod at once"), {"__resource__": budget})]


def _spread(web: Doc, docs: Sequence[Doc], **_: Any) -> Found:
    pod = web["spec"]["template"]["spec"]
    blocking = blocking_spread(web)
    if blocking:
        return [(Fact(_obj(web), "spec.template.spec.topologySpreadConstraints", line,
                      "a drained node's pods cannot be scheduled elsewhere"), {}) for line in blocking]
    spreads = any(c.get("topologyKey") == "kubernetes.io/hostname" for c in pod.get("topologySpreadConstraints") or [])
    if spreads or (pod.get("affinity") or {}).get("podAntiAffinity"):
        return []
    labels = web["spec"]["selector"].get("matchLabels", {})
    spread = {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
              "labelSelector": {"matchLabels": labels}}
    return [(Fact(_obj(web), "spec.template.spec.topologySpreadConstraints / affinity.podAntiAffinity", "(absent)",
                  "nothing keeps the replicas on different nodes: one node can hold them all"),
             {"spec": {"template": {"spec": {"topologySpreadConstraints": [spread]}}}})]


def _server(web: Doc, docs: Sequence[Doc], *, image_command: Sequence[str] | None = None, **_: Any) -> Found:
    container = _container(web)
    own = [*(container.get("command") or []), *(container.get("args") or [])]
    command, where = (own, f"{_field(web)}.command") if own else (list(image_command or []), "(the image's CMD)")
    words = [str(word).rsplit("/", 1)[-1] for word in command]
    script = len(words) >= 2 and words[0].startswith("python") and words[1].endswith(".py") and \
        "gunicorn" not in words
    dev = script or any(all(part in words for part in server) for server in DEV_SERVERS)
    if not dev:
        return []
    return [(Fact(_obj(web), where, " ".join(map(str, command)),
                  "a single-process development server (Flask's app.run()/flask run): no graceful shutdown, so a "
                  "stopping pod drops what it is serving; a production server (gunicorn) finishes it"), {})]


def _liveness(web: Doc, docs: Sequence[Doc], *, ready_path: str, health_path: str | None = None,
              **_: Any) -> Found:
    container = _container(web)
    live = ((container.get("livenessProbe") or {}).get("httpGet") or {}).get("path")
    ready = ((container.get("readinessProbe") or {}).get("httpGet") or {}).get("path")
    if live is None or live != ready:
        return []
    fix = {"livenessProbe": {"httpGet": {"path": health_path}}} if health_path else {}
    return [(Fact(_obj(web), f"{_field(web)}.livenessProbe.httpGet.path", live,
                  "the same path as readiness: when readiness reports the database away, liveness restarts the pods"),
             _container_patch(web, fix) if fix else {})]


FINDERS = {"replicas": _replicas, "readiness": _readiness, "prestop": _prestop, "grace": _grace,
           "strategy": _strategy, "budget": _budget, "spread": _spread, "server": _server, "liveness": _liveness}


# -- the patch ----------------------------------------------------------------------------------
#: a cause -> the conventional values key of a chart (used only when the chart's values have it) and its value
HELM_KEYS: dict[str, tuple[str, Callable[[Doc], Any]]] = {
    "replicas": ("replicaCount", lambda change: change["spec"]["replicas"]),
    "prestop": ("preStopSleepSeconds", lambda change: PRESTOP_SECONDS),
    "budget": ("podDisruptionBudget", lambda change: {"enabled": True})}


def render_patch(web: Doc, changes: list[tuple[str, Doc]], values: Mapping[str, Any] | None) -> str:
    """One strategic-merge patch of the web Deployment (plus new objects), or, for a chart, the
    values it has keys for and the patch for the rest (through a post-renderer)."""
    parts: list[str] = []
    if values is not None:
        helm = {key: pick(change) for cause, change in changes if cause in HELM_KEYS
                for key, pick in [HELM_KEYS[cause]] if key in values}
        changes = [(cause, change) for cause, change in changes if not (cause in HELM_KEYS and
                                                                        HELM_KEYS[cause][0] in values)]
        if helm:
            parts.append("# Helm values (helm upgrade -f this.yaml):\n" + goyaml.dump(helm, sort_keys=False))
    merged: Doc = {}
    for _, change in changes:
        if "__resource__" in change:
            parts.append("# a new object (add it to your manifests / kustomization resources):\n"
                         + goyaml.dump(change["__resource__"], sort_keys=False))
        else:
            _merge(merged, change)
    if merged:
        head = {"apiVersion": web.get("apiVersion", "apps/v1"), "kind": "Deployment", "metadata": {"name": _name(web)}}
        parts.append(f"# kustomize strategic-merge patch of {_obj(web)} (kustomization.yaml: patches: - path: ...):\n"
                     + goyaml.dump({**head, **merged}, sort_keys=False))
    return "---\n".join(parts)


def _merge(into: Doc, change: Doc) -> None:
    for key, value in change.items():
        if key == "containers" and key in into:
            into[key][0] = {**into[key][0], **value[0]}
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _container_patch(web: Doc, fields: Doc) -> Doc:
    return {"spec": {"template": {"spec": {"containers": [{"name": _container(web).get("name"), **fields}]}}}}


def _container(web: Doc) -> Doc:
    containers = web["spec"]["template"]["spec"].get("containers") or [{}]
    found: Doc = next((c for c in containers if c.get("name") == _name(web)), containers[0])
    return found


def _field(web: Doc) -> str:
    return f"spec.template.spec.containers[{_container(web).get('name')}]"


def _name(doc: Doc) -> str:
    return str((doc.get("metadata") or {}).get("name", ""))


def _obj(doc: Doc) -> str:
    return f"{doc.get('kind')}/{_name(doc)}"
