"""Checks for stages that run the app in a container (docker, compose): who runs it, what it logs.

They need the `app_container` capability: the stage names its app container, and the check
looks at it the way an operator would (`docker top`, `docker logs`).
"""

from __future__ import annotations

import json

import pytest
import requests

from harness.run import run
from harness.stage import Deployment, Stage
from harness.wait import NotYet, wait_until


@pytest.mark.requires("app_container")
def test_app_processes_run_as_non_root(stage: Stage) -> None:
    container = stage.app_container()
    top = run(["docker", "top", container, "-o", "uid,pid,args"]).stdout.splitlines()[1:]
    assert top, "docker top listed no process"
    root = [line for line in top if line.split()[0] in {"0", "root"}]
    assert not root, "processes running as root in the app container:\n" + "\n".join(root)


@pytest.mark.requires("app_container")
def test_docker_logs_show_json_request_lines(stage: Stage, deployment: Deployment) -> None:
    assert requests.get(f"{deployment.base_url}/version", timeout=10).status_code == 200
    container = stage.app_container()

    def request_line() -> dict[str, object]:
        logs = run(["docker", "logs", "--tail", "200", container]).stdout
        for line in logs.splitlines():
            entry = _json(line)
            if entry and entry.get("path") == "/version" and entry.get("status") == 200:
                return entry
        raise NotYet("no JSON request line for GET /version in `docker logs` yet")

    entry = wait_until(request_line, what="a JSON request line in docker logs", timeout=10)
    assert {"method", "path", "status", "duration_ms"} <= entry.keys(), entry


def _json(line: str) -> dict[str, object] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
