"""The team's manifests, applied unchanged under an overlay that only the run writes.

`render_theirs` runs `kubectl kustomize` on `stages.k8s.manifests` (their kustomization, or one
generated for a plain folder of YAML files). `overlay` computes, from that render, the run's
kustomization on top of it: the namespace, the app image the run built (never `:latest`), a run
label, `imagePullPolicy: IfNotPresent` on every container (images are loaded, never pulled), no
Namespace object (the stage creates its own), the web Service as a NodePort, and the release on
the web Deployment's pod template (an annotation and the app's run variables, e.g. RELEASE_ID),
so a new release is the same apply with another release id and rolls the Deployment; a
disruption budget and short node-loss tolerations for the web pods (harness/k8s/disruption.py).
On a cluster with stageproof's ingress controller, an Ingress of that class routes `/` to the web
Service too.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.appenv import app_env
from harness.config import K8sSettings, Settings
from harness.core.ownership import RUN_LABEL
from harness.core.run import run
from harness.errors import ConfigError
from harness.k8s import disruption

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
KUSTOMIZE = ("kustomize", "--load-restrictor", "LoadRestrictionsNone")
RELEASE_ANNOTATION = "io.stageproof/release"
THEIRS = "theirs.yaml"
INGRESS = "ingress.yaml"
BUDGET = "budget.yaml"
#: the Ingress the run adds (on a cluster with stageproof's ingress controller)
INGRESS_NAME = "stageproof"
#: where each workload kind keeps its pod spec (JSON pointer)
POD_SPECS = {"Deployment": "/spec/template/spec", "StatefulSet": "/spec/template/spec",
             "DaemonSet": "/spec/template/spec", "ReplicaSet": "/spec/template/spec", "Job": "/spec/template/spec",
             "CronJob": "/spec/jobTemplate/spec/template/spec", "Pod": "/spec"}
Doc = dict[str, Any]


@dataclass(frozen=True)
class Kubectl:
    """How to run kubectl against one cluster: binary, kubeconfig and (optionally) a context."""

    binary: str
    kubeconfig: Path | None = None
    context: str | None = None

    def argv(self, *args: str) -> list[str]:
        cmd = [self.binary]
        if self.kubeconfig is not None:
            cmd += ["--kubeconfig", str(self.kubeconfig)]
        if self.context is not None:
            cmd += ["--context", self.context]
        return [*cmd, *args]

    def __call__(self, *args: str, timeout: float = 300, check: bool = True) -> str:
        proc = run(self.argv(*args), timeout=timeout, check=check)
        return proc.stdout + (proc.stderr if proc.returncode else "")

    def kustomize(self, folder: Path) -> str:
        """`kubectl kustomize` of `folder` (files may live outside it); the YAML on stdout."""
        return run(self.argv(*KUSTOMIZE, str(folder)), timeout=120).stdout


@dataclass(frozen=True)
class Rendered:
    """The team's manifests as kustomize renders them: the YAML text and its objects."""

    source: Path
    text: str
    docs: tuple[Doc, ...]

    def find(self, kind: str, name: str) -> Doc | None:
        return next((doc for doc in self.docs if doc.get("kind") == kind and _name(doc) == name), None)

    def named(self, name: str, kinds: tuple[str, ...], *, key: str) -> Doc:
        """The one object called `name` of one of `kinds`; a ConfigError naming `key` otherwise."""
        found = [doc for doc in self.docs if doc.get("kind") in kinds and _name(doc) == name]
        if not found:
            present = sorted(f"{doc['kind']}/{_name(doc)}" for doc in self.docs if doc.get("kind") in kinds)
            raise ConfigError(f"{key}: no {' or '.join(kinds)} named {name!r} in {self.source} "
                              f"(found: {', '.join(present) or 'none'})")
        return found[0]

    def images(self) -> set[str]:
        """Every image a container of these manifests runs."""
        return {container["image"] for doc in self.docs for _, _, container in _containers(doc)
                if container.get("image")}


def split_image(ref: str) -> dict[str, str]:
    """`name:tag` / `name@digest` -> kustomize's (newName, newTag | digest); a registry port
    (`host:5000/x`) is not a tag, and an implicit or explicit `:latest` is refused."""
    if "@" in ref:
        name, digest = ref.split("@", 1)
        return {"newName": name, "digest": digest}
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        raise ValueError(f"image {ref!r} has no explicit tag: stageproof never deploys an implicit :latest")
    if tag == "latest":
        raise ValueError(f"image {ref!r}: stageproof never deploys :latest (it would be pulled on every start)")
    return {"newName": name, "newTag": tag}


def image_name(ref: str) -> str:
    """`ref` without its tag or digest (what kustomize's `images:` matches on)."""
    name = ref.split("@", 1)[0]
    base, sep, tag = name.rpartition(":")
    return base if sep and "/" not in tag else name


def render_theirs(kubectl: Kubectl, settings: Settings) -> Rendered:
    """Render `stages.k8s.manifests`: their kustomization as it is, or a plain folder's YAML files
    (the kind config excepted) through a kustomization listing them."""
    spec = _spec(settings)
    folder = spec.manifests
    assert folder is not None, "a chart renders with harness.k8s.chart"
    if any((folder / name).is_file() for name in KUSTOMIZATION_FILES):
        text = kubectl.kustomize(folder)
    else:
        with tempfile.TemporaryDirectory(prefix="stageproof-manifests-") as tmp:
            workdir = Path(tmp)
            files = manifest_files(folder, exclude=spec.kind_config)
            _write(workdir / "kustomization.yaml", _kustomization(
                resources=[os.path.relpath(file, workdir) for file in files]))
            text = kubectl.kustomize(workdir)
    docs = tuple(doc for doc in yaml.safe_load_all(text) if isinstance(doc, dict))
    return Rendered(folder, text, docs)


def manifest_files(folder: Path, *, exclude: Path | None = None) -> list[Path]:
    """The *.yaml/*.yml files of a plain folder that hold at least one object."""
    if not folder.is_dir():
        raise ConfigError(f"stages.k8s.manifests: {folder} is not a folder")
    found = [path for path in sorted(folder.iterdir()) if path.is_file() and path.suffix in (".yaml", ".yml")
             and path.resolve() != (exclude.resolve() if exclude else None) and _has_objects(path)]
    if not found:
        raise ConfigError(f"stages.k8s.manifests: {folder} has no kustomization.yaml and no *.yaml/*.yml manifest")
    return found


def overlay(settings: Settings, theirs: Rendered, *, app_image: str | None, release: str, run_id: str,
            ingress_class: str | None = None, broken_deadline: int | None = None, later: bool = False) -> Doc:
    """The run's kustomization (as data) on top of `THEIRS`, the render of their manifests (and
    `INGRESS`, `ingress(...)`, when the cluster has an ingress controller of `ingress_class`;
    `BUDGET` when the team has no disruption budget for the web pods). `broken_deadline`: the
    release is a broken one, stalled after that many seconds (harness/k8s/disruption.py). `later`:
    a release after the first, which leaves the Jobs as they are."""
    spec = _spec(settings)
    images = []
    if app_image and settings.images is not None:
        try:
            images = [{"name": settings.images.app.ref_name, **split_image(app_image)}]
        except ValueError as err:
            raise ConfigError(f"stages.k8s.app_image: {err}") from err
    patches = [*pull_policy_patches(theirs), *deletions(theirs, jobs=later), node_port_patch(theirs, spec),
               release_patch(theirs, settings, release), *web_disruption_patches(theirs, spec, broken_deadline)]
    database_kind(theirs, spec)
    if spec.seed_job:
        theirs.named(spec.seed_job, ("Job",), key="stages.k8s.seed_job")
    resources = [THEIRS, *([INGRESS] if ingress_class else []), *([BUDGET] if needs_budget(theirs, spec) else [])]
    return _kustomization(namespace=spec.namespace, resources=resources, images=images, patches=patches,
                          labels=[{"pairs": {RUN_LABEL: run_id}, "includeSelectors": False}])


def write_overlay(workdir: Path, settings: Settings, theirs: Rendered, *, app_image: str | None, release: str,
                  run_id: str, ingress_class: str | None = None, broken_deadline: int | None = None,
                  later: bool = False) -> None:
    """The run's overlay as files in `workdir`: its kustomization and the objects it adds; the
    render of their manifests goes into THEIRS (here, or by Helm's post-renderer)."""
    data = overlay(settings, theirs, app_image=app_image, release=release, run_id=run_id,
                   ingress_class=ingress_class, broken_deadline=broken_deadline, later=later)
    if ingress_class:
        _write(workdir / INGRESS, ingress(theirs, _spec(settings), ingress_class))
    if BUDGET in data["resources"]:
        _write(workdir / BUDGET, disruption.budget(_web(theirs, _spec(settings))))
    _write(workdir / "kustomization.yaml", data)


def render_run(kubectl: Kubectl, settings: Settings, theirs: Rendered, *, app_image: str | None, release: str,
               run_id: str, ingress_class: str | None = None, broken_deadline: int | None = None,
               later: bool = False) -> str:
    """Their render under the run's overlay, rendered: the YAML the run applies."""
    with tempfile.TemporaryDirectory(prefix="stageproof-kustomize-") as tmp:
        workdir = Path(tmp)
        (workdir / THEIRS).write_text(theirs.text)
        write_overlay(workdir, settings, theirs, app_image=app_image, release=release, run_id=run_id,
                      ingress_class=ingress_class, broken_deadline=broken_deadline, later=later)
        return kubectl.kustomize(workdir)


def apply(kubectl: Kubectl, settings: Settings, theirs: Rendered, *, app_image: str | None, release: str,
          run_id: str, ingress_class: str | None = None, broken_deadline: int | None = None,
          later: bool = False) -> str:
    """Render the run's manifests and `kubectl apply` them; returns kubectl's output."""
    text = render_run(kubectl, settings, theirs, app_image=app_image, release=release, run_id=run_id,
                      ingress_class=ingress_class, broken_deadline=broken_deadline, later=later)
    with tempfile.TemporaryDirectory(prefix="stageproof-apply-") as tmp:
        path = Path(tmp) / "manifests.yaml"
        path.write_text(text)
        return kubectl("apply", "-f", str(path))


def database_kind(theirs: Rendered, spec: K8sSettings) -> str:
    """Whether the database (`stages.k8s.database`) is a Deployment or a StatefulSet."""
    return str(theirs.named(spec.database, ("StatefulSet", "Deployment"), key="stages.k8s.database")["kind"])


# -- the patches -------------------------------------------------------------------------------
def pull_policy_patches(theirs: Rendered) -> list[Doc]:
    """`imagePullPolicy: IfNotPresent` on every container and init container (JSON 6902 by index)."""
    patches = []
    for doc in theirs.docs:
        ops = [{"op": "add", "path": f"{pointer}/imagePullPolicy", "value": "IfNotPresent"}
               for pointer, _, _ in _containers(doc)]
        if ops:
            patches.append({"target": _target(doc), "patch": yaml.safe_dump(ops)})
    return patches


def deletions(theirs: Rendered, *, jobs: bool = False) -> list[Doc]:
    """Their Namespace objects go: the stage creates (and labels) the namespace itself. With
    `jobs`, their Jobs too: a later release must not re-apply a Job (its template is immutable,
    and its run is over), and `kubectl apply` leaves the live one alone."""
    kinds = ("Namespace", "Job") if jobs else ("Namespace",)
    return [{"target": _target(doc), "patch": yaml.safe_dump({"$patch": "delete", "apiVersion": doc["apiVersion"],
                                                               "kind": doc["kind"], "metadata": {"name": _name(doc)}})}
            for doc in theirs.docs if doc.get("kind") in kinds]


def node_port_patch(theirs: Rendered, spec: K8sSettings) -> Doc:
    """The web Service becomes a NodePort on `node_port` (kind publishes it on 127.0.0.1)."""
    service = theirs.named(spec.web_service, ("Service",), key="stages.k8s.service")
    if service.get("spec", {}).get("clusterIP") == "None":
        raise ConfigError(f"stages.k8s.service: Service {spec.web_service!r} is headless (clusterIP: None): "
                          "name the Service that load-balances over the web pods")
    if not service.get("spec", {}).get("ports"):
        raise ConfigError(f"stages.k8s.service: Service {spec.web_service!r} has no ports")
    for other in theirs.docs:
        if other is not service and other.get("kind") == "Service" and any(
                port.get("nodePort") == spec.node_port for port in other.get("spec", {}).get("ports") or []):
            raise ConfigError(f"stages.k8s.node_port: {spec.node_port} is already the nodePort of Service "
                              f"{_name(other)!r}: choose another")
    ops = [{"op": "add", "path": "/spec/type", "value": "NodePort"},
           {"op": "add", "path": "/spec/ports/0/nodePort", "value": spec.node_port}]
    return {"target": _target(service), "patch": yaml.safe_dump(ops)}


def ingress(theirs: Rendered, spec: K8sSettings, ingress_class: str) -> Doc:
    """An Ingress of `ingress_class` sending every path (`/`, Prefix) to the web Service's first port."""
    service = theirs.named(spec.web_service, ("Service",), key="stages.k8s.service")
    first = (service.get("spec", {}).get("ports") or [{}])[0]
    port = {"name": first["name"]} if first.get("name") else {"number": first.get("port")}
    backend = {"service": {"name": spec.web_service, "port": port}}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": INGRESS_NAME},
            "spec": {"ingressClassName": ingress_class,
                     "rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}]}}


def release_patch(theirs: Rendered, settings: Settings, release: str) -> Doc:
    """The release on the web pod template: an annotation, and the app's run variables
    (`app_env(run_only=True)`, e.g. RELEASE_ID, API_TOKEN) on its first container, by name."""
    spec = _spec(settings)
    web = theirs.named(spec.deployment, ("Deployment",), key="stages.k8s.deployment")
    pod_spec: Doc = {}
    env = app_env(settings, stage="k8s", release=release, run_only=True)
    containers = web["spec"]["template"]["spec"].get("containers") or []
    if env and containers:
        first = containers[0]
        declared = {entry["name"]: entry for entry in first.get("env") or []}
        entries = [{"name": name, "value": value, **({"valueFrom": None} if "valueFrom" in declared.get(name, {})
                                                     else {})} for name, value in env.items()]
        pod_spec = {"containers": [{"name": first["name"], "env": entries}]}
    patch = {"apiVersion": web["apiVersion"], "kind": "Deployment", "metadata": {"name": spec.deployment},
             "spec": {"template": {"metadata": {"annotations": {RELEASE_ANNOTATION: release}},
                                   **({"spec": pod_spec} if pod_spec else {})}}}
    return {"target": _target(web), "patch": yaml.safe_dump(patch, sort_keys=False)}


def needs_budget(theirs: Rendered, spec: K8sSettings) -> bool:
    return not disruption.has_budget(theirs.docs, _web(theirs, spec))


def web_disruption_patches(theirs: Rendered, spec: K8sSettings, broken_deadline: int | None) -> list[Doc]:
    """Node-loss tolerations on the web pods, and (`broken_deadline`) the broken release."""
    web = _web(theirs, spec)
    ops = disruption.eviction_ops(web, spec.eviction_seconds)
    if broken_deadline is not None:
        ops += disruption.broken_ops(broken_deadline)
    return [{"target": _target(web), "patch": yaml.safe_dump(ops)}] if ops else []


# -- pieces ------------------------------------------------------------------------------------
def _web(theirs: Rendered, spec: K8sSettings) -> Doc:
    return theirs.named(spec.deployment, ("Deployment",), key="stages.k8s.deployment")


def containers_of(doc: Doc) -> Iterator[tuple[str, str, Doc]]:
    """(JSON pointer, list name, container) of every container and init container of a workload."""
    return _containers(doc)


def _containers(doc: Doc) -> Iterator[tuple[str, str, Doc]]:
    """(JSON pointer, list name, container) of every container and init container of a workload."""
    pointer = POD_SPECS.get(str(doc.get("kind")))
    if pointer is None:
        return
    pod_spec: Any = doc
    for part in pointer.strip("/").split("/"):
        pod_spec = (pod_spec or {}).get(part)
    for field in ("initContainers", "containers"):
        for index, container in enumerate((pod_spec or {}).get(field) or []):
            yield f"{pointer}/{field}/{index}", field, container


def _target(doc: Doc) -> Doc:
    group, _, version = str(doc["apiVersion"]).rpartition("/")
    return {"group": group, "version": version, "kind": doc["kind"], "name": _name(doc)}


def _name(doc: Doc) -> str:
    return str((doc.get("metadata") or {}).get("name", ""))


def _kustomization(**fields: Any) -> Doc:
    return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            **{key: value for key, value in fields.items() if value}}


def _write(path: Path, data: Doc) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _has_objects(path: Path) -> bool:
    try:
        return any(isinstance(doc, dict) for doc in yaml.safe_load_all(path.read_text()))
    except yaml.YAMLError as err:
        raise ConfigError(f"stages.k8s.manifests: {path} is not valid YAML: {err}") from err


def _spec(settings: Settings) -> K8sSettings:
    if settings.stages.k8s is None:
        raise ConfigError("stageproof.toml has no [stages.k8s] section")
    return settings.stages.k8s
