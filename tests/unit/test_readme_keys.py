"""README's "Every key" table names every key of the settings model, and nothing else: an
undocumented key (or a documented one that does not exist) fails CI."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness.config import Settings

ROOT = Path(__file__).resolve().parents[2]
#: keys set by stageproof itself, never in a config file
INTERNAL = {"root", "registry_credentials"}


def model_keys(model: Any = Settings, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        if name in INTERNAL:
            continue
        nested = [arg for arg in (field.annotation, *getattr(field.annotation, "__args__", ()))
                  if hasattr(arg, "model_fields")]
        keys |= model_keys(nested[0], f"{prefix}{name}.") if nested else {f"{prefix}{name}"}
    return keys


def documented_keys(readme: str) -> set[str]:
    """The first cell of each row of the tables under "### Every key": `a.b`, `.c` (= a.c), ..."""
    section = readme.split("### Every key", 1)[1].split("\n#", 1)[0]
    keys: set[str] = set()
    for row in re.findall(r"^\| (.+?) \|", section, re.MULTILINE):
        parent = ""
        for key in re.findall(r"`([\w.]+)`", row):
            full = parent + key[1:] if key.startswith(".") else key
            parent = full.rsplit(".", 1)[0] + "." if "." in full else ""
            keys.add(full)
    return keys


def test_every_key_of_the_settings_model_is_in_the_readme_and_no_other() -> None:
    documented = documented_keys((ROOT / "README.md").read_text())
    real = model_keys()
    missing = sorted(real - documented)
    assert not missing, f"keys the README's 'Every key' table does not document: {missing}"
    assert not (documented - real), f"keys the README documents that do not exist: {sorted(documented - real)}"


def test_the_check_reads_shorthand_rows() -> None:
    assert documented_keys("### Every key\n| `database.image`, `.name` | x |\n| `app.env` | y |\n## next") == {
        "database.image", "database.name", "app.env"}
