"""Checks of what runs the app (docker, compose: its container): who runs it, what it logs.

They need the `AppContainer` control: the stage looks at its app the way an operator would
(`docker top`, `docker logs`).
"""

from __future__ import annotations

import json
import secrets

import requests

from harness.checks.common import Reporter, requires, under_load
from harness.config import Settings
from harness.core.wait import NotYet, wait_until
from harness.stage import AppContainer, AppCrash, Deployment


@requires(AppContainer)
def test_app_processes_run_as_non_root(app_container: AppContainer) -> None:
    top = app_container.process_users()
    assert top, "no process listed in the app's container"
    root = [line for line in top if line.split()[0] in {"0", "root"}]
    assert not root, "processes running as root in the app container:\n" + "\n".join(root)


#: how long a request's line may take to reach the log stream (Docker's or the kubelet's log files)
LOG_LINE_TIMEOUT = 10.0


@requires(AppContainer)
def test_requests_appear_in_the_log_stream(app_container: AppContainer, deployment: Deployment,
                                           stageproof_settings: Settings) -> None:
    """Logs are a stream (12-factor XI): the very request this check sends (its query string carries
    a token no other request has) shows up in the app's log stream (as a JSON line with method, path
    and status when `app.log_format = "json"`)."""
    load = stageproof_settings.checks.load
    token = f"stageproof-log-{secrets.token_hex(6)}"
    path = f"{load.path}{'&' if '?' in load.path else '?'}{token}"
    answer = requests.request(load.method, f"{deployment.base_url}{path}", timeout=10)
    assert answer.status_code == load.status, answer.text[:300]
    structured = stageproof_settings.app.log_format == "json"

    def request_line() -> str:
        for line in app_container.log_text().splitlines():
            if token in line and (not structured or _request_entry(line, token)):
                return line
        raise NotYet(f"no {'JSON ' if structured else ''}line for {load.method} {path} in the log stream yet")

    wait_until(request_line, what=f"the request {load.method} {path} in the app's log stream",
               timeout=LOG_LINE_TIMEOUT)


def _request_entry(line: str, token: str) -> bool:
    """A JSON request line: method, status, and the path that carries `token`."""
    try:
        entry = json.loads(line)
    except ValueError:
        return False
    return isinstance(entry, dict) and token in str(entry.get("path", "")) and {"method", "status"} <= entry.keys()


@requires(AppContainer, AppCrash)
def test_a_sigkilled_app_container_comes_back_and_serves(app_crash: AppCrash, deployment: Deployment,
                                                         stageproof_settings: Settings, report: Reporter) -> None:
    """A crash, not a polite stop: SIGKILL of the app's container under load. It is started again
    (its restart policy, else as an operator would), and serves: failures only while it is away (plus
    one request timeout), none after, back within `checks.crash_recovery_seconds`."""
    checks = stageproof_settings.checks
    killed: list[str] = []
    result = under_load(stageproof_settings, deployment, "app container SIGKILL",
                        lambda: killed.append(app_crash.crash()), app_crash.recover)
    verdict = result.database_outage(None, max_recovery_seconds=checks.crash_recovery_seconds)
    report(verdict.summary(), {**result.figures(), "verdict": verdict.as_dict()})
    assert result.covered, "the load ended before the app served again"
    assert verdict.passed, f"app container {killed[0][:12]} SIGKILL: " + "; ".join(verdict.problems)
