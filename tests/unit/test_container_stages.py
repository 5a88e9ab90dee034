"""The container stages' and image builds' pure parts: no Docker daemon needed."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from subprocess import CompletedProcess
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from harness.config import DatabaseSettings, load_settings
from harness.core.ownership import OWNER_LABEL, owner_alive
from harness.errors import ConfigError
from harness.images import build
from harness.services.engine import endpoint, engine_named

ROOT = Path(__file__).resolve().parents[2]


def test_release_ids_become_valid_image_tags() -> None:
    assert build.release_tag("3f2a9c1d0e4b-dirty") == "3f2a9c1d0e4b-dirty"
    assert build.release_tag("feature/x y") == "feature-x-y"
    assert build.release_tag("..") == "dev"
    assert len(build.release_tag("a" * 300)) == 128


def test_forced_airgap_never_contacts_a_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_commands(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"ran a command: {args}")

    monkeypatch.setattr(build, "run", no_commands)
    monkeypatch.setattr(build, "image_id", no_commands)
    images = load_settings(ROOT / "stageproof.toml", env={"STAGEPROOF_AIRGAP": "1"}).images
    assert images is not None
    assert build.use_airgap(images) is True


def test_auto_mode_uses_local_upstream_images_without_pulling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "image_labels", lambda ref: {})  # real upstream images, here already
    monkeypatch.setattr(build, "run", lambda *a, **k: pytest.fail("pulled although the images are local"))
    images = load_settings(ROOT / "stageproof.toml", env={"STAGEPROOF_AIRGAP": "auto"}).images
    assert images is not None
    assert build.use_airgap(images) is False


def test_database_url_escapes_credentials() -> None:
    db = DatabaseSettings(name="users", user="u@x", password="p/ss:w@rd#", root_password="r")
    assert endpoint(engine_named("mysql"), db, "db").url == "mysql://u%40x:p%2Fss%3Aw%40rd%23@db:3306/users"


def test_reaping_spares_objects_whose_owner_process_lives() -> None:
    host = socket.gethostname()
    assert owner_alive({OWNER_LABEL: f"{os.getpid()}@{host}"})
    assert not owner_alive({OWNER_LABEL: f"{2**22 + 7}@{host}"})  # above pid_max: never alive
    assert not owner_alive({OWNER_LABEL: f"{os.getpid()}@another-machine"})
    assert not owner_alive({})


def test_compose_file_declares_the_one_step_startup_order() -> None:
    spec = yaml.safe_load((ROOT / "stages/compose/compose.yaml").read_text())
    services = spec["services"]
    assert services["seed"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["web"]["depends_on"]["seed"]["condition"] == "service_completed_successfully"
    assert "healthcheck" in services["db"] and "healthcheck" in services["web"]
    assert "db-data:/var/lib/mysql" in services["db"]["volumes"]


def test_reference_compose_file_is_plain_compose_with_the_configs_values() -> None:
    """A file a team would write: no stageproof variables or labels (the override adds those),
    and the database credentials of stageproof.toml (the docker stage's) in its own words."""
    text = (ROOT / "stages/compose/compose.yaml").read_text()
    assert "${" not in text and "io.stageproof" not in text
    settings = load_settings(ROOT / "stageproof.toml", env={})
    services = yaml.safe_load(text)["services"]
    db = settings.database
    assert services["db"]["environment"] == {"MYSQL_ROOT_PASSWORD": db.root_password, "MYSQL_DATABASE": db.name,
                                             "MYSQL_USER": db.user, "MYSQL_PASSWORD": db.password}
    assert services["web"]["environment"]["API_TOKEN"] == settings.app.token
    assert services["web"]["ports"] == [f"{settings.app.port}:{settings.app.port}"]


def test_compose_stage_runs_their_file_then_its_override_from_their_folder(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.stages import compose

    commands: list[list[str]] = []

    def fake_run(argv: list[str], **kwargs: Any) -> CompletedProcess[str]:
        commands.append([str(part) for part in argv])
        return CompletedProcess(argv, 0, "", "")

    built = SimpleNamespace(app="stageproof/users:r1", substitutes={}, notes=lambda: ())
    monkeypatch.setattr(compose, "ensure_images", lambda settings, release: built)
    monkeypatch.setattr(compose, "run", fake_run)
    monkeypatch.setattr(compose.ComposeStage, "_wait_ready", lambda self: None)
    monkeypatch.setattr(compose.ComposeStage, "compose_model", lambda self: compose.read_compose_file(their_file))
    monkeypatch.setattr(compose, "docker_client", lambda: None)
    monkeypatch.setattr(compose, "remove_run", lambda *args, **kwargs: [])
    settings = load_settings(ROOT / "stageproof.toml", env={})
    assert settings.stages.compose is not None
    (their_file,) = settings.stages.compose.file
    stage = compose.ComposeStage(settings, run_id="abcd1234", release="r1")

    deployment = stage.up()
    up = commands[-1]
    override = Path(up[up.index("--file", up.index("--file") + 1) + 1])
    assert up[:10] == ["docker", "compose", "--project-name", "stageproof-abcd1234", "--project-directory",
                       str(their_file.parent), "--file", str(their_file), "--file", str(override)]
    assert up[10:] == ["up", "--detach", "--wait", "--wait-timeout", "180", "--pull", "never", "--no-build"]
    assert override.stat().st_mode & 0o777 == 0o600
    assert override.parent.name.startswith(f"{compose.WORKDIR_PREFIX}{os.getpid()}-abcd1234-")
    text = override.read_text()
    assert "RELEASE_ID: r1" in text and f"API_TOKEN: {settings.app.token}" in text
    assert "DATABASE_URL" not in text  # their file wires the database
    assert f"127.0.0.1:{deployment.base_url.rsplit(':', 1)[1]}:{settings.app.port}" in text

    stage.capabilities().database.stop()  # type: ignore[union-attr]
    assert commands[-1][-4:] == ["stop", "--timeout", "10", settings.stages.compose.database]
    stage.down()
    assert commands[-1][10:13] == ["down", "--volumes", "--remove-orphans"]
    assert not override.parent.exists()


def test_compose_stage_names_a_missing_service_before_building_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.stages import compose

    monkeypatch.setattr(compose, "ensure_images", lambda *a, **k: pytest.fail("built images for a broken config"))
    settings = load_settings(ROOT / "stageproof.toml", env={})
    assert settings.stages.compose is not None
    broken = settings.stages.compose.model_copy(update={"service": "api"})
    stages = settings.stages.model_copy(update={"compose": broken})
    stage = compose.ComposeStage(settings.model_copy(update={"stages": stages}), run_id="abcd1234", release="r1")
    with pytest.raises(ConfigError, match=r"stages\.compose\.service: no service 'api'"):
        stage.up()
