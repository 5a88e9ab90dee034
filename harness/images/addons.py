"""Cluster add-ons built with no registry: NetworkPolicy enforcement and an Ingress controller.

Each add-on is one static Go binary from the Go module proxy (a wrapper module under
`harness/addons/<name>/`, built once into the cache, like the kind node's programs) in a `FROM
scratch` image. The k8s stage `kind load`s the images into its nodes and applies
`addon_manifests()`; the manifests name the images this module builds, with `imagePullPolicy:
Never`, so a missing image fails loudly instead of trying a registry.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness.core.cache import build_lock, cache_dir, recipe_hash
from harness.core.run import run
from harness.errors import ConfigError, StageproofError
from harness.images import say, step
from harness.images.docker import RECIPE_LABEL, build_image, image_is_current, require_docker
from harness.images.gobuild import cached_build
from harness.images.kind_node_go import GO_ENV, go_version

ADDONS_DIR = Path(__file__).resolve().parent / "recipes" / "addons"
MANIFESTS = ("network-policies.yaml", "traefik.yaml")
#: kube-apiserver's default --service-node-port-range
NODE_PORTS = range(30000, 32768)


class AddonBuildFailed(StageproofError):
    """An add-on's Go build or image build failed; the message names the add-on."""


@dataclass(frozen=True)
class Addon:
    """One add-on: a Go main package of `upstream`, built in wrapper module `harness/addons/<recipe>/`."""

    name: str
    recipe: str
    upstream: str
    version: str
    package: str
    binary: str
    #: `-X` stamps for the version the binary reports (package var -> value)
    stamps: tuple[tuple[str, str], ...] = ()

    @property
    def image(self) -> str:
        return f"stageproof/{self.name}:{self.version}"

    @property
    def source(self) -> Path:
        return ADDONS_DIR / self.recipe

    @property
    def ldflags(self) -> str:
        return " ".join(["-s", "-w", *(f"-X {var}={value}" for var, value in self.stamps)])


NETWORK_POLICIES = Addon(
    name="kube-network-policies", recipe="network-policies", upstream="sigs.k8s.io/kube-network-policies",
    version="v0.8.0", package="sigs.k8s.io/kube-network-policies/cmd", binary="netpol")
TRAEFIK = Addon(
    name="traefik", recipe="traefik", upstream="github.com/traefik/traefik/v3", version="v3.6.12",
    package="github.com/traefik/traefik/v3/cmd/traefik", binary="traefik",
    stamps=(("github.com/traefik/traefik/v3/pkg/version.Version", "v3.6.12"),
            ("github.com/traefik/traefik/v3/pkg/version.Codename", "ramequin"),
            ("github.com/traefik/traefik/v3/pkg/version.BuildDate", "2026-03-26T09:54:04Z")))
ADDONS = (NETWORK_POLICIES, TRAEFIK)


def ensure_addon_images(*, force: bool = False) -> dict[str, str]:
    """Build (or find current) every add-on image; returns add-on name -> image reference.

    A second call with nothing changed only reads one label per image. `force` rebuilds the
    images; the Go binaries stay cached by their inputs (and Go's own build cache).
    """
    require_docker()
    gov = go_version()
    with build_lock("addons", what="the cluster add-ons", say=say):
        return {addon.name: _ensure_image(addon, gov, force=force) for addon in ADDONS}


def addon_manifests(*, ingress_node_port: int) -> str:
    """Both add-ons' manifests as one YAML stream; Traefik's Service listens on `ingress_node_port`
    of every node (the port the stage maps to 127.0.0.1 in its kind config)."""
    if ingress_node_port not in NODE_PORTS:
        raise ConfigError(f"ingress node port {ingress_node_port} is outside the cluster's NodePort range "
                          f"{NODE_PORTS.start}-{NODE_PORTS.stop - 1}: choose a port in it")
    values = {"NETWORK_POLICIES_IMAGE": NETWORK_POLICIES.image, "TRAEFIK_IMAGE": TRAEFIK.image,
              "INGRESS_NODE_PORT": str(ingress_node_port)}
    docs = []
    for name in MANIFESTS:
        text = (ADDONS_DIR / "manifests" / name).read_text()
        for key, value in values.items():
            text = text.replace(f"@{key}@", value)
        docs.append(text.strip() + "\n")
    return "---\n".join(docs)



def _ensure_image(addon: Addon, gov: str, *, force: bool) -> str:
    key = _binary_key(addon, gov)
    recipe = _image_recipe(addon, gov)
    if not force and image_is_current(addon.image, recipe):
        say(f"{addon.image} is current (recipe {recipe})")
        return addon.image
    started = time.monotonic()
    try:
        with step(f"go build {addon.upstream} {addon.version}"):
            binary = _go_build(addon, key)
        with tempfile.TemporaryDirectory(prefix="stageproof-addon-") as tmp:
            context = Path(tmp)
            shutil.copy2(addon.source / "Dockerfile", context / "Dockerfile")
            shutil.copy2(binary, context / addon.binary)
            build_image(addon.image, context=context, labels={RECIPE_LABEL: recipe})
    except StageproofError as err:
        raise AddonBuildFailed(f"add-on {addon.name} {addon.version} did not build\n{err}") from err
    say(f"built {addon.image} in {time.monotonic() - started:.1f}s")
    return addon.image


def _image_recipe(addon: Addon, gov: str) -> str:
    """The image's label: the hash of its binary's inputs and its Dockerfile."""
    return recipe_hash("addon-image-v1", _binary_key(addon, gov), addon.source / "Dockerfile")


def _binary_key(addon: Addon, gov: str) -> str:
    """What the binary depends on: the wrapper module, its patches, the flags and Go itself."""
    inputs = sorted(path for path in addon.source.iterdir() if path.is_file() and path.name != "Dockerfile")
    return recipe_hash("addon-go-v1", *inputs, addon.package, addon.ldflags, f"go={gov}")


def _go_build(addon: Addon, key: str) -> Path:
    """`go build` the add-on into `$STAGEPROOF_CACHE/addons/bin/<name>-<key>/` (harness.images.gobuild)."""
    patches = sorted(addon.source.glob("*.patch"))

    def build(tmp: Path) -> None:
        cmd = ["go", "build", "-trimpath", f"-ldflags={addon.ldflags}", "-o", str(tmp / addon.binary), addon.package]
        with tempfile.TemporaryDirectory(prefix="stageproof-addon-src-") as work:
            module = _patched_module(addon, patches, Path(work)) if patches else addon.source
            run(cmd, cwd=module, env=GO_ENV)

    out = cached_build(cache_dir("addons", "bin", f"{addon.name}-{key}"), key, [addon.binary], build)
    return out / addon.binary


def _patched_module(addon: Addon, patches: list[Path], work: Path) -> Path:
    """A copy of the wrapper module in `work` whose upstream is replaced by a patched copy of the
    downloaded module (Go verified it against go.sum; the module cache itself is never changed)."""
    listing = run(["go", "mod", "download", "-json", f"{addon.upstream}@{addon.version}"],
                  cwd=addon.source, env=GO_ENV).stdout
    upstream = work / "upstream"
    shutil.copytree(Path(json.loads(listing)["Dir"]), upstream, copy_function=shutil.copyfile)
    for path in [upstream, *upstream.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)  # copied from the read-only module cache
    for patch in patches:
        run(["patch", "--forward", "--batch", "-p1", "-d", str(upstream), "-i", str(patch)])
    for name in ("go.mod", "go.sum"):
        shutil.copyfile(addon.source / name, work / name)
    run(["go", "mod", "edit", f"-replace={addon.upstream}=./upstream"], cwd=work, env=GO_ENV)
    return work
