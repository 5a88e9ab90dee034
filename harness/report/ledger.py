"""The run's summary: per stage, checks passed/failed and the time of each phase.

Printed at the end of every run and, with `--stageproof-report PATH`, written as JSON (and as
a self-contained HTML page beside it, see `harness.report.html`).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

NOT_APPLICABLE = "not applicable"
NOT_RUN = "not run"
#: when one check is reported several times on a stage (parametrized, or its teardown broke), the worst wins
_SEVERITY = {"skipped": 0, "passed": 1, "failed": 2}


@dataclass
class StageRecord:
    stage: str
    release: str = ""
    base_url: str = ""
    up_seconds: float | None = None
    down_seconds: float | None = None
    contract_seconds: float = 0.0
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    #: structured figures of the checks that measured something (chaos: sent, failed, p99, ...)
    figures: list[dict[str, Any]] = field(default_factory=list)
    #: test name -> "passed", "failed" or "skipped" (the worst of its reports on this stage)
    outcomes: dict[str, str] = field(default_factory=dict)
    #: checks that do not apply on this stage -> why (the control or setting that is missing)
    not_applicable: dict[str, str] = field(default_factory=dict)
    #: why the whole stage does not apply to the app (declared in the config), else None
    stage_not_applicable: str | None = None
    #: test name -> the messages of its failed (or skipped) reports on this stage, for the expected matrix
    messages: dict[str, list[str]] = field(default_factory=dict)

    def cell(self, test: str) -> tuple[str, str]:
        """(outcome, reason) of `test` on this stage: a reported outcome, else "not applicable"
        with its reason, else "not run" (the stage's folder does not hold that check)."""
        if test in self.outcomes:
            return self.outcomes[test], ""
        reason = self.not_applicable.get(test) or self.stage_not_applicable
        return (NOT_APPLICABLE, reason) if reason is not None else (NOT_RUN, "")


@dataclass
class RunInfo:
    """Which run wrote a ledger: what the cross-stage diff gate and the expected matrix key on."""

    run_id: str = ""
    release: str = ""
    config: str = ""  # the app's name (`app.name`): its expected matrix is expected/<config>.toml
    config_path: str = ""
    session: str = ""  # the report's name (reports/<session>.json): one run of the expected matrix


class Ledger:
    """Collects what happened to each stage during one run."""

    def __init__(self) -> None:
        self.stages: dict[str, StageRecord] = {}
        self.started = time.time()
        self.finished: float | None = None  # set when read back from a report; else "now"
        self.run = RunInfo()
        #: the comparison with the expected matrix, once made (`harness.report.expected.Verdict.payload`)
        self.expected: dict[str, Any] | None = None

    def record(self, stage: str) -> StageRecord:
        return self.stages.setdefault(stage, StageRecord(stage))

    def outcome(self, stage: str, outcome: str, *, contract: bool, seconds: float, test: str | None = None) -> None:
        rec = self.record(stage)
        if test is not None:
            previous = rec.outcomes.get(test, outcome)
            rec.outcomes[test] = max(previous, outcome, key=lambda name: _SEVERITY.get(name, 2))
        if outcome == "passed":
            rec.passed += 1
        elif outcome == "failed":
            rec.failed += 1
        else:
            rec.skipped += 1
        if contract:
            rec.contract_seconds += seconds

    def table(self) -> str:
        header = f"{'stage':<14} {'passed':>6} {'failed':>6} {'skipped':>7} {'up (s)':>7} {'contract (s)':>12}  release"
        rows = [header, "-" * len(header)]
        for rec in self.stages.values():
            up = f"{rec.up_seconds:.1f}" if rec.up_seconds is not None else "-"
            rows.append(f"{rec.stage:<14} {rec.passed:>6} {rec.failed:>6} {rec.skipped:>7} {up:>7} "
                        f"{rec.contract_seconds:>12.2f}  {rec.release}")
            rows += [f"  ! {rec.error}"] if rec.error else []
            rows += [f"  - not applicable: the stage: {rec.stage_not_applicable}"] if rec.stage_not_applicable else []
            rows += [f"  - {note}" for note in rec.notes]
            rows += [f"  - not applicable: {test} ({reason})" for test, reason in rec.not_applicable.items()]
        return "\n".join(rows)

    def checks(self) -> list[str]:
        """Every check of the run, in the order first seen: the rows of the stage x check matrix."""
        names: dict[str, None] = {}
        for rec in self.stages.values():
            names.update(dict.fromkeys(rec.outcomes))
            names.update(dict.fromkeys(rec.not_applicable))
        return list(names)

    def payload(self) -> dict[str, Any]:
        return {"started": self.started, "finished": self.finished or time.time(), "run": asdict(self.run),
                "stages": [asdict(rec) for rec in self.stages.values()], "expected": self.expected}

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.payload(), indent=2) + "\n")

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Ledger:
        """A ledger read back from its JSON (to render a report again, or compare one)."""
        ledger = cls()
        ledger.started = payload.get("started", ledger.started)
        ledger.finished = payload.get("finished")
        run = payload.get("run") or {}
        ledger.run = RunInfo(**{key: str(value) for key, value in run.items() if key in RunInfo.__dataclass_fields__})
        ledger.expected = payload.get("expected")
        known = set(StageRecord.__dataclass_fields__)
        for data in payload.get("stages", []):
            rec = StageRecord(**{key: value for key, value in data.items() if key in known})
            ledger.stages[rec.stage] = rec
        return ledger
