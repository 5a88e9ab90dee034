"""The manifests a run applies: the configured overlay, plus what only the run knows.

The run writes a small kustomization on top of `stages.k8s.kustomize` that sets the image tags
it built (never `:latest`), the release id, the namespace and the credentials from
stageproof.toml, then applies it with `kubectl apply -k` (kustomize has no client-library
equivalent). A new release is the same apply with another RELEASE_ID: the hashed ConfigMap name
changes, so the Deployment rolls, and the old ConfigMap stays for `rollout undo`.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import yaml

from harness.config import Settings
from harness.run import run

# The image names the base manifests use; the run replaces them with what it built or pulled.
APP_IMAGE = "stageproof/users"
DB_IMAGE = "stageproof/mysql-compat"
DB_PORT = 3306


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


def split_image(ref: str) -> tuple[str, str]:
    """`name[:tag]` -> (name, tag); a registry port (`host:5000/x`) is not a tag."""
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        raise ValueError(f"image {ref!r} has no explicit tag: stageproof never deploys an implicit :latest")
    return name, tag


def kustomization(settings: Settings, *, overlay: Path, workdir: Path, images: dict[str, str],
                  release: str) -> dict[str, object]:
    """The run's kustomization (as data) layered on `overlay`."""
    k8s = settings.stages.k8s
    assert k8s is not None
    env, db = settings.app.env, settings.database
    url = f"mysql://{quote(db.user, safe='')}:{quote(db.password, safe='')}@{k8s.database}:{DB_PORT}/{db.name}"
    app_secret = [f"{env.database_url}={url}"] + ([f"{env.token}={settings.app.token}"] if settings.app.token else [])
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": k8s.namespace,
        "resources": [os.path.relpath(overlay, workdir)],
        "images": [_image(APP_IMAGE, images["app"]), _image(DB_IMAGE, images["db"])],
        "configMapGenerator": [
            {"name": "web-config", "behavior": "merge", "literals": [f"{env.release}={release}"]},
            {"name": "db-config", "behavior": "replace", "literals": [f"MYSQL_DATABASE={db.name}"]},
        ],
        "secretGenerator": [
            {"name": "app-credentials", "behavior": "replace", "literals": app_secret},
            {"name": "db-credentials", "behavior": "replace", "literals": [
                f"MYSQL_ROOT_PASSWORD={db.root_password}", f"MYSQL_USER={db.user}", f"MYSQL_PASSWORD={db.password}"]},
        ],
    }


def _image(name: str, ref: str) -> dict[str, str]:
    new_name, tag = split_image(ref)
    return {"name": name, "newName": new_name, "newTag": tag}


def apply(kubectl: Kubectl, settings: Settings, *, images: dict[str, str], release: str) -> str:
    """Render and `kubectl apply -k` the run's kustomization; returns kubectl's output."""
    k8s = settings.stages.k8s
    assert k8s is not None
    overlay = (settings.root / k8s.kustomize).resolve()
    with tempfile.TemporaryDirectory(prefix="stageproof-kustomize-") as tmp:
        workdir = Path(tmp)
        data = kustomization(settings, overlay=overlay, workdir=workdir, images=images, release=release)
        (workdir / "kustomization.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        return kubectl("apply", "-k", str(workdir))
