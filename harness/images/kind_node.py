"""`stageproof images kind-node`: a kind node image built with no registry.

kind's own `kind build node-image` pulls etcd, CoreDNS, pause and the CNI from a registry, which
our machines cannot reach. So we build every part here (Go module proxy + Debian packages), put
the images into the node's containerd ourselves and commit the node with kind's entrypoint.
Every step is cached outside the checkout, keyed by versions and recipe hash: a second run with
nothing changed only inspects one image label.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path

from harness.core.cache import build_lock, recipe_hash
from harness.core.run import run
from harness.core.wait import NotYet, wait_until
from harness.errors import StageUnavailable
from harness.images.docker import RECIPE_LABEL, image_is_current
from harness.images.kind_node_go import HYPERKUBE, ensure_k8s_binaries, ensure_tool_binaries, go_version
from harness.images.kind_node_images import (
    cni_image,
    ensure_built_image,
    ensure_component_images,
    ensure_node_rootfs,
    ensure_toolbox,
)
from harness.images.kind_node_recipe import RECIPE_DIR, Versions, load_versions, note, step
from harness.images.layered import has_whiteouts

NODE_ENTRYPOINT = 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]'


def ensure_kind_node_image(*, force: bool = False) -> str:
    """Build (or find cached) `stageproof/kind-node:<k8s version>`; returns the image tag.

    `force` re-assembles the node image even when the cached one matches its recipe; the
    binaries and component images stay cached by content either way.
    """
    started = time.monotonic()
    v = load_versions()
    ensure_docker()
    ensure_kind_cli(v)
    with node_build_lock():
        return _ensure_node_image(v, force=force, started=started)



def node_build_lock() -> AbstractContextManager[None]:
    """One node image build at a time per cache (a k8s stage, the node checks and CI's background
    prebuild may start together)."""
    return build_lock("kind-node", what="the kind node image", say=note)


def _ensure_node_image(v: Versions, *, force: bool, started: float) -> str:
    """The build proper: every step below is cached on its own, the node image by its label."""
    recipe = recipe_hash("kind-node-v2", RECIPE_DIR, f"go={go_version()}")
    if not force and image_is_current(v.node_image, recipe):
        note(f"{v.node_image} is current (recipe {recipe}); nothing to build")
        return v.node_image
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="debootstrap") as pool:
        # debootstrap waits on the network and disks while Go keeps both cores busy
        debootstrapped = pool.submit(_debootstrap_images, v)
        k8s_bin = ensure_k8s_binaries(v)
        tools = ensure_tool_binaries(v)
        toolbox, rootfs = debootstrapped.result()
    images = ensure_component_images(v, toolbox, k8s_bin / HYPERKUBE, tools)
    base = ensure_node_base(v, rootfs, k8s_bin / HYPERKUBE, tools["crictl"])
    with step("node-image", f"import {len(images)} images into the node's containerd, commit {v.node_image}"):
        assemble_node(base, images, v.node_image, recipe)
    note(f"built {v.node_image} in {time.monotonic() - started:.1f}s")
    return v.node_image


def _debootstrap_images(v: Versions) -> tuple[str, str]:
    return ensure_toolbox(v), ensure_node_rootfs(v)


def ensure_docker() -> None:
    """Fail fast (before a 10-minute Go build) when no Docker daemon answers."""
    if shutil.which("docker") is None or run(["docker", "info"], check=False).returncode != 0:
        raise StageUnavailable("no Docker daemon answers `docker info`: run scripts/setup-machine.sh")


def ensure_kind_cli(v: Versions) -> str:
    """The `kind` on PATH (installed by scripts/setup-machine.sh); warn when it is another version."""
    kind = shutil.which("kind")
    if kind is None:
        raise StageUnavailable(f"`kind` is not on PATH: run scripts/setup-machine.sh (kind {v.kind})")
    version = run([kind, "version"]).stdout.strip()
    if f"kind {v.kind} " not in version + " ":
        note(f"warning: this image is made for kind {v.kind}, PATH has: {version}")
    return kind


def ensure_node_base(v: Versions, rootfs: str, hyperkube: Path, crictl: Path) -> str:
    """Node rootfs + our units, entrypoint, configs, manifests, and hyperkube as kubectl (kubelet
    and kubeadm link to it: a real file, so `docker cp` of /usr/bin/kubectl gets a binary)."""
    tag = f"stageproof/kind-node-base:{v.kubernetes}"
    files = {"bin/kubectl": hyperkube, "bin/crictl": crictl}
    for manifest in ("default-cni.yaml", "default-storage.yaml"):
        files[f"files/kind/manifests/{manifest}"] = RECIPE_DIR / "node" / "manifests" / manifest
    substitutions = {
        "KUBERNETES_VERSION": v.kubernetes,
        "PAUSE_IMAGE": f"registry.k8s.io/pause:{v.pause_image_tag}",
        "CNI_IMAGE": cni_image(v),
        "TOOLBOX_IMAGE": v.toolbox_image,
        "LOCAL_PATH_IMAGE": f"docker.io/stageproof/local-path-provisioner:{v.local_path}",
    }
    with step("node-base", f"docker build {tag} FROM {rootfs}"):
        return ensure_built_image(tag, RECIPE_DIR / "node", rootfs, files, substitutions)


#: where the build container's containerd keeps its state while unpacking: a volume, because the
#: overlayfs snapshotter cannot work on the container's own overlay root
BUILD_ROOT = "/mnt/containerd-build"


def assemble_node(base: str, images: list[str], tag: str, recipe: str, *, unpack: bool = True) -> None:
    """Run `base`, import `images` into its containerd (pinned), commit as `tag`.

    `unpack`: images whose layers hold no whiteouts go in unpacked (snapshots, layer blobs
    discarded), so a node starts their containers with no unpacking: on a busy machine that was
    most of the time a node took to become Ready. The others (and all, without `unpack`) go in as
    layer blobs, unpacked by each node when it first runs them. (Docker would read an unpacked
    whiteout in the committed node as its own, so those are never unpacked here.)
    """
    name = f"stageproof-kind-node-build-{uuid.uuid4().hex[:8]}"
    flat = [ref for ref in images if unpack and not has_whiteouts(ref)]
    layered = [ref for ref in images if ref not in flat]
    with tempfile.TemporaryDirectory(prefix="stageproof-kind-node-") as tmp:
        archives = {group: Path(tmp) / f"{group}.tar" for group, refs in (("flat", flat), ("layered", layered)) if refs}
        for group, archive in archives.items():
            run(["docker", "save", "-o", str(archive), *(flat if group == "flat" else layered)])
        # privileged + a volume: only for the overlayfs snapshotter, and only while importing
        run(["docker", "run", "-d", "--name", name, "--entrypoint", "sleep", *(["--privileged", "--mount",
             f"type=volume,dst={BUILD_ROOT}"] if flat else []), base, "infinity"])
        try:
            for group, archive in archives.items():
                run(["docker", "cp", str(archive), f"{name}:/kind/{group}.tar"])
            _import_images(name, flat, layered)
            run(["docker", "commit", "--change", NODE_ENTRYPOINT, "--change", f"LABEL {RECIPE_LABEL}={recipe}",
                 name, tag])
        finally:
            run(["docker", "rm", "-f", "-v", name], check=False)


def _import_images(container: str, flat: list[str], layered: list[str]) -> None:
    """Start containerd in the build container just long enough to import the archives.

    With `flat` images, containerd runs on BUILD_ROOT (a copy of the node's state, so images
    already in `base` stay), and what changed is copied back (`cp -u`: unchanged files stay in
    the base's layer instead of being copied into the new one)."""
    if flat:
        run(["docker", "exec", container, "sh", "-c",
             f"mkdir -p /var/lib/containerd && cp -a /var/lib/containerd/. {BUILD_ROOT}/"])
    root = f"--root {BUILD_ROOT}" if flat else ""
    run(["docker", "exec", "-d", container, "sh", "-c", f"containerd {root} >/var/log/containerd-build.log 2>&1"])

    def ready() -> None:
        if run(["docker", "exec", container, "ctr", "version"], check=False).returncode != 0:
            raise NotYet("containerd socket not answering")

    wait_until(ready, what="containerd in the node build container", timeout=60)
    ctr = ["docker", "exec", container, "ctr", "--namespace=k8s.io", "images"]
    if flat:
        run([*ctr, "import", "--all-platforms", "--digests", "--snapshotter=overlayfs", "--discard-unpacked-layers",
             "/kind/flat.tar"])
    if layered:
        run([*ctr, "import", "--all-platforms", "--no-unpack", "--digests", "/kind/layered.tar"])
    images = [*flat, *layered]
    listed = set(run([*ctr, "list", "-q"]).stdout.split())
    missing = [ref for ref in images if _normalized(ref) not in listed]
    if missing:
        raise StageUnavailable(f"images missing from the node's containerd after import: {missing}")
    for ref in images:  # pinned: kubelet's image garbage collection never removes them
        run([*ctr, "label", _normalized(ref), "io.cri-containerd.pinned=pinned"])
    keep = f"cp -a -u {BUILD_ROOT}/. /var/lib/containerd/" if flat else "true"
    run(["docker", "exec", container, "sh", "-c",
         f"kill $(pidof containerd); while pidof containerd >/dev/null; do sleep 0.2; done; {keep} && "
         "rm -f /kind/flat.tar /kind/layered.tar /var/log/containerd-build.log"])


def _normalized(ref: str) -> str:
    """containerd's full name for a Docker reference (docker.io/library/ defaults)."""
    first = ref.split("/")[0]
    if "/" not in ref:
        return f"docker.io/library/{ref}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{ref}"
    return ref
