"""Config only from the environment (12-factor III); the backing service is a URL (IV)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_DATABASE_URL = "sqlite:///stageproof-users.db"
_DRIVERS = {"sqlite": "sqlite", "mysql": "mysql+pymysql", "mysql+pymysql": "mysql+pymysql", "mariadb": "mysql+pymysql"}


class SettingsError(Exception):
    """The environment cannot configure the app; the message is one line for the operator."""


@dataclass(frozen=True)
class Settings:
    database_url: URL
    api_token: str | None
    release_id: str
    log_level: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            database_url=parse_database_url(env.get("DATABASE_URL") or DEFAULT_DATABASE_URL),
            api_token=env.get("API_TOKEN") or None,
            release_id=env.get("RELEASE_ID") or "dev",
            log_level=(env.get("LOG_LEVEL") or "INFO").upper(),
        )


def parse_database_url(raw: str) -> URL:
    """`sqlite:///path` or `mysql://user:pass@host:port/db`, mapped to SQLAlchemy's drivers."""
    try:
        url = make_url(raw)
    except ArgumentError as err:
        raise SettingsError(f"DATABASE_URL is not a URL: {raw!r}") from err
    driver = _DRIVERS.get(url.drivername)
    if driver is None:
        raise SettingsError(f"DATABASE_URL scheme {url.drivername!r} is not supported (use sqlite or mysql)")
    if driver != "sqlite" and not url.database:
        raise SettingsError("DATABASE_URL names no database (expected mysql://user:pass@host:port/db)")
    return url.set(drivername=driver)
