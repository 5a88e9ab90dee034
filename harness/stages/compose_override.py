"""The compose stage's override file: the team's compose file stays untouched, this file bends it.

Read with their file (`docker compose -f theirs.yaml -f override.yaml`), it makes one run safe to
start next to any other: no fixed container names, no host ports but the web service's on
127.0.0.1, the image stageproof built instead of a `build:` (also for a service that gets the app
image through `extends`), run labels on every container, network and volume (so a label sweep finds
what a killed run left), and the values only a run knows (release, token) in the web service's
environment. A run writes nothing into the team's tree: a read-write bind mount of a data folder
(see `data_mounts`) becomes a run-labelled named volume, gone at `down --volumes`. The web service's
healthcheck is replaced or disabled when the config says so (`[stages.compose] healthcheck`).
Pure functions over their model as `docker compose config` gives it (extends resolved, every
mount in long form with an absolute source): no Docker needed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from harness.config import Healthcheck, image_engine
from harness.core.goyaml import GoSafeDumper
from harness.errors import ConfigError

RESET = "!reset"
OVERRIDE = "!override"


@dataclass(frozen=True)
class Tagged:
    """A value compose must take from the override as is: `!reset` (drop theirs) or `!override`
    (replace theirs instead of merging)."""

    tag: str
    value: Any = None


@dataclass(frozen=True)
class WebService:
    """The service stageproof talks to, and what it needs there."""

    name: str
    host_port: int
    container_port: int
    environment: Mapping[str, str]
    #: replace their healthcheck (a `Healthcheck`), disable it (False), or keep it (None)
    healthcheck: Healthcheck | Literal[False] | None = None


@dataclass(frozen=True)
class DataMount:
    """A read-write bind mount a run would write through into the host's folders: `service`'s
    `target` becomes the run's named volume `volume` instead of `source`."""

    service: str
    source: Path
    target: str
    volume: str


@dataclass(frozen=True)
class RunVolumes:
    """Which bind mounts the run redirects, and why (for the run's notes)."""

    mounts: tuple[DataMount, ...] = ()
    reasons: Mapping[Path, str] = field(default_factory=dict)


def read_compose_file(path: Path) -> dict[str, Any]:
    """Their compose file as data, with a `services` mapping (else a ConfigError naming the key)."""
    try:
        spec = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"stages.compose.file: cannot read {path} as YAML: {err}") from err
    if not isinstance(spec, dict) or not isinstance(spec.get("services"), dict) or not spec["services"]:
        raise ConfigError(f"stages.compose.file: {path} declares no services")
    return spec


def require_services(spec: Mapping[str, Any], wanted: Mapping[str, str], source: Path) -> None:
    """Each of `wanted` ({config key: service name}) is a service of the file."""
    declared = sorted(spec["services"])
    for key, name in wanted.items():
        if name not in spec["services"]:
            raise ConfigError(f"{key}: no service {name!r} in {source} (its services: {', '.join(declared)})")


def image_name(ref: str) -> str:
    """An image reference without its tag or digest (`registry:5000/team/app:1.2` -> `registry:5000/team/app`)."""
    name = ref.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def data_mounts(spec: Mapping[str, Any], *, database: str, project_dir: Path,
                untracked: Callable[[Path], bool]) -> RunVolumes:
    """The read-write bind mounts of folders a run would write into: in a database-like service
    (`database`, or one whose image names an engine) a folder inside the project; in any service
    a folder that does not exist yet (compose would create it, owned by root) or that `untracked`
    says holds nothing the team tracks (an earlier run's data). Files and read-only mounts stay."""
    mounts: list[DataMount] = []
    reasons: dict[Path, str] = {}
    for name, service in spec["services"].items():
        database_like = name == database or image_engine(str((service or {}).get("image", ""))) is not None
        for volume in (service or {}).get("volumes") or []:
            if not isinstance(volume, Mapping) or volume.get("type") != "bind" or volume.get("read_only"):
                continue
            source = Path(str(volume["source"]))
            if source.exists() and not source.is_dir():
                continue
            if database_like and source.is_relative_to(project_dir):
                reasons[source] = f"the data folder of database service {name!r}, inside the project folder"
            elif not source.exists():
                reasons[source] = "a folder that does not exist yet (compose would create it)"
            elif untracked(source):
                reasons[source] = "a folder that holds nothing your git repository tracks"
            else:
                continue
            mounts.append(DataMount(name, source, str(volume["target"]), _volume_name(name, source, len(mounts))))
    return RunVolumes(tuple(mounts), reasons)


def _volume_name(service: str, source: Path, index: int) -> str:
    return "stageproof-" + re.sub(r"[^a-zA-Z0-9_.-]+", "-", f"{service}-{source.name}-{index}")


def is_app_service(service: Mapping[str, Any], app_name: str | None) -> bool:
    """A service that runs the app: it has a `build:`, or its image (after `extends`) is `app_name`'s."""
    return "build" in service or bool(app_name and image_name(str(service.get("image", ""))) == image_name(app_name))


def compose_override(spec: Mapping[str, Any], *, web: WebService, app_image: str, app_name: str | None,
                     labels: Mapping[str, str], data: RunVolumes | None = None) -> dict[str, Any]:
    """The override for their file `spec`: see the module docstring for what each part is for.

    The app's services (`is_app_service`) run `app_image`, which stageproof built, and are never
    built by compose; the mounts in `data` are the run's named volumes."""
    data = data or RunVolumes()
    services: dict[str, Any] = {}
    for name, service in spec["services"].items():
        service = service or {}
        entry: dict[str, Any] = {"container_name": Tagged(RESET), "labels": dict(labels)}
        if is_app_service(service, app_name):
            entry.update(image=app_image, build=Tagged(RESET))
        if name == web.name:
            entry["ports"] = Tagged(OVERRIDE, [f"127.0.0.1:{web.host_port}:{web.container_port}"])
            if web.environment:
                entry["environment"] = dict(web.environment)
            if web.healthcheck is not None:
                entry["healthcheck"] = Tagged(OVERRIDE, healthcheck(web.healthcheck))
        else:
            entry["ports"] = Tagged(RESET, [])
        # compose merges a service's mounts by their target: these replace their bind mounts there
        mounts = [{"type": "volume", "source": mount.volume, "target": mount.target}
                  for mount in data.mounts if mount.service == name]
        if mounts:
            entry["volumes"] = mounts
        services[name] = entry
    override: dict[str, Any] = {"services": services}
    volumes = {**_labelled_resources(spec.get("volumes"), labels),
               **{mount.volume: {"labels": dict(labels)} for mount in data.mounts}}
    networks = _labelled_resources({"default": None, **(spec.get("networks") or {})}, labels)
    if volumes:
        override["volumes"] = volumes
    if networks:
        override["networks"] = networks
    result: dict[str, Any] = escaped(override)
    return result


def healthcheck(replacement: Healthcheck | Literal[False]) -> dict[str, Any]:
    """The web service's healthcheck in compose's terms: the config's, or `disable: true` (False)."""
    if isinstance(replacement, Healthcheck):
        return replacement.model_dump(exclude_none=True)
    return {"disable": True}


def _labelled_resources(declared: Mapping[str, Any] | None, labels: Mapping[str, str]) -> dict[str, Any]:
    """Run labels for each declared volume or network the project creates (not external ones);
    a fixed `name:` goes too, so the project's own prefix keeps parallel runs apart."""
    resources: dict[str, Any] = {}
    for name, resource in (declared or {}).items():
        resource = resource or {}
        if resource.get("external"):
            continue
        resources[name] = {"labels": dict(labels), **({"name": Tagged(RESET)} if "name" in resource else {})}
    return resources


def escaped(value: Any) -> Any:
    """Every string with `$` doubled: compose interpolates the override too, and our values are literal."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, Tagged):
        return Tagged(value.tag, escaped(value.value))
    if isinstance(value, Mapping):
        return {key: escaped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [escaped(item) for item in value]
    return value


class _Dumper(GoSafeDumper):
    """Writes `Tagged` values as compose's `!reset null` / `!override [...]`, and no aliases; strings that
    Compose's YAML 1.2 decoder would read as numbers are quoted (harness.core.goyaml)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def choose_scalar_style(self) -> str:
        if isinstance(self.event, yaml.ScalarEvent) and self.event.tag in {RESET, OVERRIDE}:
            return ""  # `!reset null`, not `!reset 'null'`
        return str(super().choose_scalar_style())


def _represent_tagged(dumper: yaml.SafeDumper, data: Tagged) -> yaml.Node:
    if data.value is None:
        return dumper.represent_scalar(data.tag, "null")
    if isinstance(data.value, list):
        return dumper.represent_sequence(data.tag, data.value, flow_style=True)
    if isinstance(data.value, Mapping):
        return dumper.represent_mapping(data.tag, data.value)
    return dumper.represent_scalar(data.tag, str(data.value))


_Dumper.add_representer(Tagged, _represent_tagged)


def render_override(override: Mapping[str, Any], *, header: str = "") -> str:
    """The override as YAML text, with `header` as a leading comment."""
    comment = "".join(f"# {line}\n".replace("# \n", "#\n") for line in header.splitlines())
    body = yaml.dump(dict(override), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000)
    return comment + body


def write_private(path: Path, text: str) -> None:
    """Write `text` readable by us alone (the override holds the app's token)."""
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        handle.write(text)
