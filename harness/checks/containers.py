"""Checks for stages that run the app in a container (docker, compose): who runs it, what it logs.

They need the `app_container` capability: the stage names its app container, and the check
looks at it the way an operator would (`docker top`, `docker logs`).
"""

from __future__ import annotations

import json

import pytest
import requests

from harness.config import Settings
from harness.core.run import run
from harness.core.wait import NotYet, wait_until
from harness.stage import Deployment, Stage


@pytest.mark.requires("app_container")
def test_app_processes_run_as_non_root(stage: Stage) -> None:
    container = stage.app_container()
    top = run(["docker", "top", container, "-o", "uid,pid,args"]).stdout.splitlines()[1:]
    assert top, "docker top listed no process"
    root = [line for line in top if line.split()[0] in {"0", "root"}]
    assert not root, "processes running as root in the app container:\n" + "\n".join(root)


@pytest.mark.requires("app_container")
def test_requests_appear_in_the_log_stream(stage: Stage, deployment: Deployment,
                                           stageproof_settings: Settings) -> None:
    """Logs are a stream (12-factor XI): a request shows up in `docker logs` (as a JSON line
    with method, path and status when `app.log_format = "json"`)."""
    load = stageproof_settings.checks.load
    answer = requests.request(load.method, f"{deployment.base_url}{load.path}", timeout=10)
    assert answer.status_code == load.status, answer.text[:300]
    container = stage.app_container()
    structured = stageproof_settings.app.log_format == "json"

    def request_line() -> str:
        logs = run(["docker", "logs", "--tail", "300", container])
        for line in (logs.stdout + logs.stderr).splitlines():
            if load.path in line and (not structured or _request_entry(line, load.path)):
                return line
        raise NotYet(f"no {'JSON ' if structured else ''}line for {load.method} {load.path} in `docker logs` yet")

    wait_until(request_line, what="the request in the app's log stream", timeout=10)


def _request_entry(line: str, path: str) -> bool:
    try:
        entry = json.loads(line)
    except ValueError:
        return False
    return isinstance(entry, dict) and entry.get("path") == path and {"method", "status"} <= entry.keys()
