"""stageproof.toml -> one typed, validated `Settings` object (config flows one way).

The harness knows the app under test only through this file (and the app's own Dockerfile,
compose file and manifests, which it uses unchanged). Every problem is reported as one
`ConfigError` naming the key (`stages.compose.file: path does not exist: ...`).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from harness.errors import ConfigError

CONFIG_ENV = "STAGEPROOF_CONFIG"
DEFAULT_CONFIG = "stageproof.toml"
STAGE_NAMES = ("local-sqlite", "local-mysql", "local-postgres", "docker", "compose", "k8s")
TRUE = frozenset({"1", "true", "yes"})
#: what an `[app.env]` template may name; `db.*` values depend on the stage's database
PLACEHOLDERS = frozenset({"db.host", "db.port", "db.user", "db.password", "db.name", "db.url",
                          "port", "host", "token", "release"})
#: placeholders only a run knows (the compose and k8s stages inject just these: the team's own
#: files wire the database)
RUN_PLACEHOLDERS = frozenset({"token", "release"})
TEMPLATE = re.compile(r"\$\{([\w.]+)\}")
SUBSTITUTE_KINDS = ("python", "mysql", "postgres", "node", "golang", "alpine", "debian", "distroless")
SubstituteKind = Literal["python", "mysql", "postgres", "node", "golang", "alpine", "debian", "distroless"]
Seconds = Annotated[float, Field(gt=0)]
Port = Annotated[int, Field(ge=1, le=65535)]
UrlPath = Annotated[str, Field(pattern=r"^/")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _existing(value: str, info: ValidationInfo) -> Path:
    """Resolve `value` against the config file's folder and insist that it exists."""
    root: Path = (info.context or {}).get("root", Path.cwd())
    path = (root / value).resolve()
    if not path.exists():
        raise ValueError(f"path does not exist: {path}")
    return path


def _existing_list(values: list[str], info: ValidationInfo) -> list[Path]:
    return [_existing(value, info) for value in values]


def placeholders(template: str) -> set[str]:
    """The `${name}`s a template uses."""
    return set(TEMPLATE.findall(template))


class LocalCommands(_Section):
    """How the app runs as a process on this machine (the local stages), in which environment:
    `venv` (made from `requirements` with uv, or venv + pip, cached by the file's hash: `{python}`
    is its interpreter), `npm` (`npm ci` of the workdir's package-lock.json, cached by its hash, in a
    copy of the workdir), `go` (`go build` of the workdir's main package, cached by go.mod, go.sum
    and its .go files: `{binary}` is the program), or `none` (this interpreter: the app's libraries
    are installed beside stageproof's)."""

    workdir: Path = Field(Path(), validate_default=True)
    serve: list[str] = Field(min_length=1)
    environment: Literal["none", "venv", "npm", "go"] = "none"
    requirements: Path | None = None

    _paths = field_validator("workdir", "requirements", mode="before")(_existing)

    @model_validator(mode="after")
    def _environment_inputs(self) -> LocalCommands:
        if self.environment == "venv" and self.requirements is None:
            raise ValueError("requirements: environment = \"venv\" needs the requirements file to make it from")
        if self.environment == "npm" and not (self.workdir / "package-lock.json").is_file():
            raise ValueError(f"environment: \"npm\" needs {self.workdir / 'package-lock.json'} (npm ci installs "
                             "exactly what it locks)")
        if self.environment == "go" and not (self.workdir / "go.mod").is_file():
            raise ValueError(f"environment: \"go\" needs {self.workdir / 'go.mod'} (go build of the module's "
                             "main package)")
        return self


class AppSettings(_Section):
    name: str
    port: Port = 8000
    health_path: UrlPath | None = None
    ready_path: UrlPath | None = None
    version_path: UrlPath | None = None
    #: the app's OpenAPI document (property-based API checks and the cross-stage diff use it)
    openapi_path: UrlPath | None = None
    release_field: str = "release"
    token: str | None = None
    log_format: Literal["json", "text"] = "text"
    env: dict[str, str] = Field(default_factory=dict)
    local: LocalCommands | None = None

    @field_validator("env")
    @classmethod
    def _known_placeholders(cls, env: dict[str, str]) -> dict[str, str]:
        for name, template in env.items():
            unknown = sorted(placeholders(template) - PLACEHOLDERS)
            if unknown:
                raise ValueError(f"{name}: unknown placeholder ${{{unknown[0]}}} "
                                 f"(known: {', '.join(sorted(PLACEHOLDERS))})")
        return env

    @property
    def port_from_env(self) -> bool:
        """True when the app reads its port from the environment (else it listens on `port`)."""
        return any("port" in placeholders(template) for template in self.env.values())

    @property
    def ready_probe_path(self) -> str | None:
        """What says "up": readiness, else liveness (else the load request, see CheckSettings)."""
        return self.ready_path or self.health_path


class SeedSettings(_Section):
    """How the database gets its schema and first data. The compose and k8s stages use the
    team's own files for this (an init container, a Job, SQL in the image's init directory)."""

    command: list[str] | None = Field(None, min_length=1)
    sql: list[Path] = Field(default_factory=list)

    _paths = field_validator("sql", mode="before")(_existing_list)


ENGINES = ("mysql", "postgres")
#: how an image name tells its engine (the rule `[database] engine` defaults by)
ENGINE_OF_IMAGE = {"postgres": "postgres", "postgis": "postgres", "mysql": "mysql", "mariadb": "mysql",
                   "percona": "mysql"}


def image_engine(image: str) -> str | None:
    """The engine an image ref names by its repository's last path part (`postgres:16-alpine`,
    `bitnami/postgresql` -> postgres; `mysql:8.4`, `mariadb` -> mysql), else None."""
    repository = image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0].lower()
    return next((engine for prefix, engine in ENGINE_OF_IMAGE.items() if repository.startswith(prefix)), None)


class DatabaseSettings(_Section):
    """The database the local and docker stages start (the team's compose file and manifests
    configure their own). `engine` defaults to what `image` names (postgres*, mysql/mariadb*)."""

    engine: Literal["mysql", "postgres"] | None = None
    image: str = "mysql:8.4"
    name: str = "app"
    user: str = "app"
    password: str
    #: MySQL's root account (its image requires one); PostgreSQL's superuser is `user`
    root_password: str | None = None
    #: pin the throwaway server's port (an app that always connects to 3306 or 5432); default: a free one
    port: Port | None = None

    @model_validator(mode="after")
    def _engine_matches_image(self) -> DatabaseSettings:
        named = image_engine(self.image)
        if self.engine is not None and named is not None and named != self.engine:
            raise ValueError(f"engine: {self.engine!r}, but image {self.image!r} is a {named} image: "
                             f"set engine = {named!r} or name a {self.engine} image")
        if self.engine_name == "mysql" and not self.root_password:
            raise ValueError("root_password: required for a MySQL database (its image needs a root account)")
        return self

    @property
    def engine_name(self) -> str:
        return self.engine or image_engine(self.image) or "mysql"


class ContractSettings(_Section):
    cases: Path

    _paths = field_validator("cases", mode="before")(_existing)


class LoadRequest(_Section):
    """The request the chaos load sends, and what counts as success: its status and, optionally, its
    body (`contains` a text, or a JSON field `json_field` (dotted: `items.0.name`) that exists or
    `equals` a value): a right status with a wrong body is a failure, counted by reason."""

    method: Literal["GET", "HEAD"] = "GET"
    path: UrlPath = "/"
    status: int = Field(200, ge=100, le=599)
    contains: str | None = Field(None, min_length=1)
    json_field: str | None = Field(None, min_length=1)
    equals: str | int | float | bool | None = None

    @model_validator(mode="after")
    def _one_body_check(self) -> LoadRequest:
        if self.contains is not None and self.json_field is not None:
            raise ValueError("contains, json_field: one body check at a time")
        if self.equals is not None and self.json_field is None:
            raise ValueError("equals: needs json_field (the field that must equal it)")
        if self.method == "HEAD" and (self.contains or self.json_field):
            raise ValueError("contains, json_field: a HEAD request has no body to check")
        return self


class CodeChange(_Section):
    """A real code change for the "developer changes code" check: a unified diff against the
    app's build context (applied to a copy of it, never to the team's files), and what shows
    that the new build is served: `path` answers with `contains` in its body on every pod."""

    patch: Path
    path: UrlPath
    contains: str = Field(min_length=1)

    _paths = field_validator("patch", mode="before")(_existing)


class CheckSettings(_Section):
    load: LoadRequest = LoadRequest()
    #: the "developer changes code" check (not applicable without it)
    code_change: CodeChange | None = None
    #: how long the pods of a stopped node may take to be rescheduled and Ready elsewhere
    node_loss_seconds: float = Field(180.0, gt=0, le=270)  # the load runs 30 s longer, at most 300
    #: a contract case with steps (write, save, read back): what proves data survived a disruption
    persistence: str | None = None
    #: the chaos load's open-loop rate (requests/s) and its hard stop (seconds). Open loop means more
    #: than the app serves piles up until probes time out and the kubelet restarts healthy pods, so
    #: the default is what ONE replica of a small app serves on a 2-core machine with room to spare,
    #: while a replacement pod starts beside it (the reference app's two pods on kind: 50/s p99 37 ms,
    #: 200/s 104 of 3000 timed out; at 50/s a node loss still saw a few answers past 5 s)
    rate: float = Field(25.0, gt=0, le=2000)
    max_seconds: float = Field(90.0, gt=0, le=300)
    #: how long the app may take to serve again after its database pod is killed
    database_recovery_seconds: Seconds = 60.0
    #: the chaos load's per-request and connect timeouts (a request counts as failed after them; the
    #: failure windows allow one request timeout to drain), and how many requests may be in flight
    #: (unset: rate x request_timeout x 1.25, at least 2000, what a backend that hangs every request holds).
    #: 5 s: on a 2-core machine a pod starting beside the survivors slowed single answers past 3 s
    #: (drain: 1 of 1107 timed out at 3 s, p99 2.2 s), a wait a user sits through, not a lost request
    request_timeout: float = Field(5.0, gt=0, le=30)
    connect_timeout: float = Field(1.0, gt=0, le=30)
    max_in_flight: int | None = Field(None, ge=10, le=20000)
    #: node failure: the share of the requests due while the node was lost that must be served
    node_loss_min_served_share: float = Field(0.25, ge=0, le=1)
    #: a crashed (SIGKILLed) app or database: how long until it serves again
    crash_recovery_seconds: Seconds = 60.0
    #: property-based API checks (schemathesis): examples per operation, and the fixed seed
    api_examples: int = Field(20, ge=1, le=1000)
    api_seed: int = 1
    #: the cross-stage diff: JSON fields (by name, at any depth) and headers allowed to differ
    diff_ignore_fields: list[str] = Field(default_factory=lambda: ["id", "release", "created_at"])
    diff_headers: list[str] = Field(default_factory=lambda: ["Content-Type", "Allow", "Location"])


class AppImage(_Section):
    tag: str
    #: the name the team's compose file and manifests give the app image (default: `tag`)
    name: str | None = None
    dockerfile: Path
    context: Path = Field(Path(), validate_default=True)
    #: the requirements file that `pip install -r` reads in the Dockerfile (air-gapped wheelhouse)
    requirements: Path | None = None

    _paths = field_validator("dockerfile", "context", "requirements", mode="before")(_existing)

    @property
    def ref_name(self) -> str:
        return self.name or self.tag


RegistryHost = Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[a-z0-9._/-]+)?$")]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class ImageSettings(_Section):
    airgap: Literal["auto", "always", "never"] = "auto"
    app: AppImage
    #: upstream image -> the local recipe that stands in for it when no registry answers
    substitute: dict[str, SubstituteKind] = Field(default_factory=dict)
    #: registry mode: `host[:port][/prefix]`, where stageproof pushes its images and the k8s stage
    #: pulls them from (`<registry>/<images.app.tag>:<release>`, `<registry>/kindest/node:<version>`;
    #: on `registry_endpoint`'s host when that is set)
    registry: RegistryHost | None = None
    #: where the kind nodes stageproof creates reach that registry, when not at its own address
    #: (e.g. `http://<kind network gateway>:<port>`: a node's 127.0.0.1 is not this machine's)
    registry_endpoint: Annotated[str, Field(pattern=r"^https?://[^/\s]+$")] | None = None
    #: upstream registries (e.g. "docker.io") the kind nodes pull through `registry` instead
    mirror_for: list[RegistryHost] = Field(default_factory=list)
    #: the NAMES of the environment variables that hold the registry's credentials (never the values)
    username_env: EnvName | None = None
    password_env: EnvName | None = None

    @model_validator(mode="after")
    def _registry_keys(self) -> ImageSettings:
        if self.registry is None:
            needs = [key for key in ("registry_endpoint", "username_env", "password_env") if getattr(self, key)]
            if needs or self.mirror_for:
                raise ValueError(f"{(needs or ['mirror_for'])[0]}: needs images.registry")
        if (self.username_env is None) != (self.password_env is None):
            raise ValueError("username_env, password_env: give both or neither")
        return self

    @property
    def pull_prefix(self) -> str | None:
        """What the cluster pulls stageproof's images as: `registry`, on the endpoint's host when
        the nodes reach it elsewhere (image host = the host they contact: credentials match)."""
        if self.registry is None or self.registry_endpoint is None:
            return self.registry
        path = self.registry.partition("/")[2]
        endpoint_host = self.registry_endpoint.split("://", 1)[1]
        return f"{endpoint_host}/{path}" if path else endpoint_host

    def credentials(self, env: Mapping[str, str]) -> tuple[str, str] | None:
        """(username, password) read from the variables the config names; a missing one is an error."""
        if self.username_env is None or self.password_env is None:
            return None
        missing = [name for name in (self.username_env, self.password_env) if not env.get(name)]
        if missing:
            key = "username_env" if missing[0] == self.username_env else "password_env"
            raise ConfigError(f"images.{key}: ${missing[0]} is not set (it holds the registry's credentials)")
        return env[self.username_env], env[self.password_env]


class LocalSettings(_Section):
    up_timeout: Seconds = 60
    #: an existing server for local-mysql / local-postgres ($STAGEPROOF_LOCAL_MYSQL_URL, _POSTGRES_URL),
    #: whose account makes (and drops) a run-unique database; else a throwaway server
    mysql_url: str | None = None
    postgres_url: str | None = None

    def server_url(self, engine: str) -> str | None:
        return self.mysql_url if engine == "mysql" else self.postgres_url


class DockerSettings(_Section):
    up_timeout: Seconds = 120
    #: run the app (and its seed) on a read-only root filesystem with a /tmp tmpfs
    read_only: bool = False


#: a compose duration: `2s`, `1m30s`, `500ms`
Duration = Annotated[str, Field(pattern=r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$")]


class Healthcheck(_Section):
    """The web service's healthcheck, in compose's own terms, replacing the one their file declares
    (e.g. a `curl` the image lacks, or a route the app does not have)."""

    test: list[str] = Field(min_length=2)
    interval: Duration | None = None
    timeout: Duration | None = None
    retries: int | None = Field(None, ge=1)
    start_period: Duration | None = None
    start_interval: Duration | None = None

    @field_validator("test")
    @classmethod
    def _compose_form(cls, test: list[str]) -> list[str]:
        if test[0] not in ("CMD", "CMD-SHELL"):
            raise ValueError(f"starts with {test[0]!r}: write [\"CMD\", program, args...] or [\"CMD-SHELL\", "
                             "\"a shell command\"] (to disable it: healthcheck = false)")
        return test


class ComposeSettings(_Section):
    #: their compose file, or several, read in order (`docker compose -f a.yml -f b.yml`)
    file: list[Path] = Field(min_length=1)
    service: str = "web"
    database: str = "db"
    up_timeout: Seconds = 180
    #: replace the web service's healthcheck (a table in compose's terms), or `false` to disable it
    healthcheck: Healthcheck | Literal[False] | None = None

    @field_validator("file", mode="before")
    @classmethod
    def _files(cls, value: Any, info: ValidationInfo) -> list[Path]:
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not all(isinstance(item, str) for item in values):
            raise ValueError("a compose file's path, or a list of them (read in that order)")
        return [_existing(item, info) for item in values]

    @field_validator("healthcheck", mode="wrap")
    @classmethod
    def _replace_or_disable(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """A table (its own errors name its keys) or false; anything else is one error, not two."""
        if isinstance(value, Mapping):
            return Healthcheck.model_validate(value, context=None)
        if value is False or value is None:
            return handler(value)
        raise ValueError(f"{value!r}: give a table to replace their healthcheck (test = [\"CMD\", ...], interval = "
                         "\"2s\", ...), or false to disable it")

    @property
    def project_directory(self) -> Path:
        """Where relative paths of their files resolve: the first file's folder, as compose does."""
        return self.file[0].parent


class K8sSettings(_Section):
    #: the team's manifests: a kustomization folder or a plain folder of YAML files (or `chart`)
    manifests: Path | None = None
    #: the team's Helm chart (a folder), deployed with Helm itself; `values`: its values files, in
    #: order (the team's own, or ones the team keeps for kind); `release`: the Helm release name
    #: (default: app.name), as the chart derives names (a database host) from it
    chart: Path | None = None
    values: list[Path] = Field(default_factory=list)
    release: str | None = Field(None, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=53)
    #: a kind cluster config of the team's own (stageproof adds its port mapping), else a default
    kind_config: Path | None = None
    #: nodes of the kind cluster stageproof makes: one control plane, the rest workers
    nodes: int = Field(3, ge=1, le=5)
    cluster: str = "stageproof"
    namespace: str = "stageproof"
    deployment: str = "web"
    #: the Service that stageproof exposes on 127.0.0.1 (default: named like the deployment)
    service: str | None = None
    #: the database's Deployment or StatefulSet
    database: str = "db"
    #: a Job that seeds the database, waited for (None: the seed is an init container or SQL)
    seed_job: str | None = None
    node_port: int = Field(30080, ge=30000, le=32767)
    #: the NodePort of the ingress controller stageproof installs on its kind cluster (on 127.0.0.1)
    ingress_node_port: int = Field(30081, ge=30000, le=32767)
    up_timeout: Seconds = 600
    # An existing cluster instead of kind (a team's own): its kubeconfig context, the kubeconfig
    # file (default: kubectl's), and where the app's Service answers from this machine.
    context: str | None = None
    kubeconfig: str | None = None
    base_url: str | None = None
    # How long one disruption check (pod kill, scale, rollout) may wait for the stage to recover.
    check_timeout: Seconds = 180
    #: how long a run waits for another live run that owns the same cluster (or context + namespace)
    lock_timeout: Seconds = 1800
    # Deploy this app image ref instead of the one `images` builds (e.g. a team's registry);
    # $STAGEPROOF_K8S_APP_IMAGE overrides it.
    app_image: str | None = None
    #: drain and stop nodes in the node checks: by default only on a kind cluster stageproof made
    node_chaos: bool | None = None
    #: tolerationSeconds the run gives the web pods for an unreachable or not-ready node (the
    #: default 300 s keeps a lost node's pods bound to it for five minutes)
    eviction_seconds: int = Field(10, ge=0, le=300)
    #: on the kind cluster stageproof makes: how long the control plane waits on a node that stopped
    #: reporting before it calls the node lost (Kubernetes' default is 50 s); the kubelets renew their
    #: lease four times within it. 0 leaves Kubernetes' defaults
    node_lost_seconds: int = Field(20, ge=0, le=300)
    #: the broken release's progressDeadlineSeconds: how soon the harness learns the rollout stalled
    progress_deadline_seconds: int = Field(30, ge=5, le=600)
    #: keep stageproof's kind cluster after a run (only the run's namespace goes) and reuse it next time,
    #: when it was made from the same node image and kind config: the default on a laptop; in CI
    #: (`CI=true`) only when set (the CI's sessions share one cluster; `stageproof down` removes it)
    reuse: bool | None = None
    #: the web container's environment from stageproof: "run" sets only what a run alone knows
    #: (`${release}`, `${token}`); "app" sets every `[app.env]` variable, `${db.host}` being the
    #: database's Service in the run's namespace (for manifests that hard-code another cluster's address)
    env: Literal["run", "app"] = "run"

    _paths = field_validator("manifests", "kind_config", "chart", mode="before")(_existing)
    _value_paths = field_validator("values", mode="before")(_existing_list)

    @model_validator(mode="after")
    def _one_source(self) -> K8sSettings:
        if (self.manifests is None) == (self.chart is None):
            raise ValueError("manifests, chart: name exactly one: a folder of manifests (or a kustomization), "
                             "or a Helm chart")
        if self.values and self.chart is None:
            raise ValueError("values: Helm values files need stages.k8s.chart")
        if self.chart is not None and not (self.chart / "Chart.yaml").is_file():
            raise ValueError(f"chart: {self.chart} has no Chart.yaml")
        return self

    @model_validator(mode="after")
    def _distinct_node_ports(self) -> K8sSettings:
        if self.ingress_node_port == self.node_port:
            raise ValueError(f"ingress_node_port: {self.ingress_node_port} is already node_port (the app's "
                             "Service): choose another")
        return self

    @model_validator(mode="after")
    def _node_lost_leaves_time_to_answer(self) -> K8sSettings:
        if 0 < self.node_lost_seconds < 8:
            raise ValueError(f"node_lost_seconds: {self.node_lost_seconds} s would call a busy node lost between "
                             "two lease renewals (a quarter of it): 8 or more, or 0 for Kubernetes' defaults")
        return self

    @property
    def web_service(self) -> str:
        return self.service or self.deployment


class StageSettings(_Section):
    #: stages that do not apply to this app, with the reason (reported, never run)
    not_applicable: dict[str, str] = Field(default_factory=dict)
    local: LocalSettings = LocalSettings()
    docker: DockerSettings = DockerSettings()
    compose: ComposeSettings | None = None
    k8s: K8sSettings | None = None

    @field_validator("not_applicable")
    @classmethod
    def _known_stages(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(STAGE_NAMES))
        if unknown:
            raise ValueError(f"unknown stage {unknown[0]!r} (stages: {', '.join(STAGE_NAMES)})")
        return value


class Settings(_Section):
    root: Path
    #: the registry credentials, read from the variables `images.*_env` name (never from the file)
    registry_credentials: tuple[str, str] | None = Field(None, repr=False)
    app: AppSettings
    database: DatabaseSettings
    contract: ContractSettings
    seed: SeedSettings = SeedSettings()
    checks: CheckSettings = CheckSettings()
    images: ImageSettings | None = None
    stages: StageSettings = StageSettings()

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.seed.command and self.app.local is None:
            raise ValueError("seed.command: needs [app.local] (its workdir) to run locally")
        return self

    def not_applicable(self, stage: str) -> str | None:
        """Why `stage` does not apply to this app (declared in the config), else None."""
        return self.stages.not_applicable.get(stage)


@dataclass(frozen=True)
class Environment:
    """What the process environment says about the run (not the app): read here and nowhere else."""

    #: `CI=true`: a stage that cannot run fails instead of being skipped
    ci: bool
    #: `STAGEPROOF_RELEASE`: the release id to deploy (default: from git, see harness.core.release)
    release: str | None
    #: `STAGEPROOF_CACHE`: where build artifacts are cached
    cache: Path
    #: `DOCKER_BUILDKIT` as the caller set it (the kind node's component builds default it to 0)
    buildkit: str | None
    #: `STAGEPROOF_LEAK_AUDIT`: set inside a run the leak audit cut short (its own audits skip)
    audited: bool
    #: `PATH`, for environments put in front of it (the app's own venv)
    path: str = "/usr/bin:/bin"


def environment(env: Mapping[str, str] | None = None) -> Environment:
    """The run's environment, read now (never at import time)."""
    env = os.environ if env is None else env
    return Environment(ci=env.get("CI", "").lower() in TRUE, release=env.get("STAGEPROOF_RELEASE") or None,
                       cache=Path(env.get("STAGEPROOF_CACHE") or Path.home() / ".cache" / "stageproof"),
                       buildkit=env.get("DOCKER_BUILDKIT"), audited=bool(env.get("STAGEPROOF_LEAK_AUDIT")),
                       path=env.get("PATH") or "/usr/bin:/bin")


def child_env(extra: Mapping[str, str] | None) -> dict[str, str] | None:
    """The environment of a child process: this one's with `extra` on top (None: inherit it as is)."""
    return None if extra is None else {**os.environ, **extra}


def config_path(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The config file named by `path`, else `$STAGEPROOF_CONFIG`, else `./stageproof.toml`."""
    env = os.environ if env is None else env
    return Path(path or env.get(CONFIG_ENV) or DEFAULT_CONFIG).resolve()


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the config file (see `config_path`); env overrides apply."""
    env = os.environ if env is None else env
    source = config_path(path, env)
    try:
        raw = tomllib.loads(source.read_text())
    except FileNotFoundError as err:
        raise ConfigError(f"config file not found: {source} (set {CONFIG_ENV} or pass --config)") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source}: not valid TOML: {err}") from err
    settings = parse_settings(_apply_env(raw, env), root=source.parent, source=str(source))
    return with_credentials(settings, env)


def with_credentials(settings: Settings, env: Mapping[str, str]) -> Settings:
    """`settings` holding the registry credentials read from the variables `images.*_env` name."""
    if settings.images is None or (found := settings.images.credentials(env)) is None:
        return settings
    return settings.model_copy(update={"registry_credentials": found})


def parse_settings(raw: Mapping[str, Any], *, root: Path, source: str = "config") -> Settings:
    """Validate a parsed config mapping; relative paths are resolved against `root`."""
    for reserved in ("root", "registry_credentials"):
        if reserved in raw:
            raise ConfigError(f"{source}: {reserved}: unknown key")
    try:
        return Settings.model_validate({**raw, "root": root}, context={"root": root})
    except ValidationError as err:
        raise ConfigError(f"{source}: {describe(err)}") from None


def describe(err: ValidationError, *, names: Mapping[int, str] | None = None) -> str:
    """Each problem as `dotted.key: message`, the first on the same line as the file name.

    `names` turns list indexes at the top (`case.3`) into the case's own name."""
    lines = []
    for problem in err.errors():
        loc = list(problem["loc"])
        if names and len(loc) > 1 and isinstance(loc[1], int) and loc[1] in names:
            loc[1] = f"{names[loc[1]]!r}"
        key = ".".join(str(part) for part in loc) or "(top level)"
        message = "unknown key" if problem["type"] == "extra_forbidden" else problem["msg"]
        lines.append(f"{key}: {message.removeprefix('Value error, ')}")
    return "\n  ".join(lines)


#: $STAGEPROOF_K8S_<NAME> -> stages.k8s.<name>: an existing cluster, named from outside the file;
#: a test's own cluster name or node count
K8S_ENV_KEYS = ("context", "kubeconfig", "base_url", "app_image", "cluster", "nodes", "reuse")
#: images.<key> <- $<variable>: a registry whose address a run only learns when it starts
REGISTRY_ENV = {"registry": "STAGEPROOF_REGISTRY", "registry_endpoint": "STAGEPROOF_REGISTRY_ENDPOINT"}


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """Environment overrides the file: STAGEPROOF_AIRGAP=1/0/auto, STAGEPROOF_LOCAL_MYSQL_URL,
    STAGEPROOF_K8S_CONTEXT / _KUBECONFIG / _BASE_URL / _APP_IMAGE / _CLUSTER / _NODES,
    STAGEPROOF_REGISTRY / _ENDPOINT."""
    raw = dict(raw)
    k8s = {key: value for key in K8S_ENV_KEYS if (value := env.get(f"STAGEPROOF_K8S_{key.upper()}"))}
    if k8s and isinstance(raw.get("stages", {}).get("k8s"), dict):
        stages = dict(raw["stages"])
        stages["k8s"] = {**stages["k8s"], **k8s}
        raw["stages"] = stages
    airgap = env.get("STAGEPROOF_AIRGAP")
    if airgap is not None and "images" in raw:
        value = {"1": "always", "true": "always", "0": "never", "false": "never"}.get(airgap.lower(), airgap)
        raw["images"] = {**raw["images"], "airgap": value}
    registry = {key: value for key, name in REGISTRY_ENV.items() if (value := env.get(name))}
    if registry and "images" in raw:
        raw["images"] = {**raw["images"], **registry}
    for key in ("mysql_url", "postgres_url"):
        url = env.get(f"STAGEPROOF_LOCAL_{key.upper()}")
        if url:
            stages = dict(raw.get("stages", {}))
            stages["local"] = {**stages.get("local", {}), key: url}
            raw["stages"] = stages
    return raw
