"""What a database engine is to stageproof, written once: everything engine-specific sits in one small
class per engine (harness/services/mysql.py, harness/services/postgres.py), and nothing outside
those classes names an engine. The local stages start its throwaway server, the docker stage runs
its image with the official image's variables, the seed runs its SQL, `${db.url}` takes its URL form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from harness.appenv import DatabaseEndpoint
from harness.config import DatabaseSettings, Settings
from harness.errors import ConfigError


class ThrowawayServer(Protocol):
    """A database server process a local stage starts on 127.0.0.1 and removes in `stop()`."""

    port: int

    def start(self) -> ThrowawayServer: ...
    def stop(self) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def crash(self) -> None: ...
    def logs(self) -> str: ...
    @property
    def pid(self) -> int | None: ...
    @property
    def workdir(self) -> object | None: ...


class DatabaseEngine(Protocol):
    """One engine: its URL form, its servers, its SQL runner, its image's contract."""

    name: str
    default_port: int
    #: where the official image keeps its data and reads its init scripts
    data_dir: str
    init_dir: str

    def url(self, *, user: str, password: str, host: str, port: int, database: str) -> str: ...
    def throwaway(self, db: DatabaseSettings, *, port: int | None, start_timeout: float, prefix: str,
                  on_change: Callable[[], None]) -> ThrowawayServer: ...
    def create_database(self, admin_url: str, database: str, user: str | None = None,
                        password: str | None = None) -> None: ...
    def drop_database(self, admin_url: str, database: str, user: str | None = None) -> None: ...
    def run_sql(self, url: str, sql: str, *, timeout: float) -> None: ...
    def is_permanent(self, error: BaseException) -> bool: ...
    def container_env(self, db: DatabaseSettings) -> dict[str, str]: ...
    def ready_command(self) -> list[str]: ...
    def missing(self) -> str | None: ...


def endpoint(engine: DatabaseEngine, db: DatabaseSettings, host: str, port: int | None = None, *,
             name: str | None = None) -> DatabaseEndpoint:
    """Where the app finds database `name` (default `db.name`) of this engine at `host:port`."""
    port = port or engine.default_port
    name = name or db.name
    url = engine.url(user=db.user, password=db.password, host=host, port=port, database=name)
    return DatabaseEndpoint(url, host, port, db.user, db.password, name)


def engine_named(name: str) -> DatabaseEngine:
    """The engine class for `name` ("mysql" or "postgres"), imported only when needed."""
    if name == "mysql":
        from harness.services.mysql import MySQLEngine

        return MySQLEngine()
    if name == "postgres":
        from harness.services.postgres import PostgresEngine

        return PostgresEngine()
    raise ConfigError(f"database.engine: unknown engine {name!r} (mysql, postgres)")


def engine_for(settings: Settings) -> DatabaseEngine:
    """The engine of the app's database (`[database] engine`, or derived from its image)."""
    return engine_named(settings.database.engine_name)
