"""`ensure_images`: the app image, built from the team's own Dockerfile, and the database image.

With a registry the upstream images (the database image, the `[images.substitute]` refs) are
pulled when missing. Without one (detected, or forced by `images.airgap` / `STAGEPROOF_AIRGAP=1`)
each `[images.substitute]` ref is made to exist locally as a substitute built from our recipes
(see `substitutes.py`); forced air-gapped mode never contacts a registry. Either way the app is
`docker build` of the team's Dockerfile and context, unchanged; Docker's layer cache makes a
second build with the same inputs fast.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.config import SUBSTITUTE_KINDS, AppImage, ImageSettings, Settings
from harness.core.cache import cache_dir
from harness.core.release import current_release
from harness.core.run import run
from harness.errors import CommandFailed, ConfigError
from harness.images import say, step
from harness.images.change import changed_context
from harness.images.context import build_digest
from harness.images.docker import SUBSTITUTE_LABEL, build_image, image_id, image_label, image_labels, require_docker
from harness.images.stand_in_refusal import raise_if_refused
from harness.images.substitutes import BASE, INHERITED_LABELS, auto_kind, ensure_substitutes
from harness.images.wheel_server import wheel_server

PULL_TIMEOUT = 300.0
#: what pip prints in a substitute when the wheel pool lacks a package
OFFLINE_PIP_MISS = "No matching distribution found"
#: on an app image: the digest of everything its build read (harness/images/context.py)
BUILD_DIGEST_LABEL = "io.stageproof.build-inputs"
FROM_LINE = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class BuiltImages:
    """The images the container stages run, all present locally."""

    #: the app image built from the team's Dockerfile, `<images.app.tag>:<release_tag(release)>`
    app: str
    #: `database.image`, present locally (substituted or pulled)
    database: str
    #: upstream ref -> what stands in for it (empty in registry mode)
    substitutes: dict[str, str]

    def notes(self) -> tuple[str, ...]:
        """What the run summary says of these images: each stand-in used for an upstream image."""
        return tuple(f"substitute image: {upstream} <- {what}" for upstream, what in self.substitutes.items())

    def refs(self) -> list[str]:
        """Every image a cluster must hold: the app, the database, every substituted upstream ref."""
        return list(dict.fromkeys([self.app, self.database, *self.substitutes]))


def ensure_images(settings: Settings, *, release: str | None = None, force: bool = False) -> BuiltImages:
    """Make sure the app and database images (and every substitute) exist locally.

    `force` rebuilds the substitutes and builds the app image without Docker's layer cache.
    """
    images = _image_settings(settings)
    release = release or current_release(settings.root)
    started = time.monotonic()
    require_docker()
    database = settings.database.image
    airgap = use_airgap(images, database=database)
    say(f"{'air-gapped' if airgap else 'registry'} mode, release {release}")
    substitutes: dict[str, str] = {}
    wanted = stand_ins_needed(images, database, engine=settings.database.engine_name) if airgap else {}
    if airgap:
        substitutes = ensure_substitutes(wanted, requirements=images.app.requirements, force=force)
        for ref, description in substitutes.items():
            say(f"substitute: {ref} <- {description}")
    else:
        _pull_missing([database, *images.substitute])
    with step(f"app image from {images.app.dockerfile}"):
        try:
            app = build_app_image(images.app, release=release, force=force, clear=INHERITED_LABELS if airgap else (),
                                  wheels="python" in wanted.values())
        except CommandFailed as err:
            if airgap:
                raise_if_refused(err, dockerfile=images.app.dockerfile)
            if airgap and OFFLINE_PIP_MISS in err.stderr:
                raise ConfigError(f"images.app.requirements: the Dockerfile pip-installs a package that is not in "
                                  f"the offline wheelhouse (built from {images.app.requirements}): list every "
                                  f"package it installs there\n{err}") from err
            raise
    say(f"app={app} database={database} ready in {time.monotonic() - started:.1f}s")
    return BuiltImages(app=app, database=database, substitutes=substitutes)


def use_airgap(images: ImageSettings, *, database: str | None = None) -> bool:
    """Forced either way by the setting; on "auto", air-gapped unless the upstream images (the
    substitute refs and `database`) are here already or a pull of them succeeds. A substitute
    left here by an earlier run means that run found no registry: no pull is tried then."""
    if images.airgap != "auto":
        return images.airgap == "always"
    for ref in dict.fromkeys([*images.substitute, *([database] if database else [])]):
        labels = image_labels(ref)
        if labels is not None:
            if labels.get(SUBSTITUTE_LABEL):
                say(f"{ref} here is a substitute from an earlier run: staying air-gapped")
                return True
            continue
        try:
            with step(f"pull {ref} (is there a registry?)"):
                run(["docker", "pull", "--quiet", ref], timeout=PULL_TIMEOUT)
        except CommandFailed as err:
            say(f"no registry answers ({str(err).splitlines()[-1]}): building air-gapped")
            return True
    return False


def build_app_image(spec: AppImage, *, release: str, force: bool = False, clear: Sequence[str] = (),
                    wheels: bool = False) -> str:
    """`docker build` of the team's Dockerfile and context, as `<tag>:<release tag>`.

    `clear`: labels the image would inherit from a substitute base, set empty (Docker cannot
    drop an inherited label) so the app image never claims to be a substitute. `wheels`: the
    python stand-in is in the build: the host's wheel pool is served to it meanwhile.
    """
    tag = f"{spec.tag}:{release_tag(release)}"
    labels = {**dict.fromkeys(clear, ""),
              "org.opencontainers.image.revision": release, "io.stageproof.release": release}
    args = {"RELEASE_ID": release}
    digest = None if force else _build_digest(spec, tag, labels, args)
    if digest is not None and image_label(tag, BUILD_DIGEST_LABEL) == digest:
        say(f"{tag} is current (build inputs {digest} unchanged): not rebuilt")
        return tag
    labels = {**labels, **({BUILD_DIGEST_LABEL: digest} if digest else {})}
    if not wheels:
        return build_image(tag, context=spec.context, dockerfile=spec.dockerfile, no_cache=force, labels=labels,
                           args=args)
    with wheel_server(cache_dir("wheels", "pool"), image=BASE) as server:
        return build_image(tag, context=spec.context, dockerfile=spec.dockerfile, no_cache=force, labels=labels,
                           args=args, extra=server.build_options)


def _build_digest(spec: AppImage, tag: str, labels: dict[str, str], args: dict[str, str]) -> str | None:
    """What the build reads, hashed; None (always build) when a base image is not here or is named
    through a build argument (then only Docker knows what it resolves to)."""
    text = spec.dockerfile.read_text()
    if any("$" in match.group(1) for match in FROM_LINE.finditer(text)):
        return None
    bases = {ref: image_id(ref) for ref in base_images(spec.dockerfile)}
    if None in bases.values():
        return None
    return build_digest(spec.context, spec.dockerfile, {"tag": tag, "labels": labels, "args": args, "bases": bases})


def build_release_image(spec: AppImage, *, release: str, patch: Path | None = None) -> str:
    """A new release of the app as a new image tag, the team's build unchanged, or (`patch`) with a
    code change applied to a temporary copy of its build context (harness/images/change.py)."""
    if patch is None:
        return build_app_image(spec, release=release, clear=INHERITED_LABELS, wheels=_python_base(spec))
    with tempfile.TemporaryDirectory(prefix="stageproof-change-") as tmp:
        context = changed_context(spec.context, patch, Path(tmp), dockerfile=spec.dockerfile)
        inside = spec.dockerfile.is_relative_to(spec.context)
        dockerfile = context / spec.dockerfile.relative_to(spec.context) if inside else spec.dockerfile
        changed = spec.model_copy(update={"context": context, "dockerfile": dockerfile})
        return build_app_image(changed, release=release, clear=INHERITED_LABELS, wheels=_python_base(spec))


def _python_base(spec: AppImage) -> bool:
    """The app builds on a python stand-in here (then its wheels are served to the build)."""
    return any((image_labels(ref) or {}).get(SUBSTITUTE_LABEL) and ref.split("/")[-1].startswith("python")
               for ref in base_images(spec.dockerfile))


def release_tag(release: str) -> str:
    """A release id as a valid image tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`)."""
    tag = re.sub(r"[^A-Za-z0-9_.-]", "-", release).lstrip(".-")[:128]
    return tag or "dev"


def base_images(dockerfile: Path) -> list[str]:
    """The images a Dockerfile builds FROM (not its own stages, `scratch` or `${ARG}` refs)."""
    stages: set[str] = set()
    found: list[str] = []
    for match in FROM_LINE.finditer(dockerfile.read_text()):
        ref, name = match.group(1), match.group(2)
        if ref.lower() not in stages and ref != "scratch" and "$" not in ref:
            found.append(ref)
        if name:
            stages.add(name.lower())
    return list(dict.fromkeys(found))


def stand_ins_needed(images: ImageSettings, database: str, *, engine: str) -> dict[str, str]:
    """Without a registry every upstream image must be here or stand in: {ref: kind}, from
    `[images.substitute]` and, for the refs it does not list, the stand-in that serves them
    (node:*, golang:*, alpine:*, debian:*, distroless, the engine's own image); one that none serves
    is one error naming the key."""
    needed = {ref: "images.app.dockerfile" for ref in base_images(images.app.dockerfile)}
    needed[database] = "database.image"
    wanted: dict[str, str] = dict(images.substitute)
    for ref, key in needed.items():
        if ref in wanted or (image_id(ref) is not None and not (image_labels(ref) or {}).get(SUBSTITUTE_LABEL)):
            continue
        kind = auto_kind(ref, engine=engine if key == "database.image" else None)
        if kind is None:
            kinds = ", ".join(SUBSTITUTE_KINDS)
            raise ConfigError(f"images.substitute: {key} needs {ref}, which is not here and no registry answers: "
                              f'add `"{ref}" = "<kind>"` to [images.substitute] (kinds: {kinds}), or `docker load` it')
        say(f"{ref} ({key}) stands in as the {kind} stand-in (no [images.substitute] line needed)")
        wanted[ref] = kind
    return wanted


def _pull_missing(refs: list[str]) -> None:
    for ref in dict.fromkeys(refs):
        if image_id(ref) is None:
            with step(f"pull {ref}"):
                run(["docker", "pull", "--quiet", ref], timeout=PULL_TIMEOUT)


def _image_settings(settings: Settings) -> ImageSettings:
    if settings.images is None:
        raise ConfigError("stageproof.toml has no [images] section: the container stages need one")
    return settings.images
