"""Images assembled from layer tars written here, loaded with `docker load`.

`docker build` and `docker import` give every layer bytes of its own (timestamps of the moment),
so one file put into three images is stored three times. A layer written here is byte-identical
wherever the same files go in, so images that share it share one blob: the node's containerd is
content-addressed and keeps it once (one Kubernetes binary serves the node and every control-plane
image). Layers of an existing image (a Debian base) are reused as `docker save` wrote them.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.core.run import run
from harness.images.docker import RECIPE_LABEL, image_id, image_is_current

#: the time every entry of a layer written here carries (reproducible bytes, reproducible digests)
EPOCH = 0


@dataclass(frozen=True)
class Entry:
    """One file in a layer: a copy of `source`, or a symlink to `link`, at `path` in the image."""

    path: str
    source: Path | None = None
    link: str | None = None
    mode: int = 0o755


@dataclass(frozen=True)
class Config:
    """The image config a layered image gets (what `docker import --change` would set)."""

    env: tuple[str, ...] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
    entrypoint: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)


def write_layer(target: Path, entries: Sequence[Entry], *, dirs: Sequence[str] = ()) -> Path:
    """A layer tar at `target` holding `entries` (and their parent folders, and `dirs`: `tmp` is
    1777) with fixed owners and times, so the same entries always give the same bytes."""
    folders = {"/".join(entry.path.strip("/").split("/")[:depth])
               for entry in entries for depth in range(1, len(entry.path.strip("/").split("/")))}
    folders |= {folder.strip("/") for folder in dirs}
    with tarfile.open(target, "w", format=tarfile.GNU_FORMAT) as tar:
        for folder in sorted(folders):
            tar.addfile(_info(folder, tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755))
        for entry in sorted(entries, key=lambda item: item.path):
            name = entry.path.strip("/")
            if entry.link is not None:
                info = _info(name, tarfile.SYMTYPE, 0o777)
                info.linkname = entry.link
                tar.addfile(info)
                continue
            assert entry.source is not None, f"{entry.path}: an entry needs a source or a link"
            info = _info(name, tarfile.REGTYPE, entry.mode)
            info.size = entry.source.stat().st_size
            with entry.source.open("rb") as data:
                tar.addfile(info, data)
    return target


def _info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def saved_layers(image: str, workdir: Path) -> list[Path]:
    """The layer tars of local `image`, bottom first, as `docker save` writes them into `workdir`."""
    archive = workdir / "saved.tar"
    run(["docker", "save", "-o", str(archive), image])
    out = workdir / "saved"
    with tarfile.open(archive) as tar:
        tar.extractall(out, filter="data")
    archive.unlink()
    manifest = json.loads((out / "manifest.json").read_text())
    return [out / layer for layer in manifest[0]["Layers"]]


def load_image(ref: str, layers: Sequence[Path], config: Config, *, recipe: str) -> str:
    """`docker load` an image `ref` of `layers` (bottom first), labelled with `recipe`; skipped
    when `ref` is already labelled so."""
    if image_is_current(ref, recipe):
        return ref
    replaced = image_id(ref)
    diff_ids = [f"sha256:{_sha256(layer)}" for layer in layers]
    image_config = {
        "architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z",
        "config": {"Env": list(config.env), **({"Entrypoint": list(config.entrypoint)} if config.entrypoint else {}),
                   "Labels": {**config.labels, RECIPE_LABEL: recipe}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": f"stageproof layer {layer.name}"}
                    for layer in layers],
    }
    blob = json.dumps(image_config, sort_keys=True).encode()
    config_name = f"{hashlib.sha256(blob).hexdigest()}.json"
    with tempfile.TemporaryDirectory(prefix="stageproof-layered-") as tmp:
        archive = Path(tmp) / "image.tar"
        with tarfile.open(archive, "w") as tar:
            _add_bytes(tar, config_name, blob)
            names = [f"{digest.removeprefix('sha256:')}.tar" for digest in diff_ids]
            manifest = [{"Config": config_name, "RepoTags": [ref], "Layers": names}]
            _add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
            for name, layer in dict(zip(names, layers, strict=True)).items():
                tar.add(layer, arcname=name)
        run(["docker", "load", "-i", str(archive)])
    if replaced and replaced != image_id(ref):
        run(["docker", "image", "rm", replaced], check=False)  # refused while anything still uses it
    return ref


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), EPOCH
    tar.addfile(info, io.BytesIO(data))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def has_whiteouts(image: str) -> bool:
    """True when a layer of local `image` deletes something (`.wh.` entries): such an image is not
    unpacked into a node image (Docker would read the unpacked whiteouts as its own)."""
    with tempfile.TemporaryDirectory(prefix="stageproof-whiteouts-") as tmp:
        for layer in saved_layers(image, Path(tmp)):
            with tarfile.open(layer) as tar:
                if any(Path(member.name).name.startswith(".wh.") for member in tar):
                    return True
    return False
