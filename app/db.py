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
    # MySQL then stores and matches what SQLite does.
    mysql_charset="utf8mb4",
    mysql_collate="utf8mb4_bin",
)
#: the largest id MySQL's INTEGER holds: a larger one names no user on any backend
MAX_ID = 2**31 - 1


def make_engine(url: URL) -> Engine:
    """pool_pre_ping replaces connections the database dropped, so a DB restart heals itself."""
    if url.drivername == "sqlite":
        return create_engine(url, connect_args={"timeout": 15})
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_recycle=300,
        connect_args={"charset": "utf8mb4", "connect_timeout": 3, "read_timeout": 10, "write_timeout": 10},
    )
