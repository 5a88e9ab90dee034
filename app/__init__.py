"""The reference app of the talk: a users service, configured only from the environment."""

from __future__ import annotations

from app.factory import create_app

__all__ = ["create_app"]
