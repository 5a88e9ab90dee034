"""A team's existing pytest-docker tests run unchanged against the compose project stageproof
manages: `docker_services.port_for`, `wait_until_responsive` and `docker_ip` follow it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.config import Settings

TEAM_TEST = '''
import requests


def is_responsive(url):
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def test_the_service_answers(docker_ip, docker_services, docker_compose_project_name):
    port = docker_services.port_for("web", 8000)
    url = f"http://{docker_ip}:{port}"
    docker_services.wait_until_responsive(timeout=30.0, pause=0.5, check=lambda: is_responsive(url + "/users"))
    assert docker_compose_project_name.startswith("stageproof-")
    print("TEAM-TEST", docker_compose_project_name, url)
'''


def test_a_team_s_pytest_docker_test_runs_unchanged_against_the_stage(stageproof_settings: Settings,
                                                                      tmp_path: Path) -> None:
    (tmp_path / "test_team.py").write_text(TEAM_TEST)
    proc = subprocess.run(  # noqa: S603 - an argv list
        [sys.executable, "-m", "pytest", str(tmp_path / "test_team.py"), "-p", "no:cacheprovider", "-s",
         "--stage", "compose", "--stageproof-config", str(stageproof_settings.root / "stageproof.toml"),
         "--rootdir", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "TEAM-TEST stageproof-" in proc.stdout, proc.stdout[-3000:]
    assert "1 passed" in proc.stdout
