"""Stand-ins for the node, golang, alpine, debian and distroless images, built from Debian packages.

Without a registry, a team's Dockerfile that builds `FROM node:20-alpine` or `FROM golang:1.22`
with a final stage `FROM gcr.io/distroless/static:nonroot` must still build unchanged: each kind
here is built from its recipe in `recipes/<kind>-compat/` on a debootstrap minbase image, tagged
`stageproof/substitute-<kind>:<recipe hash>`, then tagged as each upstream ref by `tag_stand_in`
(a label-only image, plus the ref's own lines: `stand_in_refs.ref_lines`).

The node and golang stand-ins download during a team's build (npm ci, go mod download): containers
here reach the npm registry and the Go module proxy only through the network's TLS-intercepting
proxy, whose CA is in the host's CA bundle only. That bundle is baked into their system trust
store (and into their recipe hash): no host-side service has to run during builds, and every
tool in the image (npm, node's fetch, go, git, curl) trusts it the same way.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from harness.core.cache import recipe_hash
from harness.errors import ConfigError, StageUnavailable
from harness.images.docker import RECIPE_LABEL, build_image, image_id, untag_others
from harness.images.rootfs import ensure_rootfs_image
from harness.images.stand_in_refs import (
    GO_MINOR,
    KINDS,
    NODE_MAJOR,
    debian_suite,
    kind_for,
    parse_ref,
    ref_lines,
    version_note,
)
from harness.images.substitutes import BASE_CHANGES, KIND_LABEL, RECIPES, Substitute

__all__ = ["KINDS", "build_alpine_substitute", "build_debian_substitute", "build_distroless_substitute",
           "build_for", "build_golang_substitute", "build_kind", "build_node_substitute", "debian_suite", "kind_for",
           "parse_ref", "ref_lines", "tag_stand_in", "version_note"]

#: the machine's CA bundle, which holds the CA of the network's TLS proxy (Debian's path)
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
#: the suite of the node, golang, alpine and distroless stand-ins (Node.js 20, Go 1.24)
SUITE = "trixie"
ALPINE_BIN = RECIPES / "alpine-compat" / "bin"


def base_image(suite: str = SUITE) -> str:
    """The debootstrap minbase image of `suite` every stand-in starts from (cached by its recipe)."""
    return ensure_rootfs_image(f"stageproof/base:{suite}-minbase", suite=suite, changes=BASE_CHANGES)


def build_node_substitute(*, force: bool = False, ca_bundle: Path = HOST_CA_BUNDLE) -> Substitute:
    """Debian trixie's Node.js 20 + npm 10 and yarn 1 from the npm registry, trusting the host's CA."""
    tag = _build("node", extra={"host-ca.crt": _ca(ca_bundle), "alpine-bin": ALPINE_BIN}, force=force)
    return Substitute(tag, f"{tag} (Debian trixie Node.js {NODE_MAJOR}, npm 10.8.2, yarn 1.22.22, "
                           f"the host's CA bundle for the npm registry)")


def build_golang_substitute(*, force: bool = False, ca_bundle: Path = HOST_CA_BUNDLE) -> Substitute:
    """Debian trixie's Go 1.24 + gcc as the official Debian-based tags, trusting the host's CA."""
    tag = _build("golang", extra={"host-ca.crt": _ca(ca_bundle), "alpine-bin": ALPINE_BIN}, force=force)
    return Substitute(tag, f"{tag} (Debian trixie Go 1.{GO_MINOR}, gcc, GOTOOLCHAIN=auto, "
                           "the host's CA bundle for the Go module proxy)")


def build_alpine_substitute(*, force: bool = False) -> Substitute:
    """BusyBox + glibc + ca-certificates + tzdata FROM scratch; `apk` explains why it cannot run."""
    tag = _build("alpine", force=force)
    return Substitute(tag, f"{tag} (Debian trixie busybox, glibc, ca-certificates and tzdata; no apk)")


def build_distroless_substitute(*, force: bool = False) -> Substitute:
    """ca-certificates, tzdata, netbase, passwd with root/nobody/nonroot FROM scratch: no shell."""
    tag = _build("distroless", force=force)
    return Substitute(tag, f"{tag} (Debian trixie ca-certificates, tzdata and netbase; root, nonroot 65532)")


def build_debian_substitute(*, force: bool = False, suite: str = "bookworm") -> Substitute:
    """A debootstrap minbase of `suite` with the official image's apt setup."""
    if suite not in {"bullseye", "bookworm", "trixie"}:
        raise ConfigError(f"images.substitute: no debian stand-in for suite {suite!r} "
                          "(bullseye, bookworm and trixie are built here)")
    tag = _build("debian", force=force, suite=suite, args={"SUITE": suite}, repository=f"debian-{suite}")
    return Substitute(tag, f"{tag} (debootstrap minbase of Debian {suite}, the -slim images' apt setup)")


def build_for(ref: str, *, force: bool = False) -> Substitute:
    """The stand-in for upstream `ref` (built when missing), whichever kind serves it."""
    kind = kind_for(ref)
    if kind is None:
        raise ConfigError(f"images.substitute: no stand-in serves {ref} (stand-ins: node:*, golang:*, alpine:*, "
                          "debian:<bullseye|bookworm|trixie>*, gcr.io/distroless/static*:latest|nonroot)")
    return build_kind(kind, ref, force=force)


def build_kind(kind: str, ref: str, *, force: bool = False) -> Substitute:
    """The stand-in of `kind` (as the config names it) for upstream `ref`."""
    builders = {"node": build_node_substitute, "golang": build_golang_substitute, "alpine": build_alpine_substitute,
                "distroless": build_distroless_substitute}
    if kind in builders:
        return builders[kind](force=force)
    if kind == "debian":
        return build_debian_substitute(force=force, suite=debian_suite(ref) or "bookworm")
    raise ConfigError(f"images.substitute: {ref} = {kind!r}: no such stand-in (kinds: {', '.join(KINDS)})")


def tag_stand_in(ref: str, substitute: str) -> str:
    """Tag `substitute` as `ref` (harness.images.substitutes.stand_in)."""
    from harness.images.substitutes import stand_in

    return stand_in(ref, substitute)


def _build(kind: str, *, force: bool, extra: Mapping[str, Path] | None = None, suite: str = SUITE,
           args: Mapping[str, str] | None = None, repository: str | None = None) -> str:
    """Build `recipes/<kind>-compat` (plus `extra` files copied into its context) unless current."""
    recipe_dir = RECIPES / f"{kind}-compat"
    base = base_image(suite)
    extra = extra or {}
    inputs = [item for name, path in sorted(extra.items()) for item in (f"extra:{name}", path)]
    recipe = recipe_hash(f"{kind}-stand-in-v1", recipe_dir, *inputs, f"base:{image_id(base)}",
                         *(f"{name}={value}" for name, value in sorted((args or {}).items())))
    repository = f"stageproof/substitute-{repository or kind}"
    tag = f"{repository}:{recipe}"
    if force or image_id(tag) is None:
        with tempfile.TemporaryDirectory(prefix=f"stageproof-{kind}-stand-in-") as tmp:
            context = Path(tmp)
            shutil.copytree(recipe_dir, context, dirs_exist_ok=True)
            for name, path in extra.items():
                if path.is_dir():
                    shutil.copytree(path, context / name)
                else:
                    shutil.copyfile(path, context / name)
            build_image(tag, context=context, no_cache=force, labels={RECIPE_LABEL: recipe, KIND_LABEL: kind},
                        args={"BASE_IMAGE": base, **(args or {})})
        untag_others(repository, keep=tag)  # only a new build makes the others stale
    return tag


def _ca(bundle: Path) -> Path:
    if not bundle.is_file():
        raise StageUnavailable(f"no CA bundle at {bundle}: the node and golang stand-ins trust the network's "
                               "TLS proxy through the host's bundle (install ca-certificates, or pass ca_bundle)")
    return bundle
