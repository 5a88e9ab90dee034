"""Bringing stages up and down for a run: timing, failure diagnostics, --keep, cleanup.

Both front doors (the pytest plugin and the CLI) go through `StageRunner`, so a stage is
started, timed and torn down the same way whichever one a user chose.
"""

from __future__ import annotations

import logging
import os
import time

from harness.config import Settings
from harness.errors import StageUnavailable
from harness.release import current_release
from harness.report import Ledger
from harness.stage import Deployment, Stage, get_stage, new_run_id

log = logging.getLogger("stageproof")


def in_ci() -> bool:
    """In CI a stage that cannot run is a failure, never a skip."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


class StageRunner:
    """Owns every stage started in one run; `stop_all()` removes whatever is still up."""

    def __init__(self, settings: Settings, *, keep: bool = False, ledger: Ledger | None = None,
                 run_id: str | None = None, release: str | None = None) -> None:
        self.settings = settings
        self.keep = keep
        self.ledger = ledger or Ledger()
        self.run_id = run_id or new_run_id()
        self.release = release or current_release(settings.root)
        self._live: dict[str, Stage] = {}

    def start(self, name: str) -> tuple[Stage, Deployment]:
        """Bring stage `name` up; on failure tear down what it half-created, then re-raise."""
        stage = get_stage(name)(self.settings, run_id=self.run_id, release=self.release)
        record = self.ledger.record(name)
        self._live[name] = stage
        started = time.monotonic()
        print(f"\n[stageproof] {name}: bringing up (run {self.run_id}, release {self.release})", flush=True)
        try:
            deployment = stage.up()
        except BaseException as err:
            record.error = f"up failed: {str(err).splitlines()[0] if str(err) else type(err).__name__}"
            self.stop(name, force=True)
            raise
        stage.deployment = deployment
        record.up_seconds = time.monotonic() - started
        record.release, record.base_url = deployment.release, deployment.base_url
        print(f"[stageproof] {name}: up in {record.up_seconds:.1f}s at {deployment.base_url}", flush=True)
        return stage, deployment

    def stop(self, name: str, *, force: bool = False) -> None:
        stage = self._live.pop(name, None)
        if stage is None:
            return
        if self.keep and not force:
            self.ledger.record(name).notes.append("kept up (--keep): remove it with `stageproof down`")
            return
        started = time.monotonic()
        try:
            stage.down()
        finally:
            self.ledger.record(name).down_seconds = time.monotonic() - started

    def stop_all(self) -> None:
        for name in list(self._live):
            self.stop(name)

    @staticmethod
    def unavailable_is_failure() -> bool:
        return in_ci()


__all__ = ["StageRunner", "StageUnavailable", "in_ci"]
