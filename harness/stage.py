"""What a stage is: bring the app up somewhere, hand back a `Deployment`, tear it all down.

Every environment of the migration (local process, container, compose, kind) implements
`Stage`. Optional capabilities (kill an instance, scale, ...) raise `CapabilityMissing` unless
a driver overrides them; checks that need one ask `supports()` first and say "not applicable".
Drivers register themselves by name with `@register`; nothing else mutates the registry.
"""

from __future__ import annotations

import importlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from harness.config import Settings
from harness.errors import CapabilityMissing, ConfigError

RUN_LABEL = "io.stageproof.run"
STAGE_LABEL = "io.stageproof.stage"
DRIVER_MODULES = ("local", "docker", "compose", "k8s")


@dataclass(frozen=True)
class Deployment:
    """What a stage hands the contract suite: where the app answers and which release it runs."""

    stage: str
    base_url: str
    release: str
    token: str | None = None


def new_run_id() -> str:
    """Short and unique per run: it names and labels everything the run creates."""
    return secrets.token_hex(4)


class Stage:
    """Base of every stage driver. Subclasses set `name` and implement up/down/logs."""

    name: ClassVar[str] = ""
    #: the folder under tests/ that holds this stage's checks (the contract runs everywhere)
    tests_folder: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, settings: Settings, *, run_id: str, release: str) -> None:
        self.settings = settings
        self.run_id = run_id
        self.release = release
        self.deployment: Deployment | None = None
        #: images that stood in for upstream ones (no registry): upstream ref -> what stood in
        self.substitutes: dict[str, str] = {}

    def up(self) -> Deployment:
        """Bring the app up and wait until it is ready; idempotent."""
        raise NotImplementedError

    def down(self) -> None:
        """Remove everything this stage created; always safe to call, also twice."""
        raise NotImplementedError

    def logs(self) -> str:
        """The app's (and its backing services') logs, for failure reports."""
        raise NotImplementedError

    @classmethod
    def availability(cls, settings: Settings) -> str | None:
        """None when this machine can run the stage, else what is missing (for `status`)."""
        return None

    def keep(self) -> None:
        """Called instead of `down()` when the run leaves the stage up (`--keep`, `up --detach`)."""

    @classmethod
    def reap(cls, settings: Settings, *, kept: bool = False) -> list[str]:
        """Remove what killed runs of this stage left behind (by run label), and with `kept` also
        what runs left up on purpose (`stageproof down`); returns what went. Live runs are spared."""
        return []

    @classmethod
    def withheld(cls, settings: Settings) -> dict[str, str]:
        """Capabilities the stage has but this config does not allow here: {capability: why}."""
        return {}

    def supports(self, capability: str) -> bool:
        return capability in self.capabilities

    def app_identity(self) -> str:
        """Who serves the app (pids, container ids + start times, pod uids + restarts): a check
        compares it before and after an outage to prove the app was not restarted."""
        raise CapabilityMissing(f"stage {self.name} cannot identify its app instances")

    def app_container(self) -> str:
        """The id of the container serving the app, for checks that look inside it."""
        raise CapabilityMissing(f"stage {self.name} runs no app container")

    def restart_app(self) -> None:
        raise CapabilityMissing(f"stage {self.name} cannot restart the app")

    def kill_instance(self) -> None:
        raise CapabilityMissing(f"stage {self.name} cannot kill an instance")

    def scale(self, replicas: int) -> None:
        raise CapabilityMissing(f"stage {self.name} cannot scale")

    def stop_database(self) -> None:
        raise CapabilityMissing(f"stage {self.name} cannot stop its database")

    def start_database(self) -> None:
        raise CapabilityMissing(f"stage {self.name} cannot start its database")

    def roll_out(self, release: str) -> None:
        raise CapabilityMissing(f"stage {self.name} cannot roll out a release")

    def roll_back(self) -> None:
        raise CapabilityMissing(f"stage {self.name} cannot roll back")

    def kill_database(self) -> object:
        """Kill the database's instance (its orchestrator brings it back on the same data)."""
        raise CapabilityMissing(f"stage {self.name} cannot kill its database instance")

    def rerun_seed(self) -> object:
        """Run the seed once more (it must be idempotent); returns what the stage knows of it."""
        raise CapabilityMissing(f"stage {self.name} cannot run its seed again")

    def ingress_url(self) -> str:
        """Where the app answers through an Ingress (the cluster's ingress controller), on 127.0.0.1."""
        raise CapabilityMissing(f"stage {self.name} has no ingress controller")

    def roll_out_image(self, image: str, release: str, *, broken_deadline: int | None = None) -> None:
        """Roll out another build of the app (a new image tag); `broken_deadline`: a broken one."""
        raise CapabilityMissing(f"stage {self.name} cannot roll out another image")

    def drain_node(self, node: str) -> str:
        """Cordon `node` and evict its pods (disruption budgets hold); undone by `uncordon_node`."""
        raise CapabilityMissing(f"stage {self.name} cannot drain a node")

    def stop_node(self, node: str) -> None:
        """Take `node` away as a power loss would; undone by `start_node`."""
        raise CapabilityMissing(f"stage {self.name} cannot stop a node")

    def __enter__(self) -> Deployment:
        try:
            return self.up()
        except BaseException:
            self.down()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.down()


_REGISTRY: dict[str, type[Stage]] = {}


def register(name: str) -> Callable[[type[Stage]], type[Stage]]:
    """Class decorator: make a driver available by stage name."""

    def decorate(cls: type[Stage]) -> type[Stage]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"stage {name!r} registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def stage_names() -> list[str]:
    _import_drivers()
    return sorted(_REGISTRY)


def get_stage(name: str) -> type[Stage]:
    _import_drivers()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown stage {name!r}; known stages: {', '.join(sorted(_REGISTRY))}") from None


def _import_drivers() -> None:
    """Drivers register on import; heavy libraries are imported inside them lazily."""
    for module in DRIVER_MODULES:
        try:
            importlib.import_module(f"harness.stages.{module}")
        except ModuleNotFoundError as err:
            if err.name != f"harness.stages.{module}":
                raise
