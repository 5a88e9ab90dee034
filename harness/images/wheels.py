"""Wheels built on the host: pip inside a container cannot reach an index over https here.

`ensure_wheelhouse` gets the wheels for one requirements file (binary wheels for CPython 3.11 on
manylinux x86_64, what both `python:3.11-slim` and Debian bookworm's python3 run; wheels built on
the host for sdist-only requirements), kept in the cache keyed by the file. `add_to_pool` adds them
to one shared pool, the wheel pool baked into the python substitute: every app's wheels end up in
it, so two apps on one machine converge on one substitute image instead of flipping its tag.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from harness.core.cache import cache_dir, recipe_hash
from harness.core.run import run
from harness.errors import CommandFailed, StageUnavailable
from harness.images import say

PYTHON_VERSION = "3.11"
# Any manylinux tag up to glibc 2.36 (bookworm) runs in both base images.
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64", "manylinux_2_34_x86_64")
COMPLETE = ".complete"
#: what `pip wheel` prints for each wheel it built from an sdist
BUILT_WHEEL = re.compile(r"Created wheel for ([^:]+):")


def ensure_wheelhouse(requirements: Path, *, timeout: float = 900) -> Path:
    """The folder of wheels for `requirements`, fetched once per distinct requirements file."""
    key = recipe_hash("wheels-v2", requirements, PYTHON_VERSION, *PLATFORMS)
    target = cache_dir("wheels") / key
    if (target / COMPLETE).exists():
        return target
    partial = target.with_name(f"{key}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        _download_binary(requirements, partial, timeout=timeout)
    except CommandFailed as err:
        # An sdist-only requirement (`docopt==0.6.2`): build every wheel on the host instead.
        reason = (err.stderr or err.stdout).strip().splitlines()[-1:] or ["pip download failed"]
        say(f"no binary wheel for every requirement ({reason[0]}): building wheels on the host")
        shutil.rmtree(partial, ignore_errors=True)
        _build_wheels(requirements, partial, timeout=timeout)
    # The wheelhouse describes itself: `pip install -r <wheelhouse>/requirements.txt` works.
    shutil.copyfile(requirements, partial / "requirements.txt")
    (partial / COMPLETE).write_text(str(requirements) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


def add_to_pool(wheelhouse: Path) -> Path:
    """Add the wheels of `wheelhouse` to the shared pool (never removing any); returns the pool."""
    pool = cache_dir("wheels", "pool")
    for wheel in sorted(wheelhouse.glob("*.whl")):
        target = pool / wheel.name
        if target.exists():
            continue
        partial = pool / f".{wheel.name}.partial"
        shutil.copyfile(wheel, partial)
        partial.rename(target)
    return pool


def pool_wheels(pool: Path) -> list[Path]:
    """The wheels of the pool, sorted by name (what keys the python substitute)."""
    return sorted(pool.glob("*.whl"), key=lambda path: path.name)


def link_or_copy(source: Path, target: Path) -> None:
    """A hard link when both are on one filesystem (a wheel pool is big), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _download_binary(requirements: Path, dest: Path, *, timeout: float) -> None:
    """Binary wheels for the image's Python and platform, whatever the host runs."""
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    run([*_pip(), "download", "--disable-pip-version-check", "--only-binary=:all:",
         "--python-version", PYTHON_VERSION, "--implementation", "cp", "--abi", f"cp{PYTHON_VERSION.replace('.', '')}",
         *platforms, "--requirement", str(requirements), "--dest", str(dest)], timeout=timeout)


def _build_wheels(requirements: Path, dest: Path, *, timeout: float) -> None:
    """`pip wheel` on the host for CPython 3.11 (the image's version), with whatever pip this machine
    has: one beside a 3.11 interpreter, pip run by uv, or pip bootstrapped into a throwaway venv
    (a uv-made venv or a `uv tool` install has none). The progress line names what was built."""
    # --no-cache-dir: no hidden state of pip's own (this cache is ours, keyed by the file)
    with tempfile.TemporaryDirectory(prefix="stageproof-pip-") as scratch:
        pip, how = _wheel_builder(Path(scratch), timeout=timeout)
        say(f"building wheels for {requirements.name} with {how}")
        proc = run([*pip, "wheel", "--disable-pip-version-check", "--no-cache-dir", "--requirement", str(requirements),
                    "--wheel-dir", str(dest)], timeout=timeout)
    built = BUILT_WHEEL.findall(proc.stdout)
    say(f"wheelhouse for {requirements.name}: {len(list(dest.glob('*.whl')))} wheels"
        + (f", built here from sdists: {', '.join(built)}" if built else ""))


Builder = tuple[list[str], str]


def _wheel_builder(scratch: Path, *, timeout: float) -> Builder:
    """A pip for CPython 3.11 and how it was found, the first of `BUILDERS` this machine offers."""
    for find in BUILDERS:
        found = find(scratch, timeout)
        if found is not None:
            return found
    raise StageUnavailable(
        f"a requirement has no binary wheel for CPython {PYTHON_VERSION} (see above), so its wheel must be "
        f"built on this machine with pip, and none was found: no CPython {PYTHON_VERSION} here has pip or "
        f"ensurepip (Debian: apt-get install python3-venv), and uv is not on PATH; "
        f"this is {sys.version.split()[0]} at {sys.executable}")


def pip_beside_python(scratch: Path, timeout: float) -> Builder | None:
    """The pip of a CPython 3.11 here (this interpreter, the one its venv was made from, python3.11)."""
    for python in _pythons_311():
        if run([python, "-m", "pip", "--version"], check=False).returncode == 0:
            return [python, "-m", "pip"], f"the pip of {python}"
    return None


def pip_by_uv(scratch: Path, timeout: float) -> Builder | None:
    """pip run by uv in a tool environment of its own (`uv tool run --from pip`)."""
    uv, pythons = shutil.which("uv"), _pythons_311()
    if uv is None or not pythons:
        return None
    return [uv, "tool", "run", "--python", pythons[0], "--from", "pip", "pip"], f"pip run by uv ({uv})"


def pip_bootstrapped(scratch: Path, timeout: float) -> Builder | None:
    """pip put by `ensurepip` into a throwaway venv under `scratch` (removed after the build)."""
    for python in _pythons_311():
        venv = scratch / "venv"
        if run([python, "-m", "venv", "--clear", str(venv)], check=False, timeout=timeout).returncode == 0:
            return [str(venv / "bin" / "python"), "-m", "pip"], f"pip bootstrapped into a throwaway venv of {python}"
    return None


BUILDERS = (pip_beside_python, pip_by_uv, pip_bootstrapped)


def _pythons_311() -> list[str]:
    """CPython 3.11 interpreters here: this one, the one its venv was made from, `python3.11` on PATH."""
    found: list[str] = []
    if sys.version_info[:2] == (3, 11):
        found += [sys.executable, getattr(sys, "_base_executable", "") or sys.executable]
    found += [path for path in [shutil.which(f"python{PYTHON_VERSION}")] if path]
    return list(dict.fromkeys(path for path in found if path))


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

