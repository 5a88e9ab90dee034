"""The compose stage's override file: the team's compose file stays untouched, this file bends it.

Read with their file (`docker compose -f theirs.yaml -f override.yaml`), it makes one run safe to
start next to any other: no fixed container names, no host ports but the web service's on
127.0.0.1, the image stageproof built instead of a `build:`, run labels on every container,
network and volume (so a label sweep finds what a killed run left), and the values only a run
knows (release, token) in the web service's environment. Pure functions: no Docker needed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

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


def compose_override(spec: Mapping[str, Any], *, web: WebService, app_image: str, app_name: str | None,
                     labels: Mapping[str, str]) -> dict[str, Any]:
    """The override for their file `spec`: see the module docstring for what each part is for.

    The app's services are those with a `build:` or whose image is named `app_name` (any tag):
    they run `app_image`, which stageproof built, and are never built by compose."""
    services: dict[str, Any] = {}
    for name, service in spec["services"].items():
        service = service or {}
        entry: dict[str, Any] = {"container_name": Tagged(RESET), "labels": dict(labels)}
        if "build" in service or (app_name and image_name(str(service.get("image", ""))) == image_name(app_name)):
            entry.update(image=app_image, build=Tagged(RESET))
        if name == web.name:
            entry["ports"] = Tagged(OVERRIDE, [f"127.0.0.1:{web.host_port}:{web.container_port}"])
            if web.environment:
                entry["environment"] = dict(web.environment)
        else:
            entry["ports"] = Tagged(RESET, [])
        services[name] = entry
    override: dict[str, Any] = {"services": services}
    volumes = _labelled_resources(spec.get("volumes"), labels)
    networks = _labelled_resources({"default": None, **(spec.get("networks") or {})}, labels)
    if volumes:
        override["volumes"] = volumes
    if networks:
        override["networks"] = networks
    result: dict[str, Any] = escaped(override)
    return result


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


class _Dumper(yaml.SafeDumper):
    """Writes `Tagged` values as compose's `!reset null` / `!override [...]`, and no aliases."""

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
