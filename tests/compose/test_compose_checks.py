"""Checks beyond the contract: restarts, a database outage, the app's user and logs, and the
named volume's lifecycle (`down` keeps the data, `down -v` removes it)."""

from __future__ import annotations

import uuid

import requests

from harness.checks.containers import (  # noqa: F401
    test_app_processes_run_as_non_root,
    test_docker_logs_show_json_request_lines,
)
from harness.checks.recovery import (  # noqa: F401
    test_contract_holds_after_app_restart,
    test_database_outage_is_reported_and_survived,
)
from harness.stage import Deployment
from harness.stages.compose import ComposeStage


def _create_user(deployment: Deployment) -> dict[str, object]:
    response = requests.post(f"{deployment.base_url}/users", timeout=10,
                             json={"name": "vera", "email": f"vera-{uuid.uuid4().hex[:8]}@example.com"},
                             headers={"Authorization": f"Bearer {deployment.token}"})
    assert response.status_code == 201, response.text
    return response.json()


def _status_of(deployment: Deployment, user: dict[str, object]) -> int:
    return requests.get(f"{deployment.base_url}/users/{user['id']}", timeout=10).status_code


def test_down_keeps_the_volume_and_down_v_removes_it(stage: ComposeStage, deployment: Deployment) -> None:
    user = _create_user(deployment)

    stage.compose_down(volumes=False)
    stage.compose_up()
    assert _status_of(deployment, user) == 200, "data lost by `compose down` without -v"

    stage.compose_down(volumes=True)
    stage.compose_up()
    assert _status_of(deployment, user) == 404, "data survived `compose down -v`"
