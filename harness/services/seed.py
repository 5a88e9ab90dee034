"""Seeding the database the local stages start: the app's own seed command, or SQL files.

The docker stage runs the same `[seed]` in containers (a single-use container, the database
image's init directory); the compose and k8s stages leave it to the team's own files.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pymysql

from harness.appenv import MYSQL_PORT, DatabaseEndpoint
from harness.config import LocalCommands, Settings
from harness.core.run import run
from harness.core.wait import wait_until
from harness.errors import ConfigError, StageFailed


def local_commands(settings: Settings) -> LocalCommands:
    if settings.app.local is None:
        raise ConfigError("app.local: missing (how the app runs as a process here: workdir, serve)")
    return settings.app.local


def local_argv(template: list[str], python: str = sys.executable) -> list[str]:
    """A command of the config with `{python}` filled in (this interpreter, or a container's)."""
    return [part.replace("{python}", python) for part in template]


def endpoint_from_url(url: str) -> DatabaseEndpoint:
    """`mysql://user:pass@host:port/name` as the `${db.*}` values."""
    parts = urlsplit(url)
    if not parts.scheme.startswith(("mysql", "mariadb")) or not parts.hostname:
        raise ConfigError(f"stages.local.mysql_url: not a mysql://user:password@host:port/name URL: {url!r}")
    return DatabaseEndpoint(url, parts.hostname, parts.port or MYSQL_PORT, unquote(parts.username or ""),
                            unquote(parts.password or ""), unquote(parts.path.lstrip("/")))


def seed_database(settings: Settings, database: DatabaseEndpoint, *, env: dict[str, str], timeout: float) -> None:
    """Apply the `[seed]` SQL files, then run the seed command with the app's environment."""
    for path in settings.seed.sql:
        apply_sql(database, path, timeout=timeout)
    if settings.seed.command:
        commands = local_commands(settings)
        run(local_argv(settings.seed.command), cwd=commands.workdir, env=env, timeout=timeout)


def apply_sql(database: DatabaseEndpoint, path: Path, *, timeout: float) -> None:
    """Run one SQL file against the database (sqlite file or MySQL server)."""
    script = path.read_text()
    if database.url.startswith("sqlite:///"):
        with sqlite3.connect(database.url.removeprefix("sqlite:///")) as conn:
            conn.executescript(script)
        return
    connection = wait_until(lambda: _connect(database), timeout=timeout, retry_on=(pymysql.err.OperationalError,),
                            what=f"MySQL at {database.host}:{database.port} to accept {path.name}")
    try:
        with connection.cursor() as cursor:
            cursor.execute(script)
            while cursor.nextset():
                pass
        connection.commit()
    except pymysql.MySQLError as err:
        raise StageFailed(f"seed file {path} failed: {err}") from err
    finally:
        connection.close()


def _connect(database: DatabaseEndpoint) -> pymysql.Connection:
    return pymysql.connect(host=database.host, port=database.port, user=database.user, password=database.password,
                           database=database.name, connect_timeout=3,
                           client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)
