"""A wheelhouse built on the host: pip inside a container cannot reach an index over https here.

The wheels are binary wheels for CPython 3.11 on manylinux x86_64 (what both `python:3.11-slim`
and Debian bookworm's python3 run), kept in the cache keyed by the requirements file, so an
image build installs with `--no-index --find-links` and a second run downloads nothing.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from harness.cache import cache_dir, recipe_hash
from harness.errors import StageUnavailable
from harness.run import run

PYTHON_VERSION = "3.11"
# Any manylinux tag up to glibc 2.36 (bookworm) runs in both base images.
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64", "manylinux_2_34_x86_64")
COMPLETE = ".complete"


def ensure_wheelhouse(requirements: Path, *, timeout: float = 600) -> Path:
    """The folder of wheels for `requirements`, downloaded once per distinct requirements file."""
    key = recipe_hash("wheels-v2", requirements, PYTHON_VERSION, *PLATFORMS)
    target = cache_dir("wheels") / key
    if (target / COMPLETE).exists():
        return target
    partial = target.with_name(f"{key}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    run([*_pip(), "download", "--disable-pip-version-check", "--only-binary=:all:",
         "--python-version", PYTHON_VERSION, "--implementation", "cp", "--abi", f"cp{PYTHON_VERSION.replace('.', '')}",
         *platforms, "--requirement", str(requirements), "--dest", str(partial)], timeout=timeout)
    # The wheelhouse describes itself: the image installs `-r /wheels/requirements.txt`.
    shutil.copyfile(requirements, partial / "requirements.txt")
    (partial / COMPLETE).write_text(str(requirements) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


def _pip() -> list[str]:
    """A pip to download with: this interpreter's, the one its venv was made from (a uv venv has
    no pip), python3's on PATH, else pip run by uv. Which one does not matter: --python-version
    and --platform pick the wheels.
    """
    pythons = (sys.executable, getattr(sys, "_base_executable", None), shutil.which("python3"))
    for python in dict.fromkeys(p for p in pythons if p):
        if run([python, "-m", "pip", "--version"], check=False).returncode == 0:
            return [python, "-m", "pip"]
    if shutil.which("uv"):
        return ["uv", "tool", "run", "--from", "pip", "pip"]
    raise StageUnavailable("building the wheelhouse needs pip: no interpreter here has it "
                           "(apt-get install python3-pip, or run from a virtualenv with pip)")
