"""The summary counts outcomes per stage and writes them as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from harness.report import Ledger


def test_counts_and_times_per_stage(tmp_path: Path) -> None:
    ledger = Ledger()
    ledger.record("docker").up_seconds = 4.25
    ledger.outcome("docker", "passed", contract=True, seconds=0.5)
    ledger.outcome("docker", "failed", contract=False, seconds=2.0)
    ledger.outcome("docker", "skipped", contract=True, seconds=0.0)
    table = ledger.table()
    assert "docker" in table and "4.2" in table
    rec = ledger.stages["docker"]
    assert (rec.passed, rec.failed, rec.skipped, rec.contract_seconds) == (1, 1, 1, 0.5)
    ledger.write_json(tmp_path / "r" / "summary.json")
    data = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert data["stages"][0]["stage"] == "docker" and data["stages"][0]["failed"] == 1

