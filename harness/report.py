"""The run's summary: per stage, checks passed/failed and the time of each phase.

Printed at the end of every run and, with `--stageproof-report PATH`, written as JSON.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


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


class Ledger:
    """Collects what happened to each stage during one run."""

    def __init__(self) -> None:
        self.stages: dict[str, StageRecord] = {}
        self.started = time.time()

    def record(self, stage: str) -> StageRecord:
        return self.stages.setdefault(stage, StageRecord(stage))

    def outcome(self, stage: str, outcome: str, *, contract: bool, seconds: float) -> None:
        rec = self.record(stage)
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
            rows += [f"  - {note}" for note in rec.notes]
        return "\n".join(rows)

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"started": self.started, "finished": time.time(),
                   "stages": [asdict(rec) for rec in self.stages.values()]}
        path.write_text(json.dumps(payload, indent=2) + "\n")
