"""The container stages' and image builds' pure parts: no Docker daemon needed."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.config import DatabaseSettings, load_settings
from harness.errors import ConfigError
from harness.images import build
from harness.stages.compose import _quoted
from harness.stages.containers import OWNER_LABEL, mysql_url, owner_alive

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
    monkeypatch.setattr(build, "image_id", lambda ref: f"sha256:{ref}")
    monkeypatch.setattr(build, "run", lambda *a, **k: pytest.fail("pulled although the images are local"))
    images = load_settings(ROOT / "stageproof.toml", env={"STAGEPROOF_AIRGAP": "auto"}).images
    assert images is not None
    assert build.use_airgap(images) is False


def test_database_url_escapes_credentials() -> None:
    db = DatabaseSettings(name="users", user="u@x", password="p/ss:w@rd#", root_password="r")
    assert mysql_url(db, "db:3306") == "mysql://u%40x:p%2Fss%3Aw%40rd%23@db:3306/users"


def test_reaping_spares_objects_whose_owner_process_lives() -> None:
    host = socket.gethostname()
    assert owner_alive({OWNER_LABEL: f"{os.getpid()}@{host}"})
    assert not owner_alive({OWNER_LABEL: f"{2**22 + 7}@{host}"})  # above pid_max: never alive
    assert not owner_alive({OWNER_LABEL: f"{os.getpid()}@another-machine"})
    assert not owner_alive({})


def test_compose_env_values_are_literal_or_rejected() -> None:
    assert _quoted("pa$$ #word") == "'pa$$ #word'"
    with pytest.raises(ConfigError):
        _quoted("it's")


def test_compose_file_declares_the_one_step_startup_order() -> None:
    spec = yaml.safe_load((ROOT / "stages/compose/compose.yaml").read_text())
    services = spec["services"]
    assert services["seed"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["web"]["depends_on"]["seed"]["condition"] == "service_completed_successfully"
    assert "healthcheck" in services["db"] and "healthcheck" in services["web"]
    assert all(port.startswith("127.0.0.1:") for port in services["web"]["ports"])
    assert "db-data:/var/lib/mysql" in services["db"]["volumes"]
    assert all(service["labels"]["io.stageproof.run"] for service in services.values())
