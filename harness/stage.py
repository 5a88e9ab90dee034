"""What a stage is, whole: bring the app up somewhere, hand back a `Deployment`, say what else it can
do, tear it all down.

`Stage` has eight members, like kind's `Provider`. What a stage can do beyond serving the contract
is in `capabilities()`: typed controls, each a `Protocol`, or None with the reason in `withheld`.
A check declares the controls it needs by type (`@requires(Workload)`), so a typo is an import
error, and the plugin reports a check whose control is absent as "not applicable" with that reason.
Drivers register by name with `@register`; nothing else mutates the registry.
"""

from __future__ import annotations

import importlib
import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from harness.config import STAGE_NAMES, Settings
from harness.deployment import Deployment as Deployment  # re-exported: the interface hands it out
from harness.errors import ConfigError
from harness.k8s.views import Answer, Replica

DRIVER_MODULES = ("local", "docker", "compose", "k8s")


# -- the controls a stage may offer ------------------------------------------------------------
@runtime_checkable
class AppControl(Protocol):
    """Restart the app, and tell who serves it (equal before and after only if never restarted)."""

    def restart(self) -> None: ...
    def identity(self) -> str: ...


@runtime_checkable
class AppContainer(Protocol):
    """Look inside what runs the app: its processes' users, its log stream."""

    def process_users(self) -> list[str]: ...  # "uid pid command" per process
    def log_text(self) -> str: ...


@runtime_checkable
class DatabaseControl(Protocol):
    """An outage of the app's database and its end (same data); `crash` is a SIGKILL mid-work."""

    def stop(self) -> None: ...
    def start(self) -> None: ...
    def crash(self) -> None: ...


@runtime_checkable
class AppCrash(Protocol):
    """SIGKILL of the app's process, as a crash (not a polite stop); `recover` waits until it serves."""

    def crash(self) -> str: ...
    def recover(self) -> None: ...


@runtime_checkable
class Workload(Protocol):
    """The app's pods on a cluster: what the k8s chaos and workflow checks read and move."""

    @property
    def release(self) -> str: ...  # the release served now
    @property
    def releases(self) -> list[str]: ...  # every release rolled out, oldest first
    @property
    def image(self) -> str | None: ...  # the app image the nodes run

    def replicas(self, *, ready_only: bool = True) -> list[Replica]: ...
    def database_replicas(self, *, ready_only: bool = True) -> list[Replica]: ...
    def get(self, replica: str, path: str) -> Answer: ...
    def kill(self) -> str: ...
    def scale(self, replicas: int) -> None: ...
    def restart(self) -> None: ...
    def settled(self) -> None: ...
    def roll_out(self, release: str) -> None: ...
    def roll_back(self) -> None: ...
    def template(self) -> dict[str, Any]: ...
    def set_resources(self, resources: dict[str, Any]) -> None: ...
    def wait_stalled(self) -> Any: ...
    def wait_ready_off(self, node: str, count: int, *, timeout: float) -> None: ...
    def kill_database(self) -> str: ...
    def wait_database_back(self, old_uid: str) -> None: ...
    def rerun_seed(self) -> tuple[str, str]: ...
    def delete_job(self, name: str) -> None: ...
    def identity(self) -> str: ...
    def revision(self) -> str: ...  # what the cluster calls the release now ("helm revision 3")
    def diagnostics(self) -> str: ...


@runtime_checkable
class ChartTests(Protocol):
    """The chart's own `helm test` hooks: run them, (passed, what they said)."""

    def run_tests(self) -> tuple[bool, str]: ...


@runtime_checkable
class NewBuilds(Protocol):
    """Another build of the app (a new image tag) gets to the nodes and is rolled out."""

    def deliver(self, image: str) -> str: ...
    def roll_out_image(self, image: str, release: str, *, broken_deadline: int | None = None) -> None: ...


@runtime_checkable
class NodeChaos(Protocol):
    """Worker nodes taken away: drained (politely), stopped, or their power cut; and given back."""

    def control_planes(self) -> list[str]: ...
    def drain(self, node: str) -> str: ...
    def uncordon(self, node: str) -> None: ...
    def stop(self, node: str) -> None: ...
    def power_cut(self, node: str) -> None: ...
    def start(self, node: str) -> None: ...


@dataclass(frozen=True)
class Ingress:
    """Where the app answers through the cluster's ingress controller, on 127.0.0.1."""

    url: str


@dataclass(frozen=True)
class Capabilities:
    """Each optional control, or None; `withheld` says why one is absent (control name -> reason)."""

    app: AppControl | None = None
    container: AppContainer | None = None
    crash: AppCrash | None = None
    database: DatabaseControl | None = None
    workload: Workload | None = None
    builds: NewBuilds | None = None
    chart: ChartTests | None = None
    nodes: NodeChaos | None = None
    ingress: Ingress | None = None
    withheld: Mapping[str, str] = field(default_factory=dict)

    def missing(self, needed: tuple[type, ...], stage: str) -> str | None:
        """Why a check needing `needed` cannot run here (None: every control is there)."""
        reasons = []
        for kind in needed:
            name = CONTROLS[kind]
            if getattr(self, name) is None:
                reasons.append(self.withheld.get(name) or f"{stage} has no {name} control ({kind.__name__})")
        return "; ".join(dict.fromkeys(reasons)) or None


#: each control's type -> its field in `Capabilities`
CONTROLS: dict[type, str] = {AppControl: "app", AppContainer: "container", AppCrash: "crash",
                             DatabaseControl: "database", Workload: "workload", NewBuilds: "builds",
                             ChartTests: "chart", NodeChaos: "nodes", Ingress: "ingress"}
assert set(CONTROLS.values()) == {f.name for f in fields(Capabilities)} - {"withheld"}


class Stage(ABC):
    """One environment of the migration. A driver owns what it created and removes it in `down()`."""

    name: ClassVar[str] = ""

    def __init__(self, settings: Settings, *, run_id: str, release: str) -> None:
        self.settings, self.run_id, self.release = settings, run_id, release

    @abstractmethod
    def up(self) -> Deployment:
        """Bring the app up and wait until it is ready."""

    @abstractmethod
    def down(self) -> None:
        """Remove everything this stage created; always safe to call, also twice."""

    @abstractmethod
    def logs(self) -> str:
        """The app's (and its backing services') logs, for failure reports."""

    def keep(self) -> None:  # noqa: B027 - optional: most stages have nothing to keep
        """Called instead of `down()` when the run leaves the stage up (`--keep`, `up --detach`)."""

    @classmethod
    def availability(cls, settings: Settings) -> str | None:
        """None when this machine can run the stage, else what is missing (for `status`)."""
        return None

    @classmethod
    def reap(cls, settings: Settings, *, kept: bool = False) -> list[str]:
        """Remove what killed runs of this stage left (and with `kept`, what runs left up on
        purpose: `stageproof down`); returns what went. A live run's things are spared."""
        return []

    @abstractmethod
    def capabilities(self) -> Capabilities:
        """What this stage can do beyond serving, once it is up (absent controls with the reason)."""


def new_run_id() -> str:
    """Short and unique per run: it names and labels everything the run creates."""
    return secrets.token_hex(4)


_REGISTRY: dict[str, type[Stage]] = {}
S = TypeVar("S", bound=type[Stage])


def register(name: str) -> Callable[[S], S]:
    """Class decorator: make a driver available by stage name (config.STAGE_NAMES lists the config's)."""

    def decorate(cls: S) -> S:
        if _REGISTRY.get(name, cls) is not cls:
            raise ValueError(f"stage {name!r} registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def stage_names() -> list[str]:
    """Every registered stage, in the migration's order."""
    _import_drivers()
    return sorted(_REGISTRY, key=lambda name: (STAGE_NAMES.index(name) if name in STAGE_NAMES else len(STAGE_NAMES),
                                               name))


def get_stage(name: str) -> type[Stage]:
    """The driver of stage `name`, importing only its own module when the name says which (the
    kubernetes client alone takes half a second to import: `stageproof up --stage docker` skips it)."""
    module = name.split("-", 1)[0]
    if name not in _REGISTRY and module in DRIVER_MODULES:
        importlib.import_module(f"harness.stages.{module}")
    if name not in _REGISTRY:
        _import_drivers()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown stage {name!r}; known stages: {', '.join(stage_names())}") from None


def _import_drivers() -> None:
    """Drivers register on import; heavy libraries are imported inside them lazily."""
    for module in DRIVER_MODULES:
        importlib.import_module(f"harness.stages.{module}")
