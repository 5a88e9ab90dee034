"""The images a kind node runs, built with no registry.

Static Go binaries become single-layer images via `docker import` of a tar we write (no base
image needed); the few images that need a userland (kube-proxy, the CNI agent, the storage helper,
test pods) start from a debootstrap'd Debian "toolbox". Names and tags are what kubeadm and our
manifests ask for, so the node's containerd never tries to pull.
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.config import environment
from harness.core.cache import recipe_hash
from harness.core.run import run
from harness.images.docker import RECIPE_LABEL, image_is_current
from harness.images.kind_node_recipe import RECIPE_DIR, Versions, note, step
from harness.images.layered import Config, Entry, load_image, saved_layers, write_layer
from harness.images.rootfs import ensure_rootfs_image

IMAGES_DIR = RECIPE_DIR / "images"
PATH_ENV = "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
#: where the one Kubernetes binary sits in the control-plane, kube-proxy and CNI images
HYPERKUBE_PATH = "/usr/local/bin/hyperkube"


@dataclass(frozen=True)
class StaticImage:
    """One static binary at `path` in an otherwise empty image."""

    ref: str
    binary: Path
    path: str
    entrypoint: str | None = None


def ensure_toolbox(v: Versions) -> str:
    """Debian + python3 + iproute2/iptables: base of kube-proxy, the CNI agent, helpers, test pods."""
    with step("toolbox", f"debootstrap {v.toolbox_suite} toolbox image {v.toolbox_image}"):
        return ensure_rootfs_image(v.toolbox_image, suite=v.toolbox_suite, include=v.toolbox_packages,
                                   changes=[PATH_ENV])


def ensure_node_rootfs(v: Versions) -> str:
    """The node's Debian userland: systemd, containerd, runc, CNI plugins, iptables."""
    tag = f"stageproof/kind-node-rootfs:{v.node_suite}"
    with step("node-rootfs", f"debootstrap {v.node_suite} node rootfs {tag}"):
        return ensure_rootfs_image(tag, suite=v.node_suite, include=v.node_packages, changes=[PATH_ENV],
                                   remove=v.node_remove)


def static_images(v: Versions, tools: dict[str, Path]) -> list[StaticImage]:
    """etcd, CoreDNS, pause, provisioner: named as kubeadm and our manifests expect."""
    return [
        StaticImage(f"registry.k8s.io/etcd:{v.etcd_image_tag}", tools["etcd"], "/usr/local/bin/etcd"),
        StaticImage(f"registry.k8s.io/coredns/coredns:{v.coredns}", tools["coredns"], "/coredns",
                    entrypoint="/coredns"),
        StaticImage(f"registry.k8s.io/pause:{v.pause_image_tag}", tools["pause"], "/pause",
                    entrypoint="/pause"),
        StaticImage(f"docker.io/stageproof/local-path-provisioner:{v.local_path}",
                    tools["local-path-provisioner"], "/usr/local/bin/local-path-provisioner",
                    entrypoint="/usr/local/bin/local-path-provisioner"),
    ]


def ensure_static_image(image: StaticImage) -> str:
    """`docker import` a one-file tar; labelled with the binary's hash so unchanged ones are skipped."""
    recipe = recipe_hash("static-v1", image.binary, f"path={image.path}", f"entrypoint={image.entrypoint}")
    if image_is_current(image.ref, recipe):
        return image.ref
    changes = [PATH_ENV, f"LABEL {RECIPE_LABEL}={recipe}"]
    if image.entrypoint:
        changes.append(f'ENTRYPOINT ["{image.entrypoint}"]')
    with tempfile.TemporaryDirectory(prefix="stageproof-static-") as tmp:
        archive = Path(tmp) / "image.tar"
        _write_single_file_tar(archive, image.binary, image.path)
        run(["docker", "import", *_change_args(changes), str(archive), image.ref])
    return image.ref


def _write_single_file_tar(archive: Path, binary: Path, path: str) -> None:
    """A root filesystem holding only `binary` at `path` (plus /tmp, which etcd and others use)."""
    with tarfile.open(archive, "w") as tar:
        tmp_dir = tarfile.TarInfo("tmp")
        tmp_dir.type, tmp_dir.mode = tarfile.DIRTYPE, 0o1777
        tar.addfile(tmp_dir)
        parts = path.strip("/").split("/")
        for depth in range(1, len(parts)):
            info = tarfile.TarInfo("/".join(parts[:depth]))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        info = tar.gettarinfo(str(binary), arcname="/".join(parts))
        info.mode, info.uid, info.gid, info.uname, info.gname = 0o755, 0, 0, "root", "root"
        with binary.open("rb") as data:
            tar.addfile(info, data)


def _change_args(changes: Sequence[str]) -> list[str]:
    return [arg for change in changes for arg in ("--change", change)]


def ensure_built_image(ref: str, source: Path, base: str, files: dict[str, Path],
                       substitutions: dict[str, str] | None = None) -> str:
    """`docker build` the recipe dir `source` FROM `base`, with `files` added to its context.

    `@NAME@` placeholders in the context's text files are replaced from `substitutions`.
    """
    subs = substitutions or {}
    recipe = recipe_hash("built-v1", source, base_id(base), *sorted(files), *files.values(),
                         *(f"{key}={value}" for key, value in sorted(subs.items())))
    if image_is_current(ref, recipe):
        return ref
    with tempfile.TemporaryDirectory(prefix="stageproof-build-") as tmp:
        context = Path(tmp) / "context"
        shutil.copytree(source, context)
        for name, src in files.items():
            (context / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, context / name)
        _substitute(context, subs)
        _mark_executables(context)
        run(["docker", "build", "--build-arg", f"BASE={base}", "--label", f"{RECIPE_LABEL}={recipe}",
             "-t", ref, str(context)], env={"DOCKER_BUILDKIT": environment().buildkit or "0"})
    return ref


def _mark_executables(context: Path) -> None:
    """Scripts and binaries get 0755 in the context, so the Dockerfile needs no chmod layer
    (which would copy every binary once more) and a checkout without exec bits still works."""
    for path in context.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as handle:
                magic = handle.read(4)
            if magic.startswith(b"#!") or magic == b"\x7fELF":
                path.chmod(0o755)


def _substitute(context: Path, subs: dict[str, str]) -> None:
    """Fill `@NAME@` placeholders in the recipe's text files (binaries are left alone)."""
    if not subs:
        return
    for path in context.rglob("*"):
        if not path.is_file() or path.stat().st_size > 1_000_000:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        new = text
        for key, value in subs.items():
            new = new.replace(f"@{key}@", value)
        if new != text:
            path.write_text(new)


def base_id(image: str) -> str:
    """The image ID: a rebuilt base must rebuild what is built FROM it."""
    return run(["docker", "image", "inspect", "--format", "{{.Id}}", image]).stdout.strip()


def ensure_component_images(v: Versions, toolbox: str, hyperkube: Path, tools: dict[str, Path]) -> list[str]:
    """Every image the node's containerd must hold (`toolbox` is their Debian base); returns references."""
    with step("component-images", "control plane, etcd, CoreDNS, pause, provisioner, kube-proxy, CNI agent"):
        refs = ensure_kube_images(v, hyperkube, toolbox)
        refs += [ensure_static_image(image) for image in static_images(v, tools)]
        refs.append(toolbox)
    note("component images: " + ", ".join(refs))
    return refs


def ensure_kube_images(v: Versions, hyperkube: Path, toolbox: str) -> list[str]:
    """The control plane, kube-proxy and the CNI agent (its kubectl): toolbox + hyperkube + a small
    layer each. One chain of layers for all five: the node's containerd stores and unpacks the
    hyperkube layer once (the control plane needs no Debian userland, but it costs nothing there)."""
    recipe = recipe_hash("kube-images-v2", hyperkube, IMAGES_DIR, f"toolbox={base_id(toolbox)}")
    refs = {name: f"registry.k8s.io/{name}:{v.kubernetes}" for name in (*CONTROL_PLANE, "kube-proxy")}
    refs["cni"] = cni_image(v)
    if all(image_is_current(ref, recipe) for ref in refs.values()):
        return list(refs.values())
    with tempfile.TemporaryDirectory(prefix="stageproof-kube-images-") as tmp:
        work = Path(tmp)
        hyper = write_layer(work / "hyperkube.tar", [Entry(HYPERKUBE_PATH, source=hyperkube)])
        debian = saved_layers(toolbox, work)
        for name in CONTROL_PLANE:
            link = write_layer(work / f"{name}.tar", [Entry(f"/usr/local/bin/{name}", link="hyperkube")])
            load_image(refs[name], [*debian, hyper, link], Config(), recipe=recipe)
        proxy, cni = IMAGES_DIR / "kube-proxy", IMAGES_DIR / "cni"
        proxy_layer = write_layer(work / "kube-proxy.tar", [
            Entry("/usr/local/bin/kube-proxy", source=proxy / "kube-proxy-wrapper"),
            Entry("/usr/local/bin/iptables-backend", source=proxy / "iptables-backend")])
        load_image(refs["kube-proxy"], [*debian, hyper, proxy_layer], Config(), recipe=recipe)
        cni_layer = write_layer(work / "cni.tar", [
            Entry("/usr/local/bin/cni-agent", source=cni / "cni-agent"),
            Entry("/usr/local/bin/iptables-backend", source=cni / "iptables-backend"),
            Entry("/usr/local/bin/kubectl", link="hyperkube")])
        load_image(refs["cni"], [*debian, hyper, cni_layer], Config(entrypoint=("/usr/local/bin/cni-agent",)),
                   recipe=recipe)
    return list(refs.values())


def cni_image(v: Versions) -> str:
    return f"docker.io/stageproof/kind-cni:{v.kubernetes}"
