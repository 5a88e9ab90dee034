"""The team's manifests, applied unchanged under an overlay that only the run writes.

`render_theirs` runs `kubectl kustomize` on `stages.k8s.manifests` (their kustomization, or one
generated for a plain folder of YAML files). `overlay` computes, from that render, the run's
kustomization on top of it: the namespace, the app image the run built (never `:latest`), a run
label, `imagePullPolicy: IfNotPresent` on every container (images are loaded, never pulled), no
Namespace object (the stage creates its own), the web Service as a NodePort, and the release on
the web Deployment's pod template (an annotation and the app's run variables, e.g. RELEASE_ID),
so a new release is the same apply with another release id and rolls the Deployment; a
disruption budget and short node-loss tolerations for the web pods (harness/k8s/disruption.py).
The patches and the objects the overlay adds are computed in harness/k8s/patches.py.
With `[stages.k8s] env = "app"` the web container gets every `[app.env]` variable, `${db.host}` being
the database's Service in the run's namespace (`database_endpoint`): for manifests that hard-code
another cluster's address (`MYSQL_HOST: 10.98.19.211`).
On a cluster with stageproof's ingress controller, an Ingress of that class routes `/` to the web
Service too.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.config import K8sSettings, Settings
from harness.core import goyaml
from harness.core.ownership import RUN_LABEL
from harness.core.run import run
from harness.errors import ConfigError
from harness.k8s.patches import (
    budget,
    containers_of,
    deletions,
    ingress,
    needs_budget,
    node_port_patch,
    pull_policy_patches,
    release_patch,
    web_disruption_patches,
)
from harness.k8s.web_env import name_of

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
KUSTOMIZE = ("kustomize", "--load-restrictor", "LoadRestrictionsNone")
THEIRS = "theirs.yaml"
INGRESS = "ingress.yaml"
BUDGET = "budget.yaml"
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
        return next((doc for doc in self.docs if doc.get("kind") == kind and name_of(doc) == name), None)

    def named(self, name: str, kinds: tuple[str, ...], *, key: str) -> Doc:
        """The one object called `name` of one of `kinds`; a ConfigError naming `key` otherwise."""
        found = [doc for doc in self.docs if doc.get("kind") in kinds and name_of(doc) == name]
        if not found:
            present = sorted(f"{doc['kind']}/{name_of(doc)}" for doc in self.docs if doc.get("kind") in kinds)
            raise ConfigError(f"{key}: no {' or '.join(kinds)} named {name!r} in {self.source} "
                              f"(found: {', '.join(present) or 'none'})")
        return found[0]

    def images(self) -> set[str]:
        """Every image a container of these manifests runs."""
        return {container["image"] for doc in self.docs for _, _, container in containers_of(doc)
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
        _write(workdir / BUDGET, budget(theirs, _spec(settings)))
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


def _kustomization(**fields: Any) -> Doc:
    return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            **{key: value for key, value in fields.items() if value}}


def _write(path: Path, data: Doc) -> None:
    path.write_text(goyaml.dump(data, sort_keys=False))


def _has_objects(path: Path) -> bool:
    try:
        return any(isinstance(doc, dict) for doc in yaml.safe_load_all(path.read_text()))
    except yaml.YAMLError as err:
        raise ConfigError(f"stages.k8s.manifests: {path} is not valid YAML: {err}") from err


def _spec(settings: Settings) -> K8sSettings:
    if settings.stages.k8s is None:
        raise ConfigError("stageproof.toml has no [stages.k8s] section")
    return settings.stages.k8s
