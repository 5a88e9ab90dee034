"""One-shot admin process (12-factor XII): create the schema and the seed users, idempotently.

Run twice, same data: rows are inserted only when their email is absent. This is the
single-use init container of the docker, compose and Kubernetes stages.
"""

from __future__ import annotations

import sys

from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

from app.db import make_engine, metadata, users
from app.settings import Settings, SettingsError

SEED_USERS = (
    {"id": 1, "name": "admin", "email": "admin@example.com"},
    {"id": 2, "name": "guest", "email": "guest@example.com"},
)


@retry(
    retry=retry_if_exception_type(OperationalError),
    stop=stop_after_delay(120),
    wait=wait_fixed(1),
    reraise=True,
)
def seed(settings: Settings) -> int:
    """Create the table and missing seed rows; returns how many rows were inserted."""
    engine = make_engine(settings.database_url)
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            present = set(conn.scalars(select(users.c.email)))
            missing = [row for row in SEED_USERS if row["email"] not in present]
            if missing:
                conn.execute(users.insert(), missing)
            if conn.dialect.name == "postgresql":
                # explicit ids leave PostgreSQL's sequence behind: the next created user would get id 1
                conn.execute(text("SELECT setval(pg_get_serial_sequence('users', 'id'), "
                                  "(SELECT COALESCE(MAX(id), 1) FROM users))"))
        return len(missing)
    finally:
        engine.dispose()


def main() -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as err:
        print(f"seed: {err}", file=sys.stderr)
        return 2
    inserted = seed(settings)
    print(f"seed: schema ready, {inserted} seed user(s) inserted", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
