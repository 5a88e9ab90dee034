"""The web container's environment on a cluster, from `[stages.k8s] env`.

"run" (the default) sets only what a run alone knows (`${release}`, `${token}`): their manifests wire
the database. "app" sets every `[app.env]` variable, `${db.host}` being the Service that selects the
database's pods in the run's namespace, for manifests that hard-code another cluster's address (a
Deployment with `MYSQL_HOST: 10.98.19.211`, its author's ClusterIP). Each value of theirs this
replaces is said in the bring-up notes (`env_notes`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.appenv import DatabaseEndpoint, app_env
from harness.config import K8sSettings, Settings, placeholders
from harness.errors import ConfigError
from harness.services.engine import endpoint, engine_for

if TYPE_CHECKING:
    from harness.k8s.manifests import Rendered

Doc = dict[str, Any]
#: placeholders whose values never go into a note
SECRETS = frozenset({"db.password", "db.url", "token"})


def web_env(theirs: Rendered, settings: Settings, release: str) -> dict[str, str]:
    """What the run sets in the web container: the run's variables (`env = "run"`: `${release}`,
    `${token}`), or every `[app.env]` variable (`env = "app"`) with the database's Service for `${db.*}`."""
    spec = k8s_spec(settings)
    if spec.env == "run":
        return app_env(settings, stage="k8s", release=release, run_only=True)
    return app_env(settings, stage="k8s", release=release, db=database_endpoint(theirs, settings),
                   port=settings.app.port, host="0.0.0.0")


def database_endpoint(theirs: Rendered, settings: Settings) -> DatabaseEndpoint:
    """`${db.*}` on the cluster: the Service that selects the pods of `stages.k8s.database` (by its
    short name: the app runs in the same namespace), its port, and `[database]`'s account and name."""
    service = database_service(theirs, k8s_spec(settings))
    ports = service["spec"].get("ports") or []
    if not ports:
        raise ConfigError(f"stages.k8s.env: Service {name_of(service)!r} of the database has no ports")
    return endpoint(engine_for(settings), settings.database, name_of(service), int(ports[0]["port"]))


def database_service(theirs: Rendered, spec: K8sSettings) -> Doc:
    """The Service whose selector picks the database workload's pods (a load-balancing one before
    a headless one); a ConfigError naming `stages.k8s.env` when there is none."""
    workload = theirs.named(spec.database, ("StatefulSet", "Deployment"), key="stages.k8s.database")
    labels = ((workload["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
    found = [doc for doc in theirs.docs if doc.get("kind") == "Service"
             and (selector := (doc.get("spec") or {}).get("selector"))
             and all(labels.get(key) == value for key, value in selector.items())]
    if not found:
        raise ConfigError(f"stages.k8s.env = \"app\": no Service selects the pods of {workload['kind']} "
                          f"{spec.database!r} (labels {labels}): ${{db.host}} needs one")
    found.sort(key=lambda doc: doc["spec"].get("clusterIP") == "None")
    return found[0]


def env_notes(theirs: Rendered, settings: Settings, release: str) -> list[str]:
    """For the bring-up notes: each variable of theirs that `env = "app"` overrides, with both values."""
    spec = k8s_spec(settings)
    if spec.env == "run":
        return []
    web = theirs.named(spec.deployment, ("Deployment",), key="stages.k8s.deployment")
    containers = web["spec"]["template"]["spec"].get("containers") or []
    declared = {entry["name"]: entry for entry in (containers[0].get("env") or [])} if containers else {}
    notes = []
    for name, value in web_env(theirs, settings, release).items():
        entry = declared.get(name)
        if entry is not None and entry.get("value") != value:
            secret = bool(placeholders(settings.app.env[name]) & SECRETS)
            theirs_was = ("a valueFrom reference" if "value" not in entry else "another value" if secret
                          else repr(entry["value"]))
            notes.append(f"overrode {name} ({theirs_was} in their Deployment {spec.deployment}) with "
                         f"{'the run' + chr(39) + 's value' if secret else repr(value)} from [app.env] "
                         f"({settings.app.env[name]})")
    return notes


def k8s_spec(settings: Settings) -> K8sSettings:
    if settings.stages.k8s is None:
        raise ConfigError("stageproof.toml has no [stages.k8s] section")
    return settings.stages.k8s


def name_of(doc: Doc) -> str:
    return str((doc.get("metadata") or {}).get("name", ""))
