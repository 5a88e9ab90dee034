"""Root conftest: makes the stageproof pytest plugin available from a plain checkout.

Installed (`pip install -e .`), the plugin loads through its `pytest11` entry point; from a
checkout that was not installed, this registers it so `pytest tests/local` still works.
"""

from __future__ import annotations

from importlib.metadata import entry_points

if not any(ep.name == "stageproof" for ep in entry_points(group="pytest11")):
    pytest_plugins = ["harness.pytest_plugin"]
