"""Run from a team's folder (no pyproject.toml of ours, no `markers` ini), stageproof's suite must
not warn about its own marks: the plugin registers every marker it or its checks use."""

from __future__ import annotations

import ast
import shutil
import sys
from pathlib import Path

import harness
from harness.core.run import run
from harness.pytest_plugin import MARKERS

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "two-tier"
BUILT_IN = {"parametrize", "skip", "skipif", "xfail", "usefixtures", "filterwarnings"}


def test_the_suite_collects_from_a_team_folder_without_marker_warnings(tmp_path: Path) -> None:
    """As a team runs it: stageproof installed (here: a copy of the package, so no pyproject.toml of
    ours is above it to register markers), their folder holding only their files and stageproof.toml."""
    site, team = tmp_path / "site", tmp_path / "team"
    shutil.copytree(Path(harness.__file__).parent, site / "harness",
                    ignore=shutil.ignore_patterns("recipes", "__pycache__"))
    shutil.copytree(FIXTURE, team, ignore=shutil.ignore_patterns("mysql-data"))
    proc = run([sys.executable, "-m", "pytest", "--pyargs", "harness.checks.suite", "--collect-only",
                "-p", "no:cacheprovider"], cwd=team, env={"PYTHONPATH": str(site)}, check=False, timeout=300)
    output = proc.stdout + proc.stderr
    assert f"rootdir: {team}\n" in output and "configfile:" not in output, output[-3000:]  # no ini of ours
    assert "PytestUnknownMarkWarning" not in output, output[-3000:]
    assert proc.returncode == 0, output[-3000:]


def test_every_mark_the_harness_uses_is_registered_by_the_plugin() -> None:
    """Each `pytest.mark.<name>` in harness/ (the checks, the contract suite) is in the plugin's MARKERS."""
    registered = {marker.split("(")[0].split(":")[0] for marker in MARKERS}
    used = set()
    for path in Path(harness.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                    and node.value.attr == "mark" and isinstance(node.value.value, ast.Name)
                    and node.value.value.id == "pytest"):
                used.add(node.attr)
    assert used - BUILT_IN <= registered, f"marks used but not registered: {sorted(used - BUILT_IN - registered)}"
