"""The session's end, for the ledger: which run it was (run id, release, config, session), each
failed or skipped check's message, and the verdict against the expected matrix.

Called from the plugin's `pytest_sessionfinish`, before the summary and the JSON report are written.
The matrix is `--stageproof-expected PATH`, or, in CI (`CI=true`) for a run that writes a report,
the config's committed `expected/<app>.toml` when it exists and has rows for the session (one it has
none for is reported as not held). Any difference fails the run; a run whose only failures are the
matrix's accepted failures (each still failing as stated) passes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.config import config_path, environment
from harness.report.expected import ExpectedMatrixError, find_matrix, load_matrix
from harness.report.ledger import Ledger
from harness.report.verdict import Verdict, compare

MAX_MESSAGES = 20  # per check and stage: a parametrized check failing everywhere says enough by then
MAX_CHARS = 2000
DEFAULT_SESSION = "default"
OUTCOMES = ("failed", "error", "skipped")


Locate = Callable[[pytest.Item], tuple[str | None, str]]  # an item -> (its stage or None, its check's name)


def finish_session(session: pytest.Session, ledger: Ledger, *, run_id: str, release: str, app: str, root: Path,
                   locate: Locate) -> Verdict | None:
    """Stamp the run into the ledger, record the messages, and hold the run to its expected matrix
    (`root`: the config's folder, where the search for expected/<app>.toml starts)."""
    config = session.config
    report = config.getoption("stageproof_report")
    ledger.run.run_id, ledger.run.release, ledger.run.config = run_id, release, app
    ledger.run.config_path = _shown(config_path(config.getoption("stageproof_config")))
    ledger.run.session = Path(report).with_suffix("").name if report else DEFAULT_SESSION
    unbound = record_messages(ledger, session, locate)
    chosen = config.getoption("stageproof_expected", None)
    path = Path(chosen) if chosen else find_matrix(root, app) if report and environment().ci else None
    if path is None:
        return None
    try:
        matrix = load_matrix(path)
    except ExpectedMatrixError as err:
        ledger.expected = {"source": str(path), "error": str(err)}
        _say_error(config, str(err))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return None
    if not chosen and ledger.run.session not in matrix.runs:
        # found by CI, not named: a session the committed matrix has no rows for yet is reported, not
        # held (`stageproof expected write` adds its rows); a named matrix holds every session
        _say_unheld(config, f"{_shown(path)} has no rows for run {ledger.run.session!r}: this run is not held "
                            f"to an expected matrix (stageproof expected write reports/{ledger.run.session}.json)")
        return None
    verdict = compare(ledger, matrix, ledger.run.session)
    ledger.expected = verdict.payload()
    _say(config, verdict)
    if not verdict.ok:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif session.exitstatus == pytest.ExitCode.TESTS_FAILED and not unbound and _only_accepted(ledger, verdict):
        session.exitstatus = pytest.ExitCode.OK
    return verdict


def record_messages(ledger: Ledger, session: pytest.Session, locate: Locate) -> int:
    """Each failed, errored or skipped report's message, in the ledger under its stage and check
    (from the terminal reporter's reports); returns how many failures belong to no stage."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    items = {item.nodeid: item for item in session.items}
    external = "external" if session.config.getoption("base_url") else None
    unbound = 0
    for outcome in OUTCOMES:
        for report in getattr(reporter, "stats", {}).get(outcome, []):
            item = items.get(getattr(report, "nodeid", ""))
            stage, check = locate(item) if item is not None else (None, "")
            stage = stage or (external if item is not None else None)
            if stage is None or stage not in ledger.stages:
                unbound += outcome != "skipped"
                continue
            found = ledger.stages[stage].messages.setdefault(check, [])
            if len(found) < MAX_MESSAGES:
                found.append(message_of(report)[:MAX_CHARS])
    return unbound


def message_of(report: Any) -> str:
    """The one-paragraph reason of a report: the exception's text, or a skip's reason."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    crash = getattr(longrepr, "reprcrash", None)
    return str(getattr(crash, "message", None) or longrepr or report.outcome)


def _only_accepted(ledger: Ledger, verdict: Verdict) -> bool:
    """Every failed check of the run is one of the verdict's accepted failures."""
    accepted = {(item.stage, item.check) for item in verdict.accepted}
    failed = {(stage, check) for stage, record in ledger.stages.items()
              for check, outcome in record.outcomes.items() if outcome == "failed"}
    return failed <= accepted


def _say(config: pytest.Config, verdict: Verdict) -> None:
    title = "as expected" if verdict.ok else "DIFFERENT: the run FAILS"
    _section(config, title, verdict.lines(), red=not verdict.ok, green=verdict.ok)


def _say_unheld(config: pytest.Config, line: str) -> None:
    _section(config, "NOT HELD", [line], yellow=True)


def _say_error(config: pytest.Config, error: str) -> None:
    _section(config, "UNREADABLE, the run FAILS", [error], red=True)


def _section(config: pytest.Config, title: str, lines: list[str], **colour: bool) -> None:
    """A "stageproof expected matrix: <title>" section of the terminal summary, then its lines."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    reporter.write_line("")  # the progress line is still open: pytest ends it only after this hook
    reporter.write_sep("=", f"stageproof expected matrix: {title}", **colour)
    for line in lines:
        reporter.write_line(line)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
