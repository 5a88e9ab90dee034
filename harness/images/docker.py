"""Small queries on the local Docker engine shared by every image builder, and `build_image`."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.core.run import run
from harness.errors import CommandFailed, StageUnavailable

RECIPE_LABEL = "io.stageproof.recipe"
#: on an image that stands in for an upstream one (`mysql:8.4`): which one; absent on real images
SUBSTITUTE_LABEL = "io.stageproof.substitute-for"
BUILD_TIMEOUT = 1200.0
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def image_labels(ref: str) -> dict[str, str] | None:
    """The labels of local image `ref` ({} when it has none), or None when it is absent."""
    proc = run(["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", ref], check=False)
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout.strip() or "null") or {}


def image_label(tag: str, label: str = RECIPE_LABEL) -> str | None:
    """The value of `label` on local image `tag`, or None when the image or the label is absent."""
    return (image_labels(tag) or {}).get(label)


def image_is_current(tag: str, recipe: str) -> bool:
    """True when `tag` exists and was built from the recipe whose hash is `recipe`."""
    return image_label(tag) == recipe


def image_id(ref: str) -> str | None:
    """The local image id of `ref`, or None when it is not here (never pulls)."""
    proc = run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], check=False)
    if proc.returncode != 0:
        return None
    return proc.stdout.strip() or None


def build_image(tag: str, *, context: Path | None, dockerfile: Path | None = None, dockerfile_text: str = "",
                labels: Mapping[str, str] | None = None, args: Mapping[str, str] | None = None,
                no_cache: bool = False, timeout: float = BUILD_TIMEOUT, extra: Sequence[str] = ()) -> str:
    """`docker build` (the legacy builder never pulls an image that is here); returns `tag`.

    With `context=None` the Dockerfile is `dockerfile_text`, sent on stdin without a context.
    The image the tag pointed at before is removed when nothing else uses it, so rebuilds do not
    pile up untagged images (a container, a child image or another tag keeps it: `rmi` refuses).
    """
    replaced = image_id(tag)
    # --force-rm: a failing step's container is removed too (the legacy builder keeps it otherwise).
    options: list[str] = ["--force-rm", "--tag", tag, *(["--no-cache"] if no_cache else [])]
    options += [part for name, value in (labels or {}).items() for part in ("--label", f"{name}={value}")]
    options += [part for name, value in (args or {}).items() for part in ("--build-arg", f"{name}={value}")]
    options += list(extra)  # e.g. the wheel server's `--network`
    if context is None:
        argv, stdin = ["docker", "build", *options, "-"], dockerfile_text
    else:
        argv, stdin = ["docker", "build", *(["--file", str(dockerfile)] if dockerfile else []), *options,
                       str(context)], None
    try:
        run(argv, input=stdin, timeout=timeout)
    except CommandFailed as err:
        # The step that failed prints to stdout; stderr holds only "returned a non-zero code".
        raise CommandFailed(err.cmd, err.returncode, err.stdout, build_failure(err.stdout, err.stderr),
                            timed_out=err.timed_out) from None
    if replaced and replaced != image_id(tag):
        run(["docker", "image", "rm", replaced], check=False)
    return tag


def build_failure(stdout: str, stderr: str, *, lines: int = 25) -> str:
    """The end of a failed build's output (colour codes and the legacy builder's banner dropped)."""
    tail = ANSI.sub("", stdout).strip().splitlines()[-lines:]
    errors = [line for line in stderr.strip().splitlines() if line.strip() and not line.startswith((" ", "DEPRECATED"))]
    return "\n".join([*tail, *errors])


def untag_others(repository: str, keep: str) -> None:
    """Remove the tags of `repository` other than `keep` (their layers stay while images use them)."""
    proc = run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", repository], check=False)
    stale = [ref for ref in proc.stdout.split() if ref != keep and not ref.endswith(":<none>")]
    if stale:
        run(["docker", "image", "rm", *stale], check=False)


def require_docker() -> None:
    """Fail early, saying what to do, when no Docker daemon answers."""
    proc = run(["docker", "version", "--format", "{{.Server.Version}}"], check=False, timeout=30)
    if proc.returncode != 0:
        raise StageUnavailable("no Docker daemon answers (`docker version` failed): run "
                               f"`sudo scripts/setup-machine.sh` to install and start one\n{proc.stderr.strip()}")
