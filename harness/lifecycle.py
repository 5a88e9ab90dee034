"""Bringing stages up and down for a run: timing, failure diagnostics, --keep, cleanup.

Both front doors (the pytest plugin and the CLI) go through `StageRunner`, so a stage is
started, timed and torn down the same way whichever one a user chose.
"""

from __future__ import annotations

import logging
import time

from harness.config import Settings, environment
from harness.core.release import current_release
from harness.core.shield import say, shielded
from harness.errors import CommandFailed, StageUnavailable
from harness.report.ledger import Ledger
from harness.stage import Capabilities, Deployment, Stage, get_stage, new_run_id

log = logging.getLogger("stageproof")
MAX_ERROR_CHARS = 580  # with the "up failed: " prefix, under 600
TAIL_LINES = 5


def in_ci() -> bool:
    """In CI a stage that cannot run is a failure, never a skip."""
    return environment().ci


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
        self._deployments: dict[str, Deployment] = {}
        self._capabilities: dict[str, Capabilities] = {}

    def start(self, name: str) -> tuple[Stage, Deployment]:
        """Bring stage `name` up; on failure tear down what it half-created, then re-raise."""
        self._reap_dead_runs(name)
        stage = get_stage(name)(self.settings, run_id=self.run_id, release=self.release)
        record = self.ledger.record(name)
        self._live[name] = stage
        started = time.monotonic()
        say(f"\n[stageproof] {name}: bringing up (run {self.run_id}, release {self.release})")
        try:
            deployment = stage.up()
        except BaseException as err:
            record.error = f"up failed: {describe_failure(err)}"
            self._teardown_after_failure(name, err)
            raise
        self._deployments[name] = deployment
        record.up_seconds = time.monotonic() - started
        record.notes += [note for note in deployment.notes if note not in record.notes]
        record.release, record.base_url = deployment.release, deployment.base_url
        say(f"[stageproof] {name}: up in {record.up_seconds:.1f}s at {deployment.base_url}")
        return stage, deployment

    def deployment(self, name: str) -> Deployment:
        return self._deployments[name]

    def capabilities(self, name: str) -> Capabilities:
        """What live stage `name` can do, asked once."""
        if name not in self._capabilities:
            self._capabilities[name] = self._live[name].capabilities()
        return self._capabilities[name]

    def _reap_dead_runs(self, name: str) -> None:
        """What killed runs of this stage left (their owner process is gone) goes first; live
        runs elsewhere are spared. A failure here is logged, never fatal."""
        try:
            removed = get_stage(name).reap(self.settings)
        except StageUnavailable:
            return  # up() says so, with the reason
        except Exception as err:
            log.warning("could not reap leftovers of %s: %s", name, err)
            return
        if removed:
            say(f"[stageproof] {name}: removed what killed runs left: {', '.join(removed)}")

    def _teardown_after_failure(self, name: str, err: BaseException) -> None:
        """Remove what a failed `up` half-created; a teardown error becomes a note on `err`, never
        replacing it (the bring-up error is the one the user must see)."""
        try:
            self.stop(name, force=True)
        except Exception as down_err:
            note = f"[stageproof] {name}: teardown after the failed bring-up also failed: {describe_failure(down_err)}"
            err.add_note(note)
            log.error("%s", note, exc_info=down_err)

    def stop(self, name: str, *, force: bool = False) -> None:
        """Tear stage `name` down (unless --keep); records the time taken, re-raises its errors."""
        stage = self._live.pop(name, None)
        self._deployments.pop(name, None)
        self._capabilities.pop(name, None)
        if stage is None:
            return
        record = self.ledger.record(name)
        if self.keep and not force:
            stage.keep()
            record.notes.append("kept up (--keep): remove it with `stageproof down`")
            return
        started = time.monotonic()
        try:
            with shielded(f"tearing down {name}"):
                stage.down()
        except BaseException as err:
            record.notes.append(f"down failed: {describe_failure(err)}")
            raise
        finally:
            record.down_seconds = time.monotonic() - started

    def stop_all(self) -> None:
        """Stop every live stage, also when one of them fails to come down; re-raise the first error."""
        errors: list[BaseException] = []
        for name in list(self._live):
            try:
                self.stop(name)
            except BaseException as err:
                errors.append(err)
        if errors:
            raise errors[0]

    @staticmethod
    def unavailable_is_failure() -> bool:
        return in_ci()


def describe_failure(err: BaseException) -> str:
    """A short (< 600 chars) account of why something failed, for the summary table: for a
    command, the command and the end of its stderr; otherwise the message's first and last lines."""
    if isinstance(err, CommandFailed):
        how = f"timed out after {err.timed_out:g}s" if err.timed_out is not None else f"exit {err.returncode}"
        head = f"{_clip(err.command, 200)} ({how})"
        tail = _meaningful_lines(err.stderr or err.stdout)[-TAIL_LINES:]
    else:
        lines = _meaningful_lines(str(err))
        head = _clip(f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__, 200)
        tail = lines[1:][-(TAIL_LINES - 1):]
    tail = [_clip(line, 160) for line in tail]
    while tail and len(" | ".join([head, *tail])) > MAX_ERROR_CHARS:
        tail.pop(0)  # the last lines say the most: drop from the front
    return " | ".join([head, *tail])


def _meaningful_lines(text: str) -> list[str]:
    """Lines that say something: not blank, not a bare separator like `---` or `===`."""
    stripped = (line.strip() for line in text.splitlines())
    return [line for line in stripped if line.strip("-=*_#~. ")]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = ["StageRunner", "StageUnavailable", "describe_failure", "in_ci"]
