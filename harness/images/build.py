"""`ensure_images`: the app image and the database image every container stage runs.

With a registry the app is built on `python:3.11-slim` and the database is the official
`mysql:8.4`. Without one (detected, or forced by `images.airgap` / `STAGEPROOF_AIRGAP=1`) the base
is a debootstrap image and the database is our MariaDB-based `mysql-compat` image; forced
air-gapped mode never contacts a registry. Each image carries the hash of its recipe, so a
second run with the same inputs builds nothing.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from harness.cache import recipe_hash
from harness.config import AppImage, DbImage, ImageSettings, Settings
from harness.errors import CommandFailed, ConfigError
from harness.images.docker import RECIPE_LABEL, image_id, image_is_current, require_docker
from harness.images.rootfs import ensure_rootfs_image
from harness.images.wheels import ensure_wheelhouse
from harness.release import current_release
from harness.run import run

REGISTRY_PYTHON_BASE = "python:3.11-slim"
AIRGAP_BASE = "stageproof/base:bookworm"
AIRGAP_SUITE = "bookworm"
AIRGAP_BASE_PACKAGES = ("python3", "python3-venv")
# What the app Dockerfile COPYs from its context besides `wheels/` (see stages/docker/Dockerfile).
APP_SOURCES = ("app",)
BUILD_TIMEOUT = 1200.0
PULL_TIMEOUT = 300.0


def say(message: str) -> None:
    """Progress for people (like the stage runner's lines); details go to the log."""
    print(f"[images] {message}", flush=True)


@contextmanager
def step(what: str) -> Iterator[None]:
    """Say what is being built and how long it took: cold builds are slow and should say where."""
    started = time.monotonic()
    say(f"{what} ...")
    yield
    say(f"{what}: {time.monotonic() - started:.1f}s")


def ensure_images(settings: Settings, *, release: str | None = None, force: bool = False) -> dict[str, str]:
    """Make sure the app and database images exist locally; returns {"app": ref, "db": ref}.

    `force` rebuilds the app and database images even when their recipe is unchanged.
    """
    images = _image_settings(settings)
    release = release or current_release(settings.root)
    started = time.monotonic()
    require_docker()
    airgap = use_airgap(images)
    say(f"{'air-gapped' if airgap else 'registry'} mode, release {release}")
    if airgap:
        with step(f"base image {AIRGAP_BASE} (debootstrap {AIRGAP_SUITE})"):
            base = ensure_rootfs_image(AIRGAP_BASE, suite=AIRGAP_SUITE, include=AIRGAP_BASE_PACKAGES)
        with step(f"database image {images.db.tag}"):
            db = build_db_image(images.db, base=base, force=force)
    else:
        base, db = REGISTRY_PYTHON_BASE, images.db.upstream
    with step(f"wheelhouse for {images.app.requirements or 'app/requirements.txt'}"):
        wheels = ensure_wheelhouse(_requirements(images.app))
    with step(f"app image {images.app.tag}"):
        app = build_app_image(images.app, base=base, wheels=wheels, release=release, force=force)
    say(f"app={app} db={db} ready in {time.monotonic() - started:.1f}s")
    return {"app": app, "db": db}


def use_airgap(images: ImageSettings) -> bool:
    """Forced either way by the setting; on "auto", air-gapped unless the upstream images are
    local already or a pull of them succeeds."""
    if images.airgap != "auto":
        return images.airgap == "always"
    for ref in (REGISTRY_PYTHON_BASE, images.db.upstream):
        if image_id(ref) is not None:
            continue
        try:
            with step(f"pull {ref} (is there a registry?)"):
                run(["docker", "pull", "--quiet", ref], timeout=PULL_TIMEOUT)
        except CommandFailed as err:
            say(f"no registry answers ({str(err).splitlines()[-1]}): building air-gapped")
            return True
    return False


def build_app_image(spec: AppImage, *, base: str, wheels: Path, release: str, force: bool = False) -> str:
    """Build `<tag>:<release>` from the app sources and the host's wheelhouse unless current."""
    tag = f"{spec.tag}:{release_tag(release)}"
    sources = [spec.context / name for name in APP_SOURCES]
    recipe = recipe_hash("app-image-v1", spec.dockerfile, *_source_files(sources), f"wheels:{wheels.name}",
                         f"base:{image_id(base)}", f"release:{release}")
    if not force and image_is_current(tag, recipe):
        say(f"{tag} is current (recipe {recipe}): nothing to build")
        return tag
    with tempfile.TemporaryDirectory(prefix="stageproof-app-context-") as tmp:
        context = Path(tmp)
        for source in sources:
            shutil.copytree(source, context / source.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        shutil.copytree(wheels, context / "wheels")
        _docker_build(tag, recipe, dockerfile=spec.dockerfile, context=context,
                      args={"BASE_IMAGE": base, "RELEASE_ID": release, "CREATED": _now()})
    return tag


def build_db_image(spec: DbImage, *, base: str, force: bool = False) -> str:
    """Build the mysql-compat image from its recipe folder on `base` unless current."""
    recipe = recipe_hash("db-image-v1", spec.recipe, f"base:{image_id(base)}")
    if not force and image_is_current(spec.tag, recipe):
        say(f"{spec.tag} is current (recipe {recipe}): nothing to build")
        return spec.tag
    _docker_build(spec.tag, recipe, dockerfile=spec.recipe / "Dockerfile", context=spec.recipe,
                  args={"BASE_IMAGE": base})
    return spec.tag


def release_tag(release: str) -> str:
    """A release id as a valid image tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`)."""
    tag = re.sub(r"[^A-Za-z0-9_.-]", "-", release).lstrip(".-")[:128]
    return tag or "dev"


def _docker_build(tag: str, recipe: str, *, dockerfile: Path, context: Path, args: dict[str, str]) -> None:
    """`docker build` with the recipe label that `image_is_current` checks; never pulls.

    The image the tag pointed at before is removed when nothing else uses it, so rebuilds do not
    pile up untagged images (a container or another tag keeps it: `rmi` then refuses, fine).
    """
    replaced = image_id(tag)
    build_args = [part for name, value in args.items() for part in ("--build-arg", f"{name}={value}")]
    run(["docker", "build", "--file", str(dockerfile), "--tag", tag, "--label", f"{RECIPE_LABEL}={recipe}",
         *build_args, str(context)], timeout=BUILD_TIMEOUT)
    if replaced and replaced != image_id(tag):
        run(["docker", "image", "rm", replaced], check=False)


def _image_settings(settings: Settings) -> ImageSettings:
    if settings.images is None:
        raise ConfigError("stageproof.toml has no [images] section: the container stages need one")
    return settings.images


def _requirements(spec: AppImage) -> Path:
    return spec.requirements or spec.context / "app" / "requirements.txt"


def _source_files(sources: list[Path]) -> list[Path]:
    """The files a build copies, without bytecode (a local run must not invalidate the image)."""
    return [path for source in sources for path in sorted(source.rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
