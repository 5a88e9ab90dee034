"""A build context as `docker build` sees it (`.dockerignore` applied, by docker-py's own matcher),
and a digest of everything a build reads, so that a build whose inputs have not changed is not
sent to Docker again (the wheel server, the context upload and the cache walk cost seconds)."""

from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import Mapping
from pathlib import Path

from docker.utils.build import exclude_paths

CHUNK = 1 << 20


def context_files(context: Path, dockerfile: Path | None = None) -> list[str]:
    """The paths, relative to `context` and sorted, that `docker build` sends of it."""
    keep = dockerfile.relative_to(context).as_posix() if dockerfile and dockerfile.is_relative_to(context) else None
    return sorted(exclude_paths(str(context), _ignore_patterns(context), dockerfile=keep))


def build_digest(context: Path, dockerfile: Path, inputs: Mapping[str, object]) -> str:
    """sha256 over the Dockerfile, every context file (path, type and permissions, content or link
    target) and `inputs` (tag, labels, build args, the base images' ids): equal digests, equal builds."""
    digest = hashlib.sha256()
    digest.update(json.dumps(inputs, sort_keys=True, default=str).encode())
    digest.update(b"\0dockerfile\0" + dockerfile.read_bytes())
    for relative in context_files(context, dockerfile):
        path = context / relative
        info = path.lstat()
        digest.update(f"\0{relative}\0{info.st_mode:o}\0".encode())
        if stat.S_ISLNK(info.st_mode):
            digest.update(str(path.readlink()).encode())
        elif stat.S_ISREG(info.st_mode):
            with path.open("rb") as handle:
                while chunk := handle.read(CHUNK):
                    digest.update(chunk)
    return digest.hexdigest()[:16]


def _ignore_patterns(context: Path) -> list[str]:
    ignore = context / ".dockerignore"
    if not ignore.is_file():
        return []
    lines = (line.strip() for line in ignore.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]
