"""`nox -s bench`'s image figures: the size of each image a run uses, as built here, against the
speed issue's goals. Nothing is built: an image no earlier run made is reported as absent."""

from __future__ import annotations

from typing import Any

from harness.config import Settings
from harness.core.release import current_release
from harness.core.run import run
from harness.images.build import release_tag

MB = 1_000_000
#: the goals of issue 18, in MB (as `docker image ls` counts them)
GOALS_MB = {"app": 150, "database": 200, "kind node": 800}
NODE_REPOSITORY = "stageproof/kind-node"


def image_size(ref: str) -> int | None:
    """Bytes of local image `ref` (its uncompressed layers), or None when it is not here."""
    proc = run(["docker", "image", "inspect", "--format", "{{.Size}}", ref], check=False)
    return int(proc.stdout.strip()) if proc.returncode == 0 else None


def node_images() -> list[str]:
    """Every tag of stageproof's kind node image here (the plain one and the variants with images in)."""
    proc = run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", NODE_REPOSITORY], check=False)
    return sorted(ref for ref in proc.stdout.split() if not ref.endswith(":<none>"))


def sized(role: str, ref: str, size: int | None) -> dict[str, Any]:
    """One image's figure; `met` is None when the role has no goal or the image is absent."""
    goal = GOALS_MB.get(role)
    megabytes = None if size is None else round(size / MB, 1)
    met = None if goal is None or megabytes is None else megabytes <= goal
    return {"role": role, "ref": ref, "mb": megabytes, "goal_mb": goal, "met": met}


def image_report(settings: Settings) -> list[dict[str, Any]]:
    app = f"{settings.images.app.tag}:{release_tag(current_release(settings.root))}" if settings.images else None
    refs = [*([("app", app)] if app else []), ("database", settings.database.image),
            *(("kind node", ref) for ref in node_images())]
    return [sized(role, ref, image_size(ref)) for role, ref in refs]


def image_line(figure: dict[str, Any]) -> str:
    size = "absent (no run built it here)" if figure["mb"] is None else f"{figure['mb']:g} MB"
    goal = "" if figure["goal_mb"] is None else (
        f" (goal <= {figure['goal_mb']} MB: {'-' if figure['met'] is None else 'met' if figure['met'] else 'NOT met'})")
    return f"  {figure['role']:<10} {figure['ref']:<48} {size}{goal}"
