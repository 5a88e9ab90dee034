"""The app's environment, built in one place for every stage from `[app.env]` templates.

A team maps its own variable names to placeholders (`MYSQL_HOST = "${db.host}"`,
`PORT = "${port}"`); each stage supplies the values it knows. The compose and k8s stages
inject only what a run alone knows (`${release}`, `${token}`): the team's files wire the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.config import RUN_PLACEHOLDERS, TEMPLATE, Settings, placeholders
from harness.errors import ConfigError


@dataclass(frozen=True)
class DatabaseEndpoint:
    """Where the app finds its database at one stage, as the `${db.*}` placeholders see it."""

    url: str
    host: str = ""
    port: int = 0
    user: str = ""
    password: str = ""
    name: str = ""

    @classmethod
    def sqlite(cls, path: str) -> DatabaseEndpoint:
        return cls(f"sqlite:///{path}")

    def values(self) -> dict[str, str]:
        fields = {"db.url": self.url, "db.host": self.host, "db.port": str(self.port or ""),
                  "db.user": self.user, "db.password": self.password, "db.name": self.name}
        return {key: value for key, value in fields.items() if value}


def app_env(settings: Settings, *, stage: str, release: str, db: DatabaseEndpoint | None = None,
            port: int | None = None, host: str | None = None, run_only: bool = False) -> dict[str, str]:
    """`[app.env]` rendered for `stage`; a placeholder the stage has no value for is an error
    naming the variable (with `run_only`, variables that need more than a run's values are left
    to the team's own files)."""
    values = {"release": release, "token": settings.app.token or ""}
    values.update(db.values() if db else {})
    values.update({"port": str(port)} if port is not None else {})
    values.update({"host": host} if host is not None else {})
    env: dict[str, str] = {}
    for name, template in settings.app.env.items():
        used = placeholders(template)
        if run_only and not used <= RUN_PLACEHOLDERS:
            continue
        missing = sorted(used - values.keys())
        if missing:
            raise ConfigError(f"app.env.{name}: ${{{missing[0]}}} has no value at stage {stage} "
                              f"(declare it in [stages] not_applicable if the app cannot run there)")
        env[name] = TEMPLATE.sub(lambda match: values[match.group(1)], template)
    return env


def with_python(template: list[str], python: str) -> list[str]:
    """A command of the config with `{python}` filled in (the app's interpreter, or a container's)."""
    return [part.replace("{python}", python) for part in template]


def release_variables(settings: Settings) -> list[str]:
    """The app's variables that carry the release id (a rollout changes them)."""
    return [name for name, template in settings.app.env.items() if "release" in placeholders(template)]
