"""The users table and the engine: a pooled connection that survives a database restart."""

from __future__ import annotations

from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, create_engine
from sqlalchemy.engine import URL

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(80), nullable=False),
    Column("email", String(255), nullable=False, unique=True),
    # Any Unicode text, compared byte for byte, whatever the server's defaults (MariaDB's is latin1):
    # MySQL then stores and matches what SQLite and PostgreSQL (deterministic collations) do.
    mysql_charset="utf8mb4",
    mysql_collate="utf8mb4_bin",
)
#: the largest id an INTEGER holds (MySQL's, PostgreSQL's): a larger one names no user on any backend
MAX_ID = 2**31 - 1


#: seconds: to connect, and for one statement (a server that stopped answering is a 503, not a hung worker)
CONNECT_TIMEOUT = 3
STATEMENT_TIMEOUT = 10


def connect_args(driver: str) -> dict[str, object]:
    """Each driver's spelling of the same limits, and of UTF-8 on the wire."""
    if driver == "sqlite":
        return {"timeout": 15}
    if driver.startswith("postgresql"):
        # libpq has no read timeout: the server ends a statement after 10 s, and TCP keepalives (and an
        # unacknowledged-send limit) end a connection to a server that vanished
        return {"connect_timeout": CONNECT_TIMEOUT, "client_encoding": "utf8",
                "options": f"-c statement_timeout={STATEMENT_TIMEOUT * 1000}",
                "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3,
                "tcp_user_timeout": STATEMENT_TIMEOUT * 1000}
    return {"charset": "utf8mb4", "connect_timeout": CONNECT_TIMEOUT, "read_timeout": STATEMENT_TIMEOUT,
            "write_timeout": STATEMENT_TIMEOUT}


def make_engine(url: URL) -> Engine:
    """pool_pre_ping replaces connections the database dropped, so a DB restart heals itself."""
    if url.drivername == "sqlite":
        return create_engine(url, connect_args=connect_args(url.drivername))
    return create_engine(url, pool_pre_ping=True, pool_recycle=300, connect_args=connect_args(url.drivername))
