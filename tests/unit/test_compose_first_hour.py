"""A team's compose file as it is (tests/fixtures/two-tier): a healthcheck that curls a route the app
lacks with a curl the image lacks, a `./mysql-data` bind mount, services that get the app image
through `extends`, several files. The override bends each, read back through `docker compose config`
(no daemon needed); their files are never edited."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.config import Settings, load_settings
from harness.core.run import run
from harness.errors import ConfigError
from harness.lifecycle import in_ci
from harness.stages.compose import ComposeStage
from harness.stages.compose_override import RunVolumes, data_mounts, render_override

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "two-tier"
APP_IMAGE = "firsthour/two-tier:r1"
CURL = ["CMD-SHELL", "curl -f http://localhost:5000/health || exit 1"]


@pytest.fixture(autouse=True)
def _compose_cli() -> None:
    if shutil.which("docker") is None or run(["docker", "compose", "version"], check=False).returncode:
        if in_ci():
            pytest.fail("no docker compose CLI here to read the files as compose does")
        pytest.skip("no docker compose CLI here")


def team_folder(tmp_path: Path, compose: str | None = None, **files: str) -> Path:
    """A copy of the fixture app (their tree), with `[stages.compose]` replaced by `compose`."""
    folder = tmp_path / "two-tier"
    shutil.copytree(FIXTURE, folder, ignore=shutil.ignore_patterns("mysql-data"))
    for name, text in files.items():
        (folder / name).write_text(text)
    if compose is not None:
        config = (folder / "stageproof.toml").read_text()
        start = config.index("[stages.compose]")
        end = config.index("[stages.k8s]")
        (folder / "stageproof.toml").write_text(config[:start] + "[stages.compose]\n" + compose + "\n\n" + config[end:])
    return folder


def settings_of(folder: Path) -> Settings:
    return load_settings(folder / "stageproof.toml", env={})


def merged(settings: Settings) -> dict[str, Any]:
    """What compose runs for one such run: their files, then the override, as `config` reads them."""
    stage = ComposeStage(settings, run_id="unit0001", release="r1")
    stage.write_override(stage.compose_model(), APP_IMAGE, 41234)
    try:
        model = run([*stage._base(stage.compose_files()), "config", "--format", "json"]).stdout
    finally:
        shutil.rmtree(stage.compose_files()[-1].parent)
    result: dict[str, Any] = json.loads(model)
    return result


BASE = 'service = "backend"\ndatabase = "mysql"\n'


def test_their_healthcheck_is_replaced_by_the_configs(tmp_path: Path) -> None:
    services = merged(settings_of(team_folder(tmp_path)))["services"]
    check = services["backend"]["healthcheck"]
    assert check["test"][:2] == ["CMD", "python"] and "curl" not in json.dumps(check)
    assert (check["interval"], check["timeout"], check["retries"], check["start_period"]) == ("2s", "5s", 30, "5s")
    assert services["mysql"]["healthcheck"]["test"][:2] == ["CMD", "mysqladmin"]  # only the web service's


def test_their_healthcheck_can_be_disabled(tmp_path: Path) -> None:
    folder = team_folder(tmp_path, 'file = "docker-compose.yml"\n' + BASE + "healthcheck = false")
    assert merged(settings_of(folder))["services"]["backend"]["healthcheck"] == {"disable": True}


def test_without_the_key_their_healthcheck_stays(tmp_path: Path) -> None:
    folder = team_folder(tmp_path, 'file = "docker-compose.yml"\n' + BASE)
    assert merged(settings_of(folder))["services"]["backend"]["healthcheck"]["test"] == CURL


@pytest.mark.parametrize(("value", "message"), [
    ("true", r"stages\.compose\.healthcheck: True: give a table"),
    ('"no"', r"stages\.compose\.healthcheck: 'no': give a table"),
    ('{ test = ["curl", "-f", "http://x/"] }', r"stages\.compose\.healthcheck\.test: starts with 'curl'"),
    ('{ test = ["CMD", "true"], interval = "often" }', r"stages\.compose\.healthcheck\.interval"),
    ('{ test = ["CMD", "true"], retry = 3 }', r"stages\.compose\.healthcheck\.retry: unknown key"),
])
def test_a_bad_healthcheck_is_one_error_naming_the_key(tmp_path: Path, value: str, message: str) -> None:
    folder = team_folder(tmp_path, 'file = "docker-compose.yml"\n' + BASE + f"healthcheck = {value}")
    with pytest.raises(ConfigError, match=message):
        settings_of(folder)


PORTS_FILE = "services:\n  backend:\n    environment:\n      MYSQL_DB: devops_other\n"


def test_several_compose_files_are_read_in_order(tmp_path: Path) -> None:
    folder = team_folder(tmp_path, 'file = ["docker-compose.yml", "docker-compose.other.yml"]\n' + BASE,
                         **{"docker-compose.other.yml": PORTS_FILE})
    settings = settings_of(folder)
    assert settings.stages.compose is not None
    assert settings.stages.compose.file == [folder / "docker-compose.yml", folder / "docker-compose.other.yml"]
    backend = merged(settings)["services"]["backend"]
    assert backend["environment"]["MYSQL_DB"] == "devops_other"  # the second file wins, as with -f a -f b
    assert backend["image"] == APP_IMAGE


@pytest.mark.parametrize(("value", "message"), [
    ("[]", r"stages\.compose\.file: List should have at least 1 item"),
    ('["docker-compose.yml", "nope.yml"]', r"stages\.compose\.file: path does not exist: .*nope\.yml"),
    ("3", r"stages\.compose\.file: a compose file's path, or a list of them"),
    ('["docker-compose.yml", 3]', r"stages\.compose\.file: a compose file's path, or a list of them"),
])
def test_a_bad_file_list_is_one_error_naming_the_key(tmp_path: Path, value: str, message: str) -> None:
    folder = team_folder(tmp_path, f"file = {value}\n" + BASE)
    with pytest.raises(ConfigError, match=message):
        settings_of(folder)


EXTENDS = """
networks:
  twotier:
services:
  mysql:
    extends: {file: docker-compose.yml, service: mysql}
  backend:
    extends: {file: common.yml, service: app}
    depends_on: [mysql]
  worker:
    extends: {file: common.yml, service: app}
    command: ["python", "-c", "print('worker')"]
"""
COMMON = "services:\n  app:\n    image: two-tier-backend:latest\n    environment: {MYSQL_HOST: mysql}\n"


def test_a_service_that_gets_the_app_image_through_extends_runs_the_build(tmp_path: Path) -> None:
    folder = team_folder(tmp_path, 'file = "docker-compose.extends.yml"\n' + BASE,
                         **{"docker-compose.extends.yml": EXTENDS, "common.yml": COMMON})
    services = merged(settings_of(folder))["services"]
    assert services["backend"]["image"] == APP_IMAGE and services["worker"]["image"] == APP_IMAGE
    assert services["mysql"]["image"] == "mysql:5.7"


def test_their_data_folder_becomes_a_run_volume_and_their_other_mounts_stay(tmp_path: Path) -> None:
    config = merged(settings_of(team_folder(tmp_path)))
    mounts = {mount["target"]: mount for mount in config["services"]["mysql"]["volumes"]}
    data = mounts["/var/lib/mysql"]
    assert data["type"] == "volume" and data["source"].startswith("stageproof-mysql-mysql-data")
    assert config["volumes"][data["source"]]["labels"]["io.stageproof.run"] == "unit0001"
    assert mounts["/docker-entrypoint-initdb.d/message.sql"]["type"] == "bind"  # a file of theirs, read


def _bind(source: Path, target: str, *, read_only: bool = False) -> dict[str, Any]:
    return {"type": "bind", "source": str(source), "target": target, "read_only": read_only}


def test_which_bind_mounts_a_run_would_write_through(tmp_path: Path) -> None:
    project = tmp_path / "project"
    for folder in ("data", "src", "cache", "conf"):
        (project / folder).mkdir(parents=True)
    (project / "app.cfg").write_text("x=1\n")
    spec = {"services": {
        "db": {"image": "postgres:16", "volumes": [_bind(project / "data", "/var/lib/postgresql/data"),
                                                   _bind(project / "conf", "/etc/conf", read_only=True)]},
        "web": {"build": ".", "volumes": [_bind(project / "src", "/app"), _bind(project / "uploads", "/uploads"),
                                          _bind(project / "cache", "/cache"), _bind(project / "app.cfg", "/app.cfg"),
                                          {"type": "volume", "source": "named", "target": "/named"}]},
        "cache": {"image": "redis:7", "volumes": [_bind(tmp_path / "elsewhere", "/data")]},
    }}
    found = data_mounts(spec, database="db", project_dir=project, untracked=lambda path: path.name == "cache")
    assert {(mount.service, mount.target) for mount in found.mounts} == {
        ("db", "/var/lib/postgresql/data"), ("web", "/uploads"), ("web", "/cache"), ("cache", "/data")}
    assert "database service 'db'" in found.reasons[project / "data"]
    assert "does not exist yet" in found.reasons[project / "uploads"]
    assert "tracks" in found.reasons[project / "cache"]
    assert len({mount.volume for mount in found.mounts}) == 4


def test_the_override_says_so_in_compose_tags(tmp_path: Path) -> None:
    stage = ComposeStage(settings_of(team_folder(tmp_path)), run_id="unit0002", release="r1")
    notes = stage.write_override(stage.compose_model(), APP_IMAGE, 41234)
    text = stage.compose_files()[-1].read_text()
    shutil.rmtree(stage.compose_files()[-1].parent)
    assert "healthcheck: !override\n" in text
    assert any("mysql-data -> /var/lib/mysql runs on the run's volume" in note for note in notes), notes
    assert any("healthcheck replaced by [stages.compose] healthcheck: CMD python" in note for note in notes)
    assert yaml.safe_load(render_override({"services": {}})) == {"services": {}}
    assert data_mounts({"services": {}}, database="db", project_dir=tmp_path, untracked=bool) == RunVolumes()


def test_an_unhealthy_web_service_is_said_in_one_line_with_its_probe_s_output(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `docker inspect` says of a container whose healthcheck curls with no curl in the image."""
    from subprocess import CompletedProcess

    from harness.stages import compose

    health = {"Status": "unhealthy", "FailingStreak": 5, "Log": [
        {"ExitCode": 1, "Output": "/bin/sh: 1: curl: not found\n"}]}
    inspected = f"{json.dumps(health)}\n{json.dumps({'Test': CURL, 'Interval': 10000000000})}\n"
    monkeypatch.setattr(compose, "run", lambda argv, **kwargs: CompletedProcess(argv, 0, inspected, ""))
    stage = ComposeStage(settings_of(team_folder(tmp_path)), run_id="unit0003", release="r1")
    lines = stage._unhealthy("Container x Waiting\ncontainer stageproof-unit0003-backend-1 is unhealthy\n")
    assert lines[0] == ("container stageproof-unit0003-backend-1 is unhealthy: its healthcheck "
                        "`curl -f http://localhost:5000/health || exit 1` said: /bin/sh: 1: curl: not found")
    assert "[stages.compose] healthcheck = {" in lines[1] and "healthcheck = false" in lines[1]
    assert stage._unhealthy("service seed didn't complete successfully: exit 3") == []
