"""Config only from the environment (12-factor III); the backing service is a URL (IV)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_DATABASE_URL = "sqlite:///stageproof-users.db"
#: the URL schemes the app takes -> SQLAlchemy's driver for them (PostgreSQL: psycopg 3)
_DRIVERS = {"sqlite": "sqlite", "mysql": "mysql+pymysql", "mysql+pymysql": "mysql+pymysql", "mariadb": "mysql+pymysql",
            "postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg",
            "postgresql+psycopg": "postgresql+psycopg"}


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
    """`sqlite:///path`, `mysql://user:pass@host:port/db` or `postgresql://...` (`postgres://` too),
    mapped to SQLAlchemy's drivers. Errors never repeat the URL: it carries the password."""
    expected = "scheme://user:pass@host:port/db"
    try:
        url = make_url(raw)
        port = url.port
    except (ArgumentError, ValueError) as err:  # ValueError: a port that is not a number
        raise SettingsError(f"DATABASE_URL is not a URL of the form {expected}") from err
    driver = _DRIVERS.get(url.drivername)
    if driver is None:
        raise SettingsError(f"DATABASE_URL scheme {url.drivername!r} is not supported "
                            "(use sqlite, mysql or postgresql)")
    if driver != "sqlite" and not url.database:
        raise SettingsError(f"DATABASE_URL names no database (expected {url.drivername}://user:pass@host:port/db)")
    if port is not None and not 0 < port < 65536:
        raise SettingsError(f"DATABASE_URL port {port} is not a TCP port (1-65535)")
    return url.set(drivername=driver)
