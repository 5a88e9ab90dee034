"""One cached `go build`: binaries land in a cache folder named by their inputs' hash.

The kind node's programs and the cluster add-ons both build this way: into `<dir>.partial`,
renamed when every expected binary is there, then a `.complete` marker, so an interrupted build
is never mistaken for a finished one and a second run builds nothing. Older keys' folders
(hundreds of MB each) are removed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.images import say


def cached_build(out: Path, key: str, outputs: Sequence[str], build: Callable[[Path], None]) -> Path:
    """`out` (named `<name>-<key>`) holding `outputs`; `build(tmp)` writes them into `tmp` when
    the cache misses. Siblings `<name>-<other key>` are removed once the new one is complete."""
    if (out / ".complete").exists():
        say(f"binaries cached in {out}")
        return out
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    build(tmp)
    missing = [name for name in outputs if not (tmp / name).is_file()]
    if missing:
        raise FileNotFoundError(f"the go build into {out.name} did not produce {missing}")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    (out / ".complete").write_text(key)
    name = out.name.removesuffix(f"-{key}")
    for stale in out.parent.glob(f"{name}-*"):
        if stale != out and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    return out
