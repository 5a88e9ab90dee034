"""The MySQL engine: MariaDB as the throwaway server, PyMySQL for the SQL, the mysql image's contract.

Everything MySQL-specific is here (harness/services/engine.py says what an engine is): the URL form
`mysql://user:pass@host:port/db`, how an existing server gets a run's database and user, how seed
SQL runs (many statements in one go), which errors are permanent, the `MYSQL_*` variables of the
official image and its readiness command.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pymysql

from harness.config import DatabaseSettings
from harness.core.wait import wait_until
from harness.errors import ConfigError, StageFailed
from harness.services.mariadb import MariaDBServer, mariadb_missing

#: server error codes no retry can fix: access denied (user, database), unknown database
PERMANENT = frozenset({1044, 1045, 1049, 1142, 1227})
READY = ["sh", "-c", 'MYSQL_PWD="$MYSQL_PASSWORD" exec mysqladmin ping --host=127.0.0.1 --user="$MYSQL_USER" --silent']


class MySQLEngine:
    """MySQL protocol (MariaDB or MySQL servers)."""

    name = "mysql"
    default_port = 3306
    data_dir = "/var/lib/mysql"
    init_dir = "/docker-entrypoint-initdb.d"

    def url(self, *, user: str, password: str, host: str, port: int, database: str) -> str:
        return f"mysql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/{quote(database, safe='')}"

    def throwaway(self, db: DatabaseSettings, *, port: int | None, start_timeout: float, prefix: str,
                  on_change: Callable[[], None]) -> MariaDBServer:
        return MariaDBServer(database=db.name, user=db.user, password=db.password, start_timeout=start_timeout,
                             prefix=prefix, on_change=on_change, port=port)

    def create_database(self, admin_url: str, database: str, user: str | None = None,
                        password: str | None = None) -> None:
        """A database (and, given `user`, that user with every privilege on it), made with the admin's account."""
        statements: list[str | tuple[str, tuple[str, ...]]] = [f"CREATE DATABASE IF NOT EXISTS `{database}`"]
        if user is not None:
            statements += [("CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", (user, password or "")),
                           (f"GRANT ALL ON `{database}`.* TO %s@'%%'", (user,))]
        self._admin(admin_url, statements)

    def drop_database(self, admin_url: str, database: str, user: str | None = None) -> None:
        statements: list[str | tuple[str, tuple[str, ...]]] = [f"DROP DATABASE IF EXISTS `{database}`"]
        if user is not None:
            statements.append(("DROP USER IF EXISTS %s@'%%'", (user,)))
        self._admin(admin_url, statements)

    def run_sql(self, url: str, sql: str, *, timeout: float) -> None:
        """A whole SQL file (many statements) against `url`; a server that is not up yet is waited for."""
        conn = wait_until(lambda: self._connect_or_fail(url), timeout=timeout,
                          retry_on=(pymysql.err.OperationalError,), what=f"MySQL at {_where(url)} to accept SQL")
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql)
                while cursor.nextset():
                    pass
            conn.commit()
        except pymysql.MySQLError as err:
            raise StageFailed(f"SQL against {_where(url)} failed: {err}") from err
        finally:
            conn.close()

    def _connect_or_fail(self, url: str) -> pymysql.Connection[Any]:
        """A connection for SQL; a server that is not up yet is retried, an error no retry can fix
        (unknown database, access denied) is said at once."""
        try:
            return self._connect(url, multi=True)
        except pymysql.MySQLError as err:
            if self.is_permanent(err):
                raise StageFailed(f"SQL against {_where(url)}/{unquote(urlsplit(url).path.lstrip('/'))}: {err} "
                                  "(no retry can fix that)") from err
            raise

    def is_permanent(self, error: BaseException) -> bool:
        return isinstance(error, pymysql.MySQLError) and bool(error.args) and error.args[0] in PERMANENT

    def container_env(self, db: DatabaseSettings) -> dict[str, str]:
        return {"MYSQL_ROOT_PASSWORD": db.root_password or "", "MYSQL_DATABASE": db.name,
                "MYSQL_USER": db.user, "MYSQL_PASSWORD": db.password}

    def ready_command(self) -> list[str]:
        """The real server answers over TCP (the image's first-start init server listens on none)."""
        return list(READY)

    def missing(self) -> str | None:
        return mariadb_missing()

    def _admin(self, admin_url: str, statements: list[str | tuple[str, tuple[str, ...]]]) -> None:
        conn = self._connect(admin_url, database=False)
        try:
            with conn.cursor() as cursor:
                for statement in statements:
                    sql, args = (statement, ()) if isinstance(statement, str) else statement
                    cursor.execute(sql, args or None)
            conn.commit()
        finally:
            conn.close()

    @staticmethod
    def _connect(url: str, *, multi: bool = False, database: bool = True) -> pymysql.Connection[Any]:
        parts = urlsplit(url)
        if not parts.scheme.startswith(("mysql", "mariadb")) or not parts.hostname:
            raise ConfigError(f"not a mysql://user:password@host:port/name URL: {url!r}")
        flags = pymysql.constants.CLIENT.MULTI_STATEMENTS if multi else 0
        return pymysql.connect(host=parts.hostname, port=parts.port or MySQLEngine.default_port,
                               user=unquote(parts.username or ""), password=unquote(parts.password or ""),
                               database=unquote(parts.path.lstrip("/")) if database else None,
                               connect_timeout=3, client_flag=flags)


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}"
