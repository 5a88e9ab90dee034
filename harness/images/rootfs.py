"""Base images with no registry: a Debian rootfs from debootstrap, then `docker import`.

This is how every image starts on an air-gapped machine; the result is labelled with the hash of
its recipe so that a second run with the same suite and packages builds nothing.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from harness.core.cache import recipe_hash
from harness.core.run import run
from harness.images.docker import RECIPE_LABEL, image_is_current

log = logging.getLogger("stageproof.images")


def ensure_rootfs_image(
    tag: str,
    *,
    suite: str,
    include: Sequence[str] = (),
    variant: str = "minbase",
    changes: Sequence[str] = (),
    extra_label: str = "",
    remove: Sequence[str] = (),
) -> str:
    """Build `tag` from `debootstrap --variant=<variant> --include=<include> <suite>` unless current.

    `changes` are Dockerfile instructions for `docker import --change` (ENV, ENTRYPOINT, ...).
    `remove`: glob patterns (relative to the root) of files the image does not need, deleted
    before the import (a later layer's `rm` would only hide them, not make the image smaller).
    """
    # Prefixed: a bare "" would be read by recipe_hash as the path "." and hash the whole cwd.
    recipe = recipe_hash("rootfs-v2", suite, variant, *sorted(include), *changes, f"label:{extra_label}",
                         *(f"remove:{pattern}" for pattern in remove))
    if image_is_current(tag, recipe):
        log.info("image %s is current (recipe %s)", tag, recipe)
        return tag
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="stageproof-rootfs-"))
    try:
        rootfs = workdir / "rootfs"
        cmd = ["debootstrap", f"--variant={variant}"]
        if include:
            cmd.append("--include=" + ",".join(include))
        run([*cmd, suite, str(rootfs)])
        _trim(rootfs, remove)
        args = ["docker", "import", "--change", f"LABEL {RECIPE_LABEL}={recipe}"]
        for change in changes:
            args += ["--change", change]
        run(["tar", "-C", str(rootfs), "-cf", str(workdir / "rootfs.tar"), "."])
        run([*args, str(workdir / "rootfs.tar"), tag])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    log.info("built %s from debootstrap %s in %.0fs", tag, suite, time.monotonic() - started)
    return tag


#: emptied in every base: apt's caches, docs and message translations (no program needs them;
#: images run with LANG=C.UTF-8, whose locale is built into glibc)
TRIMMED = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info",
           "usr/share/locale", "usr/share/lintian")
#: deleted from every base: Python bytecode (the official python images ship none either; an
#: app's own Dockerfile compiles what it wants) and glibc's iconv modules (9 MB; Python's codecs
#: and the programs here do not use iconv, whose UTF-8/UTF-16/Latin-1 conversions are built in)
PRUNED = ("usr/lib/python3*/**/__pycache__", "usr/lib/x86_64-linux-gnu/gconv")


def _trim(rootfs: Path, remove: Sequence[str] = ()) -> None:
    """Empty TRIMMED and delete what PRUNED and `remove` match: they only make the image bigger."""
    targets = [child for sub in TRIMMED if (rootfs / sub).is_dir() for child in (rootfs / sub).iterdir()]
    targets += [path for pattern in (*PRUNED, *remove) for path in rootfs.glob(pattern.lstrip("/"))]
    for target in targets:
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)


MINIMAL_BASE = "stageproof/base-minimal:bookworm"
MINIMAL_CHANGES = ("ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "ENV LANG=C.UTF-8")


def ensure_minimal_base(tag: str = MINIMAL_BASE, *, suite: str = "bookworm") -> str:
    """Debian's minbase with nothing added (no Python, unlike the python stand-in's base): the
    base of images that bring their own packages, like the database stand-in (mysql-compat)."""
    return ensure_rootfs_image(tag, suite=suite, changes=MINIMAL_CHANGES)
