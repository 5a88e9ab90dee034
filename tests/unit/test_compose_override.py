"""The compose stage's override: their file untouched, every run isolated and labelled."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.core.run import run
from harness.errors import ConfigError
from harness.stages.compose_override import (
    OVERRIDE,
    RESET,
    Tagged,
    WebService,
    compose_override,
    escaped,
    image_name,
    read_compose_file,
    render_override,
    require_services,
    write_private,
)

ROOT = Path(__file__).resolve().parents[2]
LABELS = {"io.stageproof.run": "r1", "io.stageproof.stage": "compose", "io.stageproof.owner": "42@host"}
GUESTBOOK = """
services:
  mysql:
    image: mysql:8.0
    container_name: guestbook-db
    environment:
      MYSQL_PASSWORD: guestbook-secret
    volumes: [dbdata:/var/lib/mysql, ./db/init.sql:/docker-entrypoint-initdb.d/init.sql:ro]
    ports: ["3306:3306"]
  frontend:
    build: .
    image: guestbook:latest
    container_name: guestbook-web
    environment:
      APP_VERSION: ${APP_VERSION:-1.0.0}
    ports: ["5000:5000"]
    depends_on:
      mysql:
        condition: service_healthy
volumes:
  dbdata:
"""


class _Loader(yaml.SafeLoader):
    """Reads compose's tags back as `Tagged`, to compare what we wrote with what we meant."""


def _tagged(loader: yaml.SafeLoader, node: yaml.Node) -> Tagged:
    if isinstance(node, yaml.SequenceNode):
        return Tagged(node.tag, loader.construct_sequence(node))
    if isinstance(node, yaml.MappingNode):
        return Tagged(node.tag, loader.construct_mapping(node))
    return Tagged(node.tag, None if node.value == "null" else node.value)


_Loader.add_constructor(RESET, _tagged)
_Loader.add_constructor(OVERRIDE, _tagged)


def _guestbook(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    (tmp_path / "db").mkdir()
    (tmp_path / "db/init.sql").write_text("SELECT 1;\n")
    file = tmp_path / "docker-compose.yml"
    file.write_text(GUESTBOOK)
    return file, read_compose_file(file)


def _override(spec: dict[str, Any], *, environment: dict[str, str] | None = None) -> dict[str, Any]:
    web = WebService("frontend", host_port=41234, container_port=5000,
                     environment=environment if environment is not None else {"RELEASE_ID": "abc"})
    return compose_override(spec, web=web, app_image="guestbook:run-abc", app_name="guestbook", labels=LABELS)


def _round_trip(override: dict[str, Any]) -> dict[str, Any]:
    return yaml.load(render_override(override, header="generated\nfor a test"), Loader=_Loader)


def test_every_service_loses_its_fixed_name_and_carries_the_run_labels(tmp_path: Path) -> None:
    _, spec = _guestbook(tmp_path)
    services = _round_trip(_override(spec))["services"]
    assert set(services) == {"mysql", "frontend"}
    for service in services.values():
        assert service["container_name"] == Tagged(RESET)
        assert service["labels"] == LABELS


def test_only_the_web_service_publishes_a_port_and_only_on_loopback(tmp_path: Path) -> None:
    _, spec = _guestbook(tmp_path)
    services = _round_trip(_override(spec))["services"]
    assert services["frontend"]["ports"] == Tagged(OVERRIDE, ["127.0.0.1:41234:5000"])
    assert services["mysql"]["ports"] == Tagged(RESET, [])


def test_the_app_service_runs_the_built_image_and_is_never_built(tmp_path: Path) -> None:
    _, spec = _guestbook(tmp_path)
    services = _round_trip(_override(spec))["services"]
    assert services["frontend"]["image"] == "guestbook:run-abc"
    assert services["frontend"]["build"] == Tagged(RESET)
    assert "image" not in services["mysql"] and "build" not in services["mysql"]


def test_a_service_is_the_app_by_image_name_whatever_its_tag() -> None:
    spec = {"services": {"api": {"image": "registry.local:5000/team/app:1.2"}, "worker": {"image": "other:1"}}}
    web = WebService("api", host_port=1, container_port=2, environment={})
    services = compose_override(spec, web=web, app_image="team/app:run", app_name="registry.local:5000/team/app",
                                labels=LABELS)["services"]
    assert services["api"]["image"] == "team/app:run"
    assert "image" not in services["worker"]
    assert image_name("registry.local:5000/team/app") == "registry.local:5000/team/app"
    assert image_name("app@sha256:abc") == "app"


def test_volumes_and_networks_carry_the_run_labels_and_external_ones_are_left_alone() -> None:
    spec = {"services": {"web": {"image": "x"}},
            "volumes": {"data": None, "shared": {"external": True}, "fixed": {"name": "fixed-data"}},
            "networks": {"backend": {}, "outside": {"external": True}}}
    web = WebService("web", host_port=1, container_port=2, environment={})
    override = _round_trip(compose_override(spec, web=web, app_image="x:1", app_name=None, labels=LABELS))
    assert override["volumes"] == {"data": {"labels": LABELS}, "fixed": {"labels": LABELS, "name": Tagged(RESET)}}
    assert override["networks"] == {"default": {"labels": LABELS}, "backend": {"labels": LABELS}}


def test_dollar_signs_reach_the_app_literally() -> None:
    assert escaped({"a": ["$x", Tagged(OVERRIDE, ["p$$"])]}) == {"a": ["$$x", Tagged(OVERRIDE, ["p$$$$"])]}
    spec = {"services": {"frontend": {"build": "."}}}
    text = render_override(_override(spec, environment={"API_TOKEN": "pa$word", "RELEASE_ID": "${release}"}))
    assert "API_TOKEN: pa$$word" in text
    assert "RELEASE_ID: $${release}" in text


def test_the_web_environment_holds_only_what_it_is_given(tmp_path: Path) -> None:
    _, spec = _guestbook(tmp_path)
    assert _round_trip(_override(spec))["services"]["frontend"]["environment"] == {"RELEASE_ID": "abc"}
    assert "environment" not in _round_trip(_override(spec, environment={}))["services"]["frontend"]
    assert "environment" not in _round_trip(_override(spec))["services"]["mysql"]


def test_tags_are_written_as_compose_reads_them(tmp_path: Path) -> None:
    _, spec = _guestbook(tmp_path)
    text = render_override(_override(spec), header="generated\nfor a test")
    assert text.startswith("# generated\n# for a test\n")
    assert "container_name: !reset null\n" in text
    assert "ports: !reset []\n" in text
    assert "ports: !override ['127.0.0.1:41234:5000']\n" in text
    assert "&id" not in text and "*id" not in text  # no YAML aliases for the shared labels


def test_a_missing_service_or_file_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    file, spec = _guestbook(tmp_path)
    with pytest.raises(ConfigError, match=r"stages.compose.database: no service 'db' .*frontend, mysql"):
        require_services(spec, {"stages.compose.service": "frontend", "stages.compose.database": "db"}, file)
    empty = tmp_path / "empty.yaml"
    empty.write_text("version: '3'\n")
    with pytest.raises(ConfigError, match=r"stages\.compose\.file: .* declares no services"):
        read_compose_file(empty)


def test_the_override_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "override.yaml"
    write_private(path, "services: {}\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _compose_config(project_dir: Path, *files: Path) -> dict[str, Any]:
    argv = ["docker", "compose", "--project-name", "stageproof-unit", "--project-directory", str(project_dir)]
    for file in files:
        argv += ["--file", str(file)]
    return yaml.safe_load(run([*argv, "config"]).stdout)


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI with Compose v2")
def test_compose_accepts_the_override_of_a_guestbook_like_file(tmp_path: Path) -> None:
    file, spec = _guestbook(tmp_path)
    override = tmp_path / "override.yaml"
    override.write_text(render_override(_override(spec, environment={"API_TOKEN": "pa$word"})))
    config = _compose_config(tmp_path, file, override)
    mysql, frontend = config["services"]["mysql"], config["services"]["frontend"]
    assert "container_name" not in mysql and "container_name" not in frontend
    assert "ports" not in mysql
    assert [(port["host_ip"], str(port["published"]), port["target"]) for port in frontend["ports"]] == [
        ("127.0.0.1", "41234", 5000)]
    assert "build" not in frontend and frontend["image"] == "guestbook:run-abc"
    assert frontend["environment"]["API_TOKEN"] == "pa$$word"  # `config` re-escapes: the app sees pa$word
    assert frontend["environment"]["APP_VERSION"] == "1.0.0"  # their interpolation still works
    assert mysql["labels"] == LABELS and config["volumes"]["dbdata"]["labels"] == LABELS
    assert config["networks"]["default"]["labels"] == LABELS
    init = [volume for volume in mysql["volumes"] if volume["type"] == "bind"]
    assert init[0]["source"] == str(tmp_path / "db/init.sql")  # relative to their folder


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI with Compose v2")
def test_compose_accepts_the_override_of_the_reference_compose_file(tmp_path: Path) -> None:
    file = ROOT / "stages/compose/compose.yaml"
    spec = read_compose_file(file)
    web = WebService("web", host_port=41235, container_port=8000, environment={"RELEASE_ID": "abc"})
    override = tmp_path / "override.yaml"
    override.write_text(render_override(compose_override(spec, web=web, app_image="stageproof/users:abc",
                                                         app_name="stageproof/users", labels=LABELS)))
    services = _compose_config(file.parent, file, override)["services"]
    assert {name: service.get("image") for name, service in services.items()} == {
        "db": "mysql:8.4", "seed": "stageproof/users:abc", "web": "stageproof/users:abc"}
    assert not any("build" in service for service in services.values())
    assert services["web"]["environment"]["RELEASE_ID"] == "abc"
    assert services["web"]["environment"]["API_TOKEN"] == "stageproof-contract-token"
