"""A run held to its expected matrix: every difference named (stage, check, what changed), and the
accepted failures reported as accepted, with their figures.

Only the stages the run ran are compared, and all of their rows: a check that vanished, turned not
applicable, appeared, changed its reason, or an accepted failure that passes now ("stale entry:
remove it") or fails differently from its stated pattern, is a difference.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from harness.report.expected import (
    ACCEPTED,
    FAILED,
    PASSED,
    Cell,
    ExpectedMatrix,
    StageRows,
    actual_cell,
)
from harness.report.ledger import NOT_APPLICABLE, NOT_RUN, Ledger, StageRecord


@dataclass(frozen=True)
class Difference:
    stage: str
    check: str  # "" when it is about the whole stage
    kind: str
    expected: str
    actual: str

    def line(self) -> str:
        what = f"{self.stage} / {self.check}" if self.check else f"{self.stage} (the whole stage)"
        return f"{what}: {self.kind}: expected {self.expected!r}, got {self.actual!r}"


@dataclass(frozen=True)
class Accepted:
    stage: str
    check: str
    reason: str
    messages: tuple[str, ...]
    figures: tuple[dict[str, Any], ...]
    passed: bool = False  # an intermittent accepted failure that passed this run

    def line(self) -> str:
        if self.passed:
            return f"{self.stage} / {self.check}: intermittent accepted failure ({self.reason}): passed this run"
        figures = "; ".join(", ".join(f"{k} {v}" for k, v in figure.items() if k not in ("check", "load"))
                            for figure in self.figures)
        first = self.messages[0].splitlines()[0][:160] if self.messages and self.messages[0] else "(no message)"
        return (f"{self.stage} / {self.check}: accepted failure ({self.reason}): {first}"
                + (f" [{figures}]" if figures else ""))


@dataclass(frozen=True)
class Verdict:
    source: str
    session: str
    differences: tuple[Difference, ...]
    accepted: tuple[Accepted, ...]
    compared: int

    @property
    def ok(self) -> bool:
        return not self.differences

    def lines(self) -> list[str]:
        head = (f"{self.source} (run {self.session!r}): {self.compared} cells compared, "
                f"{len(self.differences)} differences, {len(self.accepted)} accepted failures")
        return [head, *(f"  DIFFERENT {d.line()}" for d in self.differences),
                *(f"  accepted  {a.line()}" for a in self.accepted)]

    def payload(self) -> dict[str, Any]:
        return {"source": self.source, "session": self.session, "compared": self.compared,
                "differences": [asdict(d) for d in self.differences], "accepted": [asdict(a) for a in self.accepted]}


def compare(ledger: Ledger, matrix: ExpectedMatrix, session: str) -> Verdict:
    """`ledger` (one session's run) against the rows of its run in `matrix`."""
    source = str(matrix.path or f"expected/{matrix.app}.toml")
    rows = matrix.runs.get(session)
    differences: list[Difference] = []
    accepted: list[Accepted] = []
    compared = 0
    for stage, record in ledger.stages.items():
        expected = None if rows is None else rows.get(stage)
        if expected is None:
            where = f"run {session!r}" if rows is None else f"runs.{session}"
            differences.append(Difference(stage, "", f"appeared: {where} of {source} has no rows for it",
                                          "(no rows)", _stage_state(record)))
            continue
        found, took, count = _compare_stage(stage, record, expected)
        differences += found
        accepted += took
        compared += count
    return Verdict(source, session, tuple(differences), tuple(accepted), compared)


def _stage_state(record: StageRecord) -> str:
    if record.stage_not_applicable:
        return f"{NOT_APPLICABLE}: {record.stage_not_applicable}"
    return f"{len(record.outcomes)} checks ran, {len(record.not_applicable)} not applicable"


def _compare_stage(stage: str, record: StageRecord,
                   expected: StageRows) -> tuple[list[Difference], list[Accepted], int]:
    if expected.not_applicable is not None or record.stage_not_applicable:
        stated = f"{NOT_APPLICABLE}: {expected.not_applicable}" if expected.not_applicable is not None else "its checks"
        if record.stage_not_applicable == expected.not_applicable:
            return [], [], 1
        kind = ("reason changed" if record.stage_not_applicable else "now applicable: its checks are not expected"
                ) if expected.not_applicable is not None else "turned not applicable"
        return [Difference(stage, "", kind, stated, _stage_state(record))], [], 1
    differences: list[Difference] = []
    accepted: list[Accepted] = []
    checks = dict.fromkeys([*expected.checks, *record.outcomes, *record.not_applicable])
    for check in checks:
        want, got = expected.checks.get(check), actual_cell(record, check)
        found = judge(want, got, record.messages.get(check, []))
        if found is None and want is not None and want.status == ACCEPTED and got.status == PASSED:
            accepted.append(Accepted(stage, check, want.reason, (), (), passed=True))
        elif found is None and want is not None and want.status == ACCEPTED:
            accepted.append(Accepted(stage, check, want.reason, tuple(record.messages.get(check, [])),
                                     tuple(f for f in record.figures if f.get("check") == check)))
        elif found is not None:
            differences.append(Difference(stage, check, found, "(no row)" if want is None else str(want), str(got)))
    return differences, accepted, len(checks)


def judge(want: Cell | None, got: Cell, messages: list[str]) -> str | None:
    """None when `got` is what `want` states; else the kind of difference."""
    if want is None:
        return None if got.status == NOT_RUN else "appeared"
    if got.status == NOT_RUN:
        return "vanished"
    if want.status == ACCEPTED:
        if got.status == PASSED:
            return None if want.intermittent else "stale entry: remove it (it passes now)"
        if got.status == FAILED:
            return None if want.accepts(messages) else f"fails differently (its message no longer matches " \
                f"{want.failure!r})"
        return f"turned {got.status}"
    if want.status == got.status:
        return None if want.reason == got.reason else f"{got.status} for another reason"
    if want.status == PASSED:
        return f"turned {got.status}" if got.status != FAILED else FAILED
    return f"now {got.status} (was {want.status})"


def missing(matrix: ExpectedMatrix, ledgers: dict[str, Ledger]) -> list[Difference]:
    """What a whole CI run lacks against `matrix`: a run (session) with no report, a stage a run
    should have and its report does not hold. `ledgers` are the run's reports of this config."""
    found = []
    for session, stages in matrix.runs.items():
        ledger = ledgers.get(session)
        for stage in stages:
            if ledger is None or stage not in ledger.stages:
                kind = f"vanished: no report of session {session}" if ledger is None else \
                    f"vanished: the report of session {session} has no {stage}"
                found.append(Difference(stage, "", kind, "its rows", "(nothing)"))
    return found
