"""Crashes, not only polite stops: the database process SIGKILLed while the app writes.

A write the app acknowledged before the crash must read back afterwards: the persistence case's first
step (the write) runs over and over, each with its own `${unique}`, before, during and after the
kill; every acknowledged one is read back (the case's later steps) once the app serves again.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from harness.checks.common import Reporter, needs, persistence_case, requires
from harness.config import Settings
from harness.contract.cases import Case
from harness.contract.runner import ContractClient
from harness.core.wait import app_ready, wait_until
from harness.stage import DatabaseControl, Deployment

#: how long the writes go on before the kill, and after the app serves again
BEFORE_SECONDS, AFTER_SECONDS = 2.0, 2.0
WRITE_PAUSE = 0.05
RECOVERY_SECONDS = 60.0


@dataclass
class Writes:
    """What the writer saw: each acknowledged write's variables (to read it back), and the refused."""

    acknowledged: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    sent: int = 0
    acknowledged_before_kill: int = 0
    #: what stopped the writer, if anything did (then the check fails with it)
    error: BaseException | None = None


def write_continuously(deployment: Deployment, case: Case, stop: threading.Event, writes: Writes) -> None:
    """The case's write step again and again, one `${unique}` each, until `stop`; nothing retried."""
    try:
        _write_until(deployment, case, stop, writes)
    except BaseException as err:  # the check reports it: a dead writer proves nothing
        writes.error = err


def _write_until(deployment: Deployment, case: Case, stop: threading.Event, writes: Writes) -> None:
    while not stop.is_set():
        client = ContractClient(deployment, timeout=5)
        writes.sent += 1
        try:
            result = client.run_case(case, last_step=1)
        except requests.RequestException:
            writes.refused += 1
        else:
            if result.passed:
                writes.acknowledged.append(dict(result.variables))
            else:
                writes.refused += 1
        stop.wait(WRITE_PAUSE)


@requires(DatabaseControl)
@needs("checks.persistence")
def test_acknowledged_writes_survive_a_database_crash(database: DatabaseControl, deployment: Deployment,
                                                     stageproof_settings: Settings, contract_cases: list[Case],
                                                     report: Reporter) -> None:
    case = persistence_case(stageproof_settings, contract_cases)
    writes, stop = Writes(), threading.Event()
    writer = threading.Thread(target=write_continuously, args=(deployment, case, stop, writes), daemon=True)
    writer.start()
    try:
        time.sleep(BEFORE_SECONDS)
        writes.acknowledged_before_kill = len(writes.acknowledged)
        killed_at = time.monotonic()
        database.crash()
        what, probe = app_ready(stageproof_settings, deployment.base_url)
        wait_until(probe, what=f"the app to serve again after its database was SIGKILLed ({what})",
                   timeout=RECOVERY_SECONDS)
        recovered = time.monotonic() - killed_at
        time.sleep(AFTER_SECONDS)
    finally:
        stop.set()
        writer.join(timeout=10)
    lost = [variables for variables in writes.acknowledged
            if not ContractClient(deployment).run_case(case, first_step=2, variables=variables).passed]
    report(f"database crash (SIGKILL) under writes: {writes.sent} writes sent, {len(writes.acknowledged)} acknowledged "
           f"({writes.acknowledged_before_kill} before the kill), {writes.refused} refused; "
           f"{len(writes.acknowledged) - len(lost)} of {len(writes.acknowledged)} acknowledged read back; the app "
           f"served again {recovered:.1f}s after the kill",
           {"writes_sent": writes.sent, "acknowledged": len(writes.acknowledged), "refused": writes.refused,
            "read_back": len(writes.acknowledged) - len(lost), "recovered_seconds": round(recovered, 2)})
    assert writes.error is None, f"the writer stopped: {writes.error!r}"
    assert writes.acknowledged_before_kill > 0, "no write was acknowledged before the kill: nothing was proven"
    assert not lost, (f"{len(lost)} acknowledged write(s) did not read back after the database crash, e.g. "
                      f"${{unique}} = {lost[0].get('unique')!r}")
