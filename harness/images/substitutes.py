"""Substitutes: local images that stand in for upstream ones when no registry answers.

For each `[images.substitute]` entry (`"python:3.11-slim" = "python"`, `"mysql:8.4" = "mysql"`)
the upstream ref is made to exist locally, built from our recipes in `stages/images/` on a
debootstrap base, so the team's Dockerfile, compose file and manifests run unchanged. A stand-in
carries `io.stageproof.substitute-for=<ref>`; an upstream ref that is here without that label is
the real image and is never overwritten.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.config import image_engine
from harness.core.cache import recipe_hash
from harness.errors import ConfigError
from harness.images import docker, say, step
from harness.images.docker import RECIPE_LABEL, SUBSTITUTE_LABEL, build_image, image_id, untag_others
from harness.images.rootfs import ensure_minimal_base, ensure_rootfs_image
from harness.images.stand_in_refs import debian_suite, kind_for, ref_lines
from harness.images.wheel_server import WHEELS_HOST, WHEELS_URL
from harness.images.wheels import add_to_pool, ensure_wheelhouse, pool_wheels

RECIPES = Path(__file__).resolve().parent / "recipes"
BASE = "stageproof/base:bookworm"
BASE_SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "python3-pip", "python-is-python3")
BASE_CHANGES = ("ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "ENV LANG=C.UTF-8")
KIND_LABEL = "io.stageproof.substitute"
#: labels of a substitute that an image built FROM it inherits, and should not carry
INHERITED_LABELS = (SUBSTITUTE_LABEL, KIND_LABEL, RECIPE_LABEL)

State = Literal["absent", "real", "ours"]


@dataclass(frozen=True)
class Substitute:
    """A built stand-in image, and what it is, for people."""

    image: str
    description: str


def upstream_state(labels: Mapping[str, str] | None) -> State:
    """What is at an upstream ref here, from its labels (None: no image): ours may be replaced,
    a real image never."""
    if labels is None:
        return "absent"
    return "ours" if labels.get(SUBSTITUTE_LABEL) else "real"


def ensure_substitutes(wanted: Mapping[str, str], *, requirements: Path | None,
                       force: bool = False) -> dict[str, str]:
    """Make every upstream ref of `wanted` ({ref: kind}) exist here; returns {ref: description}."""
    states = {ref: upstream_state(docker.image_labels(ref)) for ref in wanted}
    missing = {ref: kind for ref, kind in wanted.items() if states[ref] != "real"}
    python_refs = [ref for ref, kind in missing.items() if kind == "python"]
    if python_refs and requirements is None:
        raise ConfigError(f"images.app.requirements: needed without a registry: the substitute for {python_refs[0]} "
                          "installs the app's requirements from a wheelhouse built on this machine "
                          "(name the requirements file the Dockerfile's `pip install -r` reads)")
    built: dict[str, Substitute] = {}
    result: dict[str, str] = {}
    for ref, kind in wanted.items():
        if ref not in missing:
            say(f"{ref} is a real image here: used as is, not substituted")
            result[ref] = f"{ref} (the real image, found here: not substituted)"
            continue
        key = f"{kind}:{debian_suite(ref)}" if kind == "debian" else kind
        if key not in built:
            with step(f"{kind} substitute"):
                built[key] = build_substitute(kind, ref, requirements=requirements, force=force)
        stand_in(ref, built[key].image)
        result[ref] = built[key].description
    return result


def build_substitute(kind: str, ref: str, *, requirements: Path | None, force: bool) -> Substitute:
    """The stand-in image of one kind (config.SUBSTITUTE_KINDS) for upstream `ref`, built or found."""
    if kind == "python" and requirements is not None:
        return _python(_base(), requirements, force=force)
    if kind == "mysql":
        with step("minimal base image (debootstrap bookworm minbase)"):
            return _mysql(ensure_minimal_base(), force=force)
    if kind == "postgres":
        from harness.images.stand_in_postgres import build_postgres_substitute

        return build_postgres_substitute(force=force)
    from harness.images import stand_ins

    return stand_ins.build_kind(kind, ref, force=force)


def auto_kind(ref: str, *, engine: str | None = None) -> str | None:
    """The stand-in that serves `ref` without a config line: node:*, golang:*, alpine:*, debian:*,
    distroless; `engine`'s official image (mysql:*, postgres:*) for the database image."""
    if engine is not None and image_engine(ref) == engine:
        return engine
    if ref.split("/")[-1].split(":")[0] == "python" and "/" not in ref.removeprefix("docker.io/library/"):
        return "python"
    return kind_for(ref)


def _base() -> str:
    """Debian bookworm with python3 (the python and mysql stand-ins start from it)."""
    with step(f"base image {BASE} (debootstrap {BASE_SUITE})"):
        return ensure_rootfs_image(BASE, suite=BASE_SUITE, include=BASE_PACKAGES, changes=BASE_CHANGES)


def _mysql(base: str, *, force: bool) -> Substitute:
    """Debian's MariaDB behind an entrypoint honouring the official mysql image's contract."""
    recipe_dir = RECIPES / "mysql-compat"
    recipe = recipe_hash("mysql-substitute-v1", recipe_dir, f"base:{image_id(base)}")
    tag = f"stageproof/substitute-mysql:{recipe}"
    if force or image_id(tag) is None:
        build_image(tag, context=recipe_dir, dockerfile=recipe_dir / "Dockerfile", no_cache=force,
                    labels={RECIPE_LABEL: recipe, KIND_LABEL: "mysql"}, args={"BASE_IMAGE": base})
        untag_others("stageproof/substitute-mysql", keep=tag)  # only a new build makes the others stale
    return Substitute(tag, f"{tag} (Debian bookworm MariaDB behind the mysql image's MYSQL_* contract)")


def _python(base: str, requirements: Path, *, force: bool) -> Substitute:
    """Debian's python3 + pip whose pip resolves offline from the shared wheel pool, served to each
    app build over HTTP (harness/images/wheel_server.py): the stand-in holds no wheel, so a new
    wheel in the pool never makes a new stand-in (nor stale app layers)."""
    with step(f"wheelhouse for {requirements}"):
        pool = add_to_pool(ensure_wheelhouse(requirements))
    recipe_dir = RECIPES / "python-compat"
    recipe = recipe_hash("python-substitute-v2", recipe_dir, f"base:{image_id(base)}", WHEELS_URL)
    tag = f"stageproof/substitute-python:{recipe}"
    if force or image_id(tag) is None:
        with tempfile.TemporaryDirectory(prefix="stageproof-python-substitute-") as tmp:
            context = Path(tmp)
            shutil.copytree(recipe_dir, context, dirs_exist_ok=True)
            (context / "wheels").mkdir(exist_ok=True)
            build_image(tag, context=context, no_cache=force, labels={RECIPE_LABEL: recipe, KIND_LABEL: "python"},
                        args={"BASE_IMAGE": base, "FIND_LINKS": WHEELS_URL, "TRUSTED_HOST": WHEELS_HOST})
        untag_others("stageproof/substitute-python", keep=tag)  # only a new build makes the others stale
    return Substitute(tag, f"{tag} (Debian bookworm python3 + pip; the host's wheelhouse served at {WHEELS_URL} "
                           f"while an app builds, {len(pool_wheels(pool))} wheels)")


def stand_in(ref: str, substitute: str) -> str:
    """Tag `substitute` as `ref`: a label-only image on top of it (no layer), plus the ref's own lines
    (the -alpine PATH, distroless's nonroot user), labelled with the upstream ref it stands in for;
    one substitute may stand in for several refs (`mysql:8.4`, `mysql:8.0`). Never for a ref that holds
    a real image (no `io.stageproof.substitute-for` label)."""
    lines = ref_lines(ref)
    recipe = recipe_hash("stand-in-v2", ref, f"image:{image_id(substitute)}", *lines)
    if docker.image_label(ref) != recipe:
        text = "".join(f"{line}\n" for line in (f"FROM {substitute}", *lines))
        build_image(ref, context=None, dockerfile_text=text, labels={SUBSTITUTE_LABEL: ref, RECIPE_LABEL: recipe})
    return ref
