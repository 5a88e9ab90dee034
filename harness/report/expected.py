"""The expected matrix: what each run of a config proves, per stage and check, committed to the repo
(`expected/<app name>.toml`), so CI notices when it proves less.

Each cell is "passed", "not applicable: <reason>", "skipped: <reason>", or an accepted failure
`{ status = "accepted failure: <why, e.g. a ticket>", failure = "<regex its message must match>" }`.
A run is one session's report (reports/<session>.json: `[runs.<session>.<stage>]`), because the same
stage runs different checks in different sessions (tests/k8s on kind, the same on a cluster of
the team's). `compare` lists every difference; nothing is tolerated but what the file states.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import StageproofError
from harness.report.ledger import NOT_APPLICABLE, NOT_RUN, Ledger, StageRecord

PASSED, FAILED, SKIPPED, ACCEPTED = "passed", "failed", "skipped", "accepted failure"
STAGE_KEY = "stage"  # `stage = "not applicable: ..."` in a stage's table: the whole stage
WITH_REASON = (NOT_APPLICABLE, SKIPPED, ACCEPTED)


class ExpectedMatrixError(StageproofError):
    """The expected matrix file cannot be read or says something impossible."""


@dataclass(frozen=True)
class Cell:
    """What one check did (or must do) on one stage: a status, its reason, and for an accepted
    failure the pattern its message must keep matching."""

    status: str
    reason: str = ""
    failure: str | None = None
    #: an accepted failure that some runs pass: passing is then no difference (the report says which)
    intermittent: bool = False

    def __str__(self) -> str:
        return f"{self.status}: {self.reason}" if self.reason else self.status

    @classmethod
    def parse(cls, value: object, where: str) -> Cell:
        if isinstance(value, dict):
            status, failure = value.get("status"), value.get("failure")
            intermittent = value.get("intermittent", False)
            unknown = sorted(set(value) - {"status", "failure", "intermittent"})
            if unknown or not isinstance(status, str) or not isinstance(failure, str):
                raise ExpectedMatrixError(f"{where}: an inline table needs `status` and `failure` (strings), and "
                                          "may have `intermittent` (true or false), nothing else")
            if not isinstance(intermittent, bool):
                raise ExpectedMatrixError(f"{where}: `intermittent` is true or false, not {intermittent!r}")
            cell = _split(status, where)
            if cell.status != ACCEPTED:
                raise ExpectedMatrixError(f"{where}: `failure` goes only with an accepted failure")
            _compile(failure, where)
            return cls(ACCEPTED, cell.reason, failure, intermittent)
        cell = _split(value, where)
        if cell.status == ACCEPTED:
            raise ExpectedMatrixError(f"{where}: an accepted failure must say how it fails: "
                                      f'{{ status = "{value}", failure = "<regex of its message>" }}')
        return cell

    def accepts(self, messages: list[str]) -> bool:
        """True when every failure message matches this accepted failure's pattern."""
        pattern = _compile(self.failure or "", "failure")
        return bool(messages) and all(pattern.search(message) for message in messages)


def _split(value: object, where: str) -> Cell:
    """A cell's text: "passed", or a status with its reason."""
    if value == PASSED:
        return Cell(PASSED)
    status, _, reason = str(value).partition(": ")
    if status not in WITH_REASON or not reason.strip():
        raise ExpectedMatrixError(f"{where}: {value!r} is not \"passed\", \"not applicable: <reason>\", "
                                  "\"skipped: <reason>\" or an accepted failure")
    return Cell(status, reason.strip())


@dataclass(frozen=True)
class StageRows:
    """One stage of one run: declared not applicable as a whole, or its checks' cells."""

    not_applicable: str | None = None
    checks: Mapping[str, Cell] = field(default_factory=dict)


@dataclass(frozen=True)
class ExpectedMatrix:
    app: str
    config: str  # the config file, relative to the repo (for people)
    runs: Mapping[str, Mapping[str, StageRows]]  # session -> stage -> rows
    path: Path | None = None

    def stages(self) -> dict[str, list[str]]:
        return {session: list(stages) for session, stages in self.runs.items()}


def load_matrix(path: Path) -> ExpectedMatrix:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ExpectedMatrixError(f"{path}: cannot read the expected matrix ({err})") from err
    except tomllib.TOMLDecodeError as err:
        raise ExpectedMatrixError(f"{path}: not valid TOML: {err}") from err
    runs: dict[str, dict[str, StageRows]] = {}
    for session, stages in (raw.get("runs") or {}).items():
        runs[session] = {stage: _stage_rows(rows, f"{path}: runs.{session}.{stage}")
                         for stage, rows in stages.items()}
    return ExpectedMatrix(str(raw.get("app", path.stem)), str(raw.get("config", "")), runs, path)


def _stage_rows(rows: Mapping[str, Any], where: str) -> StageRows:
    whole = rows.get(STAGE_KEY)
    if whole is not None:
        cell = Cell.parse(whole, f"{where}.{STAGE_KEY}")
        if cell.status != NOT_APPLICABLE or len(rows) > 1:
            raise ExpectedMatrixError(f"{where}: `stage` is only \"not applicable: <reason>\", alone in its table")
        return StageRows(cell.reason)
    return StageRows(None, {check: Cell.parse(value, f"{where}.{check}") for check, value in rows.items()})


def find_matrix(root: Path, app: str) -> Path | None:
    """expected/<app>.toml in the config's folder or the nearest folder above it, up to the
    repository's top (a folder holding .git)."""
    for folder in (root, *root.parents):
        candidate = folder / "expected" / f"{app}.toml"
        if candidate.is_file():
            return candidate
        if (folder / ".git").exists():
            return None
    return None


def actual_cell(record: StageRecord | None, check: str) -> Cell:
    """What the ledger says `check` did on this stage, as a cell."""
    if record is None:
        return Cell(NOT_RUN)
    outcome, reason = record.cell(check)
    messages = record.messages.get(check, [])
    if outcome == SKIPPED:
        return Cell(SKIPPED, _skip_reason(messages))
    if outcome == FAILED:
        return Cell(FAILED, messages[0] if messages else "")
    return Cell(outcome, reason)


def _skip_reason(messages: list[str]) -> str:
    return messages[0].removeprefix("Skipped: ") if messages else "(no reason recorded)"


def failure_pattern(message: str) -> str:
    """A regex for an accepted failure, from today's message: its first line with every number
    (counts, seconds, percentages) and absolute path (a checkout's) free, everything else literal.
    Edit it to what must hold."""
    first = message.strip().splitlines()[0] if message.strip() else ""
    parts = re.split(r"((?<![\w/])/[^\s:]+|\d+(?:\.\d+)?)", first[:200])
    return "".join(_literal(part) if index % 2 == 0 else r"\S+" if part.startswith("/") else r"\d+(?:\.\d+)?"
                   for index, part in enumerate(parts))


def _literal(text: str) -> str:
    """`text` as a regex matching itself, escaping only what regexes treat specially (readable)."""
    return re.sub(r"([.^$*+?{}\[\]\\|()])", r"\\\1", text)


def _compile(pattern: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as err:
        raise ExpectedMatrixError(f"{where}: `failure` is not a valid regular expression: {err}") from err


def rows_of(ledger: Ledger) -> dict[str, StageRows]:
    """Today's state of a ledger as expected rows (what `stageproof expected write` starts from)."""
    rows = {}
    for stage, record in ledger.stages.items():
        if record.stage_not_applicable:
            rows[stage] = StageRows(record.stage_not_applicable)
            continue
        checks = {}
        for check in [*record.outcomes, *record.not_applicable]:
            cell = actual_cell(record, check)
            if cell.status == FAILED:
                cell = Cell(ACCEPTED, "FIXME: say why it is accepted (a ticket)", failure_pattern(cell.reason))
            checks[check] = cell
        rows[stage] = StageRows(None, checks)
    return rows
