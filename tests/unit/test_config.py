"""The config file is validated with one error naming the key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from harness.config import load_settings, parse_settings
from harness.errors import ConfigError
from harness.project import load_project

ROOT = Path(__file__).resolve().parents[2]


def reference() -> dict:
    return tomllib.loads((ROOT / "stageproof.toml").read_text())


def test_reference_config_loads_with_typed_values() -> None:
    settings = load_settings(ROOT / "stageproof.toml", env={})
    assert settings.app.port == 8000
    assert settings.contract.cases == ROOT / "contract.toml"
    assert settings.app.local.workdir == ROOT


def test_unknown_key_is_named() -> None:
    raw = reference()
    raw["app"]["colour"] = "blue"
    with pytest.raises(ConfigError, match=r"app\.colour: unknown key"):
        parse_settings(raw, root=ROOT)


def test_missing_path_is_named() -> None:
    raw = reference()
    raw["contract"]["cases"] = "nowhere.toml"
    with pytest.raises(ConfigError, match=r"contract\.cases: path does not exist: .*nowhere\.toml"):
        parse_settings(raw, root=ROOT)


def test_wrong_type_is_named() -> None:
    raw = reference()
    raw["app"]["port"] = "eighty"
    with pytest.raises(ConfigError, match=r"app\.port: .*integer"):
        parse_settings(raw, root=ROOT)


def test_missing_required_key_is_named() -> None:
    raw = reference()
    del raw["app"]["local"]["serve"]
    with pytest.raises(ConfigError, match=r"app\.local\.serve: Field required"):
        parse_settings(raw, root=ROOT)


def test_missing_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="STAGEPROOF_CONFIG"):
        load_settings(tmp_path / "absent.toml", env={})


def test_invalid_toml_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "stageproof.toml"
    bad.write_text("[app\nname = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad, env={})


def test_airgap_comes_from_the_environment() -> None:
    settings = load_settings(ROOT / "stageproof.toml", env={"STAGEPROOF_AIRGAP": "1"})
    assert settings.images is not None and settings.images.airgap == "always"


def test_unknown_placeholder_in_app_env_is_named() -> None:
    raw = reference()
    raw["app"]["env"]["MYSQL_HOST"] = "${db.hots}"
    with pytest.raises(ConfigError, match=r"app\.env: .*MYSQL_HOST: unknown placeholder \$\{db\.hots\}"):
        parse_settings(raw, root=ROOT)


def test_port_out_of_range_is_named() -> None:
    raw = reference()
    raw["stages"]["k8s"]["node_port"] = 80
    with pytest.raises(ConfigError, match=r"stages\.k8s\.node_port: .*greater than or equal to 30000"):
        parse_settings(raw, root=ROOT)


def test_kind_has_three_nodes_and_an_ingress_port_by_default() -> None:
    k8s = parse_settings(reference(), root=ROOT).stages.k8s
    assert k8s is not None
    assert (k8s.nodes, k8s.node_port, k8s.ingress_node_port) == (3, 30080, 30081)


def test_the_ingress_node_port_must_differ_from_the_apps() -> None:
    raw = reference()
    raw["stages"]["k8s"]["ingress_node_port"] = raw["stages"]["k8s"]["node_port"]
    with pytest.raises(ConfigError, match=r"stages\.k8s: ingress_node_port: 30080 is already node_port"):
        parse_settings(raw, root=ROOT)


def test_unknown_not_applicable_stage_is_named() -> None:
    raw = reference()
    raw.setdefault("stages", {})["not_applicable"] = {"local-sqlit": "typo"}
    with pytest.raises(ConfigError, match=r"stages\.not_applicable: .*unknown stage 'local-sqlit'"):
        parse_settings(raw, root=ROOT)


def test_persistence_must_name_a_case_with_steps(tmp_path: Path) -> None:
    text = (ROOT / "stageproof.toml").read_text()
    (tmp_path / "stageproof.toml").write_text(
        text.replace('persistence = "created user reads back"', 'persistence = "one user by id"')
        .replace('cases = "contract.toml"', f'cases = "{ROOT / "contract.toml"}"')
        .replace('workdir = "."', f'workdir = "{ROOT}"')
        .replace('dockerfile = "stages/docker/Dockerfile"', f'dockerfile = "{ROOT / "stages/docker/Dockerfile"}"')
        .replace('context = "."', f'context = "{ROOT}"')
        .replace('requirements = "app/requirements.txt"', f'requirements = "{ROOT / "app/requirements.txt"}"')
        .replace('file = "stages/compose/compose.yaml"', f'file = "{ROOT / "stages/compose/compose.yaml"}"')
        .replace('manifests = "stages/k8s/', f'manifests = "{ROOT}/stages/k8s/')
        .replace('patch = "stages/', f'patch = "{ROOT}/stages/'))
    with pytest.raises(ConfigError, match=r"checks\.persistence: case 'one user by id' needs steps"):
        load_project(tmp_path / "stageproof.toml", env={})


def test_the_example_app_config_loads() -> None:
    settings = load_settings(ROOT / "examples" / "guestbook" / "stageproof.toml", env={})
    assert not settings.app.port_from_env and settings.app.port == 5000
    assert settings.not_applicable("local-sqlite") and settings.not_applicable("docker") is None


# -- registry mode ----------------------------------------------------------------------------
def with_images(**keys: object) -> dict:
    raw = reference()
    raw["images"] = {**raw["images"], **keys}
    return raw


def test_registry_keys_need_a_registry() -> None:
    with pytest.raises(ConfigError, match=r"images: registry_endpoint: needs images\.registry"):
        parse_settings(with_images(registry_endpoint="http://172.18.0.1:5000"), root=ROOT)


def test_a_bad_registry_is_named() -> None:
    with pytest.raises(ConfigError, match=r"images\.registry: String should match"):
        parse_settings(with_images(registry="http://127.0.0.1:5000"), root=ROOT)


def test_credentials_come_by_variable_name_both_or_neither() -> None:
    with pytest.raises(ConfigError, match=r"username_env, password_env: give both or neither"):
        parse_settings(with_images(registry="127.0.0.1:5000", username_env="REG_USER"), root=ROOT)
    with pytest.raises(ConfigError, match=r"images\.password_env: String should match"):
        parse_settings(with_images(registry="127.0.0.1:5000", username_env="U", password_env="not a name"), root=ROOT)


def test_credentials_are_read_from_the_named_variables() -> None:
    settings = parse_settings(with_images(registry="127.0.0.1:5000", username_env="REG_USER",
                                          password_env="REG_PASS"), root=ROOT)
    assert settings.images is not None
    with pytest.raises(ConfigError, match=r"images\.password_env: \$REG_PASS is not set"):
        settings.images.credentials({"REG_USER": "team"})
    assert settings.images.credentials({"REG_USER": "team", "REG_PASS": "s3cret"}) == ("team", "s3cret")


def test_credentials_are_never_read_from_the_file() -> None:
    raw = reference()
    raw["registry_credentials"] = ["team", "s3cret"]
    with pytest.raises(ConfigError, match=r"registry_credentials: unknown key"):
        parse_settings(raw, root=ROOT)
