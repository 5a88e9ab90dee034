"""The PostgreSQL engine and its throwaway server, on the host's PostgreSQL binaries (no Docker).

Needs Debian's `postgresql` package (scripts/setup-machine.sh installs it); skipped without it.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from harness.config import DatabaseSettings
from harness.core.net import LOOPBACK, free_port
from harness.errors import StageFailed, WaitTimeout
from harness.services.postgres import PostgresEngine, PostgresServer, postgres_missing
from harness.services.postgres_server import SOCKET_FOLDER_MAX, service_account

pytestmark = pytest.mark.skipif(postgres_missing() is not None, reason=str(postgres_missing()))

PASSWORD = "p@ss:w/rd 'x'"  # every character a URL or SQL literal must quote


@pytest.fixture
def server() -> Iterator[PostgresServer]:
    started = time.monotonic()
    db = DatabaseSettings(engine="postgres", image="postgres:16", name="shop", user="clerk", password=PASSWORD)
    running = PostgresEngine().throwaway(db).start()
    print(f"throwaway PostgreSQL up in {time.monotonic() - started:.2f}s")
    try:
        yield running
    finally:
        running.stop()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _rows(url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, connect_timeout=3) as conn:
        return conn.execute(query).fetchall()


def test_start_then_stop_leaves_no_process_and_no_folder() -> None:
    port = free_port()
    server = PostgresServer(database="shop", user="clerk", password=PASSWORD, port=port).start()
    try:
        pid, folders = server.pid, server.folders
        assert pid is not None and folders and all(folder.is_dir() for folder in folders)
        assert server.port == port, "the pinned port was not used"
        assert _rows(server.url(), "SELECT current_user, current_database()") == [("clerk", "shop")]
        account = service_account()
        assert Path(f"/proc/{pid}").stat().st_uid == (account.pw_uid if account else os.getuid())
    finally:
        server.stop()
    assert not _group_alive(pid), "a server process outlived stop()"
    assert not any(folder.exists() for folder in folders), "stop() left a folder"
    assert server.folders == [] and server.pid is None


def test_a_deep_temp_folder_gets_its_socket_in_a_short_one(monkeypatch: pytest.MonkeyPatch) -> None:
    deep = Path(tempfile.mkdtemp(prefix="stageproof-deep-", dir="/tmp"))
    try:
        nested = deep / ("d" * 60) / ("e" * 30)
        nested.mkdir(parents=True)
        for folder in (deep, deep / ("d" * 60), nested):
            folder.chmod(0o755)  # the service account must enter it when we are root
        monkeypatch.setattr(tempfile, "tempdir", str(nested))
        server = PostgresServer(database="shop", user="clerk", password=PASSWORD).start()
        try:
            assert server.workdir is not None and server.socket_dir is not None
            assert len(str(server.workdir)) > SOCKET_FOLDER_MAX, "the test's folder is not deep enough"
            assert server.socket_dir != server.workdir and len(str(server.socket_dir)) <= SOCKET_FOLDER_MAX
            assert _rows(server.admin_url(), "SELECT 1") == [(1,)]
            folders = server.folders
        finally:
            server.stop()
        assert len(folders) == 2 and not any(folder.exists() for folder in folders)
    finally:
        shutil.rmtree(deep)


def test_pause_and_resume_keep_the_data(server: PostgresServer) -> None:
    url = server.url()
    engine = PostgresEngine(connect_timeout=5)
    engine.run_sql(url, "CREATE TABLE kept (n int); INSERT INTO kept VALUES (42);")
    port = server.port
    server.pause()
    assert server.pid is None
    with pytest.raises(psycopg.OperationalError, match="refused"):
        psycopg.connect(url, connect_timeout=3)
    server.resume()
    assert server.port == port
    assert _rows(url, "SELECT n FROM kept") == [(42,)], "the data did not survive pause/resume"


def test_run_sql_runs_a_multi_statement_file_all_or_nothing(server: PostgresServer, tmp_path: Path) -> None:
    seed = tmp_path / "seed.sql"
    seed.write_text("-- a seed file, as teams write them\n"
                    "CREATE TABLE greeting (id serial PRIMARY KEY, word text NOT NULL);\n"
                    "INSERT INTO greeting (word) VALUES ('hi; there');\n"
                    "INSERT INTO greeting (word) VALUES ($$it's$$);\n"
                    "CREATE INDEX greeting_word ON greeting (word);\n")
    engine = PostgresEngine(connect_timeout=5)
    engine.run_sql(server.url(), seed.read_text())
    assert _rows(server.url(), "SELECT word FROM greeting ORDER BY id") == [("hi; there",), ("it's",)]

    broken = "INSERT INTO greeting (word) VALUES ('first');\nINSERT INTO nowhere VALUES (1);\n"
    with pytest.raises(StageFailed, match='relation "nowhere" does not exist'):
        engine.run_sql(server.url(), broken)
    assert _rows(server.url(), "SELECT count(*) FROM greeting") == [(2,)], "a failed file was applied in part"


def test_create_and_drop_a_database_through_an_admin_url(server: PostgresServer) -> None:
    engine = PostgresEngine(connect_timeout=5)
    engine.create_database(server.admin_url(), "other db", "bob", PASSWORD)
    engine.create_database(server.admin_url(), "other db", "bob", PASSWORD)  # again: nothing to do, no error
    url = engine.url(user="bob", password=PASSWORD, host=LOOPBACK, port=server.port, database="other db")
    engine.run_sql(url, "CREATE TABLE mine (n int); INSERT INTO mine VALUES (1);")  # bob owns it
    assert _rows(url, "SELECT current_user, current_database()") == [("bob", "other db")]

    engine.drop_database(server.admin_url(), "other db", "bob")
    with pytest.raises(StageFailed, match='password authentication failed for user "bob"'):
        engine.connect(url)  # bob is gone (a permanent error: raised at once)
    assert _rows(server.admin_url(), "SELECT count(*) FROM pg_database WHERE datname = 'other db'") == [(0,)]
    assert _rows(server.admin_url(), "SELECT count(*) FROM pg_roles WHERE rolname = 'bob'") == [(0,)]
    engine.drop_database(server.admin_url(), "other db", "bob")  # already gone: fine


def test_a_pinned_port_that_is_taken_is_one_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = PostgresServer(database="shop", user="clerk", password=PASSWORD, port=port)
        with pytest.raises(StageFailed, match=f"port {port} on {LOOPBACK}, pinned .* is taken"):
            server.start()
        assert server.folders == [] and server.pid is None, "a refused start left something behind"


def test_a_permanent_error_is_not_retried_and_a_transient_one_is(server: PostgresServer) -> None:
    engine = PostgresEngine(connect_timeout=30)
    wrong = engine.url(user="clerk", password="wrong", host=LOOPBACK, port=server.port, database="shop")
    started = time.monotonic()
    with pytest.raises(StageFailed, match='password authentication failed for user "clerk"') as failed:
        engine.connect(wrong)
    assert time.monotonic() - started < 5, "a wrong password was retried"
    assert "wrong" not in str(failed.value), "the password is in the message"
    assert engine.is_permanent(failed.value.__cause__ or failed.value)
    missing = engine.url(user="clerk", password=PASSWORD, host=LOOPBACK, port=server.port, database="nope")
    with pytest.raises(StageFailed, match='database "nope" does not exist'):
        engine.connect(missing)
    assert time.monotonic() - started < 10, "a missing database was retried"

    nobody = engine.url(user="clerk", password=PASSWORD, host=LOOPBACK, port=free_port(), database="shop")
    started = time.monotonic()
    with pytest.raises(WaitTimeout, match="Connection refused"):
        PostgresEngine(connect_timeout=2).connect(nobody)
    assert time.monotonic() - started >= 2, "a refused connection was not retried until the deadline"
