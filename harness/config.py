"""stageproof.toml -> one typed, validated `Settings` object (config flows one way).

The harness knows the app under test only through this file. Every problem is reported as one
`ConfigError` naming the key (`stages.compose.file: path does not exist: ...`).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from harness.errors import ConfigError

CONFIG_ENV = "STAGEPROOF_CONFIG"
DEFAULT_CONFIG = "stageproof.toml"
Seconds = Annotated[float, Field(gt=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _existing(value: str, info: ValidationInfo) -> Path:
    """Resolve `value` against the config file's folder and insist that it exists."""
    root = (info.context or {}).get("root", Path.cwd())
    path = (root / value).resolve()
    if not path.exists():
        raise ValueError(f"path does not exist: {path}")
    return path


ExistingPath = Annotated[Path, Field(description="a path relative to the config file")]


class AppEnv(_Section):
    database_url: str = "DATABASE_URL"
    token: str = "API_TOKEN"
    release: str = "RELEASE_ID"
    port: str = "PORT"
    host: str = "HOST"


class LocalCommands(_Section):
    workdir: ExistingPath = Path()
    seed: list[str] = Field(min_length=1)
    serve: list[str] = Field(min_length=1)

    _paths = field_validator("workdir", mode="before")(_existing)


class AppSettings(_Section):
    name: str
    port: int = Field(8000, ge=1, le=65535)
    health_path: str = "/healthz"
    ready_path: str = "/readyz"
    version_path: str = "/version"
    release_field: str = "release"
    token: str | None = None
    env: AppEnv = AppEnv()
    local: LocalCommands


class DatabaseSettings(_Section):
    name: str = "app"
    user: str = "app"
    password: str
    root_password: str


class ContractSettings(_Section):
    cases: ExistingPath

    _paths = field_validator("cases", mode="before")(_existing)


class AppImage(_Section):
    tag: str
    dockerfile: ExistingPath
    context: ExistingPath = Path()
    requirements: ExistingPath | None = None

    _paths = field_validator("dockerfile", "context", "requirements", mode="before")(_existing)


class DbImage(_Section):
    tag: str
    upstream: str = "mysql:8.4"
    recipe: ExistingPath

    _paths = field_validator("recipe", mode="before")(_existing)


class ImageSettings(_Section):
    airgap: Literal["auto", "always", "never"] = "auto"
    app: AppImage
    db: DbImage


class LocalStage(_Section):
    up_timeout: Seconds = 60


class DockerStage(_Section):
    up_timeout: Seconds = 120


class ComposeStage(_Section):
    file: ExistingPath
    service: str = "web"
    up_timeout: Seconds = 180

    _paths = field_validator("file", mode="before")(_existing)


class K8sStage(_Section):
    kustomize: str
    kind_config: str
    cluster: str = "stageproof"
    namespace: str = "stageproof"
    deployment: str = "web"
    database: str = "db"
    seed_job: str = "seed"
    node_port: int = Field(30080, ge=30000, le=32767)
    up_timeout: Seconds = 600
    # An existing cluster instead of kind (a team's own): its kubeconfig context, the kubeconfig
    # file (default: kubectl's), and where the app's Service answers from this machine.
    context: str | None = None
    kubeconfig: str | None = None
    base_url: str | None = None
    # How long one disruption check (pod kill, scale, rollout) may wait for the stage to recover.
    check_timeout: Seconds = 180
    # Deploy these image refs instead of the ones `images` builds (e.g. a team's registry for its
    # own cluster); $STAGEPROOF_K8S_APP_IMAGE / $STAGEPROOF_K8S_DB_IMAGE override them.
    app_image: str | None = None
    db_image: str | None = None


class StageSettings(_Section):
    local: LocalStage = LocalStage()
    docker: DockerStage = DockerStage()
    compose: ComposeStage | None = None
    k8s: K8sStage | None = None


class Settings(_Section):
    root: Path
    app: AppSettings
    database: DatabaseSettings
    contract: ContractSettings
    images: ImageSettings | None = None
    stages: StageSettings = StageSettings()


def config_path(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The config file named by `path`, else `$STAGEPROOF_CONFIG`, else `./stageproof.toml`."""
    env = os.environ if env is None else env
    return Path(path or env.get(CONFIG_ENV) or DEFAULT_CONFIG).resolve()


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the config file (see `config_path`); env overrides apply."""
    env = os.environ if env is None else env
    config_path = _config_path(path, env)
    try:
        raw = tomllib.loads(config_path.read_text())
    except FileNotFoundError as err:
        raise ConfigError(f"config file not found: {config_path} (set {CONFIG_ENV} or pass --config)") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{config_path}: not valid TOML: {err}") from err
    return parse_settings(_apply_env(raw, env), root=config_path.parent, source=str(config_path))


_config_path = config_path


def parse_settings(raw: Mapping[str, Any], *, root: Path, source: str = "config") -> Settings:
    """Validate a parsed config mapping; relative paths are resolved against `root`."""
    if "root" in raw:
        raise ConfigError(f"{source}: root: unknown key")
    try:
        return Settings.model_validate({**raw, "root": root}, context={"root": root})
    except ValidationError as err:
        raise ConfigError(f"{source}: {_describe(err)}") from None


def _describe(err: ValidationError) -> str:
    """Each problem as `dotted.key: message`, the first on the same line as the file name."""
    lines = []
    for problem in err.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        message = "unknown key" if problem["type"] == "extra_forbidden" else problem["msg"]
        lines.append(f"{key}: {message.removeprefix('Value error, ')}")
    return "\n  ".join(lines)


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """Environment overrides the file: STAGEPROOF_AIRGAP=1/0/auto."""
    airgap = env.get("STAGEPROOF_AIRGAP")
    if airgap is None or "images" not in raw:
        return raw
    value = {"1": "always", "true": "always", "0": "never", "false": "never"}.get(airgap.lower(), airgap)
    return {**raw, "images": {**raw["images"], "airgap": value}}
