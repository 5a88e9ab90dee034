"""Build caches are keyed by content, never by where the checkout lives."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.core.cache import recipe_hash


def test_recipe_hash_reads_paths_not_strings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f.txt").write_text("one")
    monkeypatch.chdir(tmp_path)
    first = recipe_hash(tmp_path / "a")
    assert recipe_hash("a") != first  # a string is a literal even when a path of that name exists
    (tmp_path / "a" / "f.txt").write_text("two")
    assert recipe_hash(tmp_path / "a") != first
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "f.txt").write_text("two")
    assert recipe_hash(tmp_path / "b") == recipe_hash(tmp_path / "a")  # where the recipe lives does not matter
