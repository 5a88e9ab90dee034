"""The wheelhouse from nothing, as a uv user's first run meets it: a venv with no pip (uv made it), an
empty `$STAGEPROOF_CACHE`, and a requirement with no binary wheel (docopt 0.6.2 is an sdist only).

Each way of finding a pip is tried on its own, then the default order: every one must build the wheel.
A warm cache hid exactly this once (the guestbook's docopt in a uv-made nox venv).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from harness.core.run import run

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import sys
from pathlib import Path
from harness.images import wheels
if sys.argv[2] != "default":
    wheels.BUILDERS = (getattr(wheels, sys.argv[2]),)
house = wheels.ensure_wheelhouse(Path(sys.argv[1]))
print("WHEELS", sorted(path.name for path in house.glob("*.whl")))
"""

pytestmark = pytest.mark.skipif(shutil.which("uv") is None, reason="needs uv (pip install uv)")


@pytest.fixture(scope="module")
def pipless_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A uv-made venv with stageproof installed and no pip in it."""
    venv = tmp_path_factory.mktemp("uv") / "venv"
    run(["uv", "venv", "--quiet", "--python", sys.executable, str(venv)], timeout=120)
    python = venv / "bin" / "python"
    run(["uv", "pip", "install", "--quiet", "--python", str(python), "-e", str(ROOT)], timeout=600)
    assert run([python, "-m", "pip", "--version"], check=False).returncode != 0, "the venv was meant to lack pip"
    return python


@pytest.mark.parametrize("builder", ["default", "pip_by_uv", "pip_bootstrapped"])
def test_an_sdist_only_requirement_builds_from_a_venv_without_pip_and_an_empty_cache(
        pipless_python: Path, tmp_path: Path, builder: str) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("docopt==0.6.2\n")
    cache = tmp_path / "cache"
    env = {"STAGEPROOF_CACHE": str(cache), "PATH": f"{pipless_python.parent}{os.pathsep}{os.environ['PATH']}",
           "VIRTUAL_ENV": str(pipless_python.parent.parent)}
    proc = run([pipless_python, "-c", SCRIPT, str(requirements), builder], env=env, timeout=600)
    assert "WHEELS ['docopt-0.6.2-py2.py3-none-any.whl']" in proc.stdout, proc.stdout + proc.stderr
    assert "built here from sdists: docopt" in proc.stdout, proc.stdout
    assert list(cache.glob("wheels/*/docopt-0.6.2-py2.py3-none-any.whl")), "the wheelhouse is not in the cache"
