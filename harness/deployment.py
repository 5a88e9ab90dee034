"""What a stage hands the contract suite: where the app answers and which release it runs.

A value below every stage (harness/stage.py re-exports it): the contract runs against any
deployment, a stage's or one a user names with --base-url.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Deployment:
    """Where the app answers, which release it runs, its test token, and what the bring-up wants in
    the run summary (stand-in images, timings)."""

    stage: str
    base_url: str
    release: str
    token: str | None = None
    notes: tuple[str, ...] = ()
