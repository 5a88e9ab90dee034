"""PostgreSQL, the second database engine: what every stage does on any PostgreSQL server, given
its URLs (`postgresql://user:pass@host:port/db`): a database and its user, seed SQL, and telling
an error worth retrying (not up yet) from one that is not (wrong password, no such database).

The throwaway server of the local-postgres stage is `PostgresServer` (postgres_server.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from harness.config import DatabaseSettings
from harness.core.wait import NotYet, wait_until
from harness.errors import StageFailed
from harness.services.postgres_server import (
    PostgresServer,
    ensure_database,
    error_message,
    postgres_missing,
    postgres_url,
)

__all__ = ["PostgresEngine", "PostgresServer", "postgres_missing", "redact"]

#: SQLSTATE classes/codes no retry can fix: invalid authorization (28...), no such database
PERMANENT_STATES = ("28", "3D000")
#: the same in libpq's words: a failed connection carries no SQLSTATE
PERMANENT_MESSAGES = ("password authentication failed", "does not exist", "no pg_hba.conf entry",
                      "authentication failed", "permission denied")


READY = ["sh", "-c", 'exec pg_isready --quiet --host=127.0.0.1 --username="${POSTGRES_USER:-postgres}"']


class PostgresEngine:
    """The engine operations; `connect_timeout` bounds the wait for a server that is not up yet."""

    name = "postgres"
    default_port = 5432
    data_dir = "/var/lib/postgresql/data"
    init_dir = "/docker-entrypoint-initdb.d"

    def __init__(self, *, connect_timeout: float = 60.0) -> None:
        self.connect_timeout = connect_timeout

    def url(self, *, user: str, password: str, host: str, port: int, database: str) -> str:
        """`postgresql://user:pass@host:port/db`, every part percent-quoted."""
        return postgres_url(user=user, password=password, host=host, port=port, database=database)

    def connect(self, url: str, *, timeout: float | None = None) -> psycopg.Connection[Any]:
        """An autocommit connection. Retries while the server is not there yet (refused, starting up);
        raises StageFailed at once when retrying cannot help (wrong password, no such database)."""

        def attempt() -> psycopg.Connection[Any]:
            try:
                return psycopg.connect(url, connect_timeout=5, autocommit=True)
            except psycopg.OperationalError as err:
                if self.is_permanent(err):
                    raise StageFailed(f"PostgreSQL at {redact(url)} refused the connection: "
                                      f"{error_message(err)}") from err
                raise NotYet(error_message(err)) from err

        return wait_until(attempt, what=f"PostgreSQL at {redact(url)} to accept connections",
                          timeout=timeout or self.connect_timeout, retry_on=(NotYet,))

    def create_database(self, admin_url: str, database: str, user: str | None = None,
                        password: str | None = None) -> None:
        """Database `database`, owned by login role `user` (created or updated with `password`), or,
        without `user`, by the admin URL's own account."""
        with self.connect(admin_url) as conn:
            if user is not None:
                ensure_database(conn, database, user, password or "")
            elif conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))

    def drop_database(self, admin_url: str, database: str, user: str | None = None) -> None:
        """Drop `database` (ending its sessions) and role `user`; absent ones are fine."""
        with self.connect(admin_url) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
            if user is not None:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(user)))

    def container_env(self, db: DatabaseSettings) -> dict[str, str]:
        return {"POSTGRES_USER": db.user, "POSTGRES_PASSWORD": db.password, "POSTGRES_DB": db.name}

    def ready_command(self) -> list[str]:
        """The real server answers over TCP (the image's first-start init server listens on a socket only)."""
        return list(READY)

    def missing(self) -> str | None:
        return postgres_missing()

    def run_sql(self, url: str, sql_text: str, *, timeout: float | None = None) -> None:
        """Run a file of SQL statements as one simple query: one implicit transaction, all or nothing.
        Plain SQL only: psql's meta-commands (\\connect, COPY ... FROM stdin) are not SQL."""
        with self.connect(url, timeout=timeout) as conn:
            try:
                conn.execute(sql_text.encode())  # no parameters: several statements are allowed
            except psycopg.Error as err:
                raise StageFailed(f"SQL failed on {redact(url)}: {error_message(err)}") from err

    @staticmethod
    def is_permanent(error: BaseException) -> bool:
        """True for errors a retry cannot fix (authentication failed, no such database or role)."""
        if not isinstance(error, psycopg.Error):
            return False
        state = error.sqlstate or ""
        return state.startswith(PERMANENT_STATES) or any(text in str(error) for text in PERMANENT_MESSAGES)

    def throwaway(self, db: DatabaseSettings, *, port: int | None = None, start_timeout: float = 60.0,
                  prefix: str = "stageproof-postgres-", on_change: Callable[[], None] | None = None) -> PostgresServer:
        """A server of our own for one run, not started yet: `start()` it, always `stop()` it."""
        return PostgresServer(database=db.name, user=db.user, password=db.password, port=port,
                              start_timeout=start_timeout, prefix=prefix, on_change=on_change)


def redact(url: str) -> str:
    """`url` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))
