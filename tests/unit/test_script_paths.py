"""Every repository path the shell scripts name (`$ROOT/...`) exists: a module moved in Python is
found by the import checks, a path in a script only when CI runs it (the external cluster's
NetworkPolicy manifest was read from a folder that had moved, and its session failed late)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = [*sorted((REPO / "scripts").glob("*.sh")), REPO / ".ci" / "run"]


def test_every_path_a_script_names_exists() -> None:
    named = {(script.name, match) for script in SCRIPTS
             for match in re.findall(r"\$(?:ROOT|\{ROOT\})/([A-Za-z0-9_./-]+)", script.read_text())}
    assert named, "no $ROOT/... path found: the pattern no longer matches the scripts"
    missing = sorted(f"{script}: {path}" for script, path in named if not (REPO / path).exists())
    assert not missing, missing
