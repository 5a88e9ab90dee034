"""Small queries on the local Docker engine shared by every image builder."""

from __future__ import annotations

import json

from harness.errors import StageUnavailable
from harness.run import run

RECIPE_LABEL = "io.stageproof.recipe"


def image_label(tag: str, label: str = RECIPE_LABEL) -> str | None:
    """The value of `label` on local image `tag`, or None when the image is absent."""
    proc = run(["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", tag], check=False)
    if proc.returncode != 0:
        return None
    labels = json.loads(proc.stdout.strip() or "null") or {}
    return labels.get(label)


def image_is_current(tag: str, recipe: str) -> bool:
    """True when `tag` exists and was built from the recipe whose hash is `recipe`."""
    return image_label(tag) == recipe


def image_id(ref: str) -> str | None:
    """The local image id of `ref`, or None when it is not here (never pulls)."""
    proc = run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], check=False)
    if proc.returncode != 0:
        return None
    return proc.stdout.strip() or None


def require_docker() -> None:
    """Fail early, saying what to do, when no Docker daemon answers."""
    proc = run(["docker", "version", "--format", "{{.Server.Version}}"], check=False, timeout=30)
    if proc.returncode != 0:
        raise StageUnavailable("no Docker daemon answers (`docker version` failed): run "
                               f"`sudo scripts/setup-machine.sh` to install and start one\n{proc.stderr.strip()}")
