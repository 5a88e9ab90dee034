"""stageproof: prove an application behaves the same at every stage of its migration."""

from __future__ import annotations

__version__ = "0.1.0"
