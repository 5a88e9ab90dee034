"""Registry mode's images: what stageproof builds, pushed to `[images] registry` under the names
registry mode pulls.

Our machines reach no upstream registry, so the images that stand in for the upstream ones (the
substitutes for `mysql:8.4` and `python:3.11-slim`, our node image for `kindest/node`) are pushed
under the UPSTREAM names, as a STAND-IN: a node that pulls `mysql:8.4` through the registry (the
`docker.io` mirror) gets our substitute, labelled as one, never the real upstream image.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.config import Settings
from harness.core.run import run
from harness.errors import ConfigError
from harness.images import say

PUSH_TIMEOUT = 900.0
DOCKER_HUB = "docker.io"


@dataclass(frozen=True)
class Pushed:
    """One image in the registry: the local ref it came from, its name there, and its digest."""

    local: str
    remote: str
    digest: str
    seconds: float
    #: true when `remote` names an upstream image that `local` only stands in for
    stand_in: bool

    @property
    def by_digest(self) -> str:
        """`<registry>/<name>@sha256:...`: the pushed content, whatever the tag points at later."""
        return f"{self.remote.rsplit(':', 1)[0]}@{self.digest}"


def upstream_path(ref: str) -> str:
    """`mysql:8.4` -> `library/mysql:8.4`: the path a `docker.io` mirror is asked for."""
    name = ref.split("/", 1)[1] if ref.startswith(f"{DOCKER_HUB}/") else ref
    return name if "/" in name.split(":", 1)[0] else f"library/{name}"


def kind_node_name(version: str) -> str:
    """What registry mode runs as the kind node image (stand-in for kind's `kindest/node`)."""
    return f"kindest/node:{version}"


def registry_of(settings: Settings) -> str:
    if settings.images is None or settings.images.registry is None:
        raise ConfigError("images.registry: not set (registry mode needs the registry to push to and pull from)")
    return settings.images.registry


def push_all(settings: Settings, images: Mapping[str, str], *, stand_ins: Mapping[str, str]) -> list[Pushed]:
    """Push `images` ({local ref: name in the registry}) and `stand_ins` ({local: upstream ref})
    to the registry; each stand-in goes under the upstream name's mirror path."""
    registry = registry_of(settings)
    plan = [(local, f"{registry}/{name}", False) for local, name in images.items()]
    plan += [(local, f"{registry}/{upstream_path(upstream)}", True) for local, upstream in stand_ins.items()]
    with docker_login(registry, settings.registry_credentials) as config:
        return [push(local, remote, stand_in=stand_in, docker_config=config) for local, remote, stand_in in plan]


def push_built(settings: Settings, *, node_image: bool = False, release: str | None = None) -> list[Pushed]:
    """Build what stageproof builds (air-gapped: the stand-ins are the only upstream images here)
    and push it: the app image under its own name, the substitutes and our kind node image as
    STAND-INS under the upstream names registry mode pulls."""
    from harness.images.build import ensure_images
    from harness.images.kind_node import ensure_kind_node_image
    from harness.images.kind_node_recipe import load_versions

    images = settings.images
    assert images is not None
    forced = settings.model_copy(update={"images": images.model_copy(update={"airgap": "always"})})
    built = ensure_images(forced, release=release)
    stand_ins = {built.database: built.database, **{ref: ref for ref in built.substitutes}}
    if node_image:
        stand_ins[ensure_kind_node_image()] = kind_node_name(load_versions().kubernetes)
    return push_all(settings, {built.app: built.app}, stand_ins=stand_ins)


def push(local: str, remote: str, *, stand_in: bool, docker_config: Path | None = None) -> Pushed:
    """`docker tag` + `docker push`; the digest is the registry's (what a pull by digest names)."""
    started = time.monotonic()
    run(["docker", "tag", local, remote])
    prefix = ["docker", "--config", str(docker_config)] if docker_config else ["docker"]
    out = run([*prefix, "push", remote], timeout=PUSH_TIMEOUT).stdout
    digest = next((word for line in out.splitlines() for word in line.split() if word.startswith("sha256:")), "")
    seconds = time.monotonic() - started
    label = f" (STAND-IN for upstream {remote.split('/', 1)[1]}, not the real image)" if stand_in else ""
    say(f"pushed {local} -> {remote}@{digest[:19]} in {seconds:.1f}s{label}")
    return Pushed(local, remote, digest, seconds, stand_in)


@contextmanager
def docker_login(registry: str, credentials: tuple[str, str] | None) -> Iterator[Path | None]:
    """`docker login` into a throwaway client config (never the user's ~/.docker), if credentials."""
    if credentials is None:
        yield None
        return
    user, password = credentials
    with tempfile.TemporaryDirectory(prefix="stageproof-docker-config-") as tmp:
        run(["docker", "--config", tmp, "login", "--username", user, "--password-stdin", registry.split("/")[0]],
            input=password)
        yield Path(tmp)
