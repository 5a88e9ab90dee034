"""Checks that a deployment survives what the talk says it must: restarts and database outages.

Written once like the contract; a stage folder imports the ones its stage supports. Each test
is marked with the capability it needs (`requires`), and the plugin deselects it, with a note
in the summary, for a stage that lacks that capability.
"""

from __future__ import annotations

import time

import pytest
import requests

from harness.contract.cases import Case
from harness.contract.runner import ContractClient
from harness.report import Ledger
from harness.stage import Deployment, Stage
from harness.wait import http_ok, wait_until

OUTAGE_TIMEOUT = 60.0


def rerun_contract(client: ContractClient, cases: list[Case]) -> list[str]:
    """Every case that does not need a fresh database, again; returns the problems."""
    problems: list[str] = []
    for case in cases:
        if not case.fresh_only:
            result = client.run_case(case)
            problems += [f"{case.name}: {problem}" for problem in result.problems]
    return problems


@pytest.mark.requires("restart_app")
def test_contract_holds_after_app_restart(stage: Stage, deployment: Deployment, contract_cases: list[Case]) -> None:
    stage.restart_app()
    problems = rerun_contract(ContractClient(deployment), contract_cases)
    assert not problems, "after restarting the app:\n  " + "\n  ".join(problems)


@pytest.mark.requires("stop_database", "app_identity")
def test_database_outage_is_reported_and_survived(stage: Stage, deployment: Deployment, ledger: Ledger) -> None:
    client = ContractClient(deployment)
    token = {"Authorization": f"Bearer {deployment.token}"}
    base = deployment.base_url
    created = requests.post(f"{base}/users", json={"name": "erin", "email": f"erin-{client.unique}@example.com"},
                            headers=token, timeout=10)
    assert created.status_code == 201, created.text
    before = stage.app_identity()

    stage.stop_database()
    down_at = time.monotonic()
    outage = wait_until(http_ok(f"{base}{stage.settings.app.ready_path}", expect_status=503),
                        what="/readyz to report the database outage (503)", timeout=OUTAGE_TIMEOUT)
    assert requests.get(f"{base}{stage.settings.app.health_path}", timeout=5).status_code == 200
    stage.start_database()
    wait_until(http_ok(f"{base}{stage.settings.app.ready_path}"), what="/readyz to recover (200)",
               timeout=OUTAGE_TIMEOUT)
    recovered = time.monotonic() - down_at

    after = requests.get(f"{base}/users/{created.json()['id']}", timeout=10)
    assert after.status_code == 200 and after.json() == created.json(), after.text
    assert stage.app_identity() == before, "the app was restarted during the database outage"
    ledger.record(stage.name).notes.append(
        f"database outage: /readyz said {outage.json().get('reason', '503')[:70]!r}; ready again "
        f"{recovered:.1f}s after the stop; user {created.json()['id']} kept; app not restarted ({before})")
