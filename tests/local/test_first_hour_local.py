"""local-mysql for a team's app as it is (tests/fixtures/two-tier: its database port fixed at 3306, a
seed that is not idempotent): a pinned `[database] port`, an app that dies at start, a server of
their own named by `stages.local.mysql_url` (a database that does not exist there, an account that
may not create one, two runs against it), and a CI run there with the outage checks not applicable."""

from __future__ import annotations

import re
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
import requests

from harness.config import Settings, load_settings
from harness.core.net import LOOPBACK, free_port, port_is_free
from harness.core.run import run
from harness.errors import StageFailed
from harness.lifecycle import StageRunner, in_ci
from harness.services.mariadb import MariaDBServer, mariadb_missing
from harness.services.mysql import MySQLEngine

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "two-tier"
FIXED = 3306  # where the app always connects


@pytest.fixture(scope="module", autouse=True)
def _mariadb_here() -> None:
    missing = mariadb_missing()
    if missing:
        if in_ci():
            pytest.fail(missing)
        pytest.skip(missing)


def fixture_settings(*, port: int | None = FIXED, mysql_url: str | None = None) -> Settings:
    settings = load_settings(FIXTURE / "stageproof.toml", env={})
    stages = settings.stages.model_copy(update={"local": settings.stages.local.model_copy(
        update={"mysql_url": mysql_url})})
    return settings.model_copy(update={"database": settings.database.model_copy(update={"port": port}),
                                       "stages": stages})


def needs_fixed_port() -> None:
    if not port_is_free(FIXED):
        message = f"{LOOPBACK}:{FIXED} is in use here: the two-tier app always connects there"
        pytest.fail(message) if in_ci() else pytest.skip(message)


@pytest.fixture(scope="module")
def their_server() -> Iterator[MariaDBServer]:
    """The team's own MySQL server on 3306 (where their app connects), with a root-like account and
    one that may use only the database `devops`, which does not exist."""
    needs_fixed_port()
    server = MariaDBServer(database="unrelated", user="unrelated", password="x", port=FIXED,
                           prefix="stageproof-their-server-")
    try:
        server.start()
        conn = pymysql.connect(unix_socket=str(server.socket), user="root")
        with conn.cursor() as cursor:
            cursor.execute("CREATE USER 'owner'@'%' IDENTIFIED BY 'owner-pw'")
            cursor.execute("GRANT ALL ON *.* TO 'owner'@'%'")
            cursor.execute("CREATE USER 'limited'@'%' IDENTIFIED BY 'limited-pw'")
            cursor.execute("GRANT ALL ON `devops`.* TO 'limited'@'%'")
        conn.close()
        yield server
    finally:
        server.stop()


def databases(server: MariaDBServer) -> set[str]:
    conn = pymysql.connect(unix_socket=str(server.socket), user="root")
    with conn.cursor() as cursor:
        cursor.execute("SHOW DATABASES")
        found = {row[0] for row in cursor.fetchall()}
    conn.close()
    return found - {"information_schema", "mysql", "performance_schema", "sys", "unrelated"}


# -- item 2: a pinned port, and the app's own error ---------------------------------------------
def test_a_pinned_port_that_is_taken_is_one_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen(1)
        port = int(taken.getsockname()[1])
        started = time.monotonic()
        with pytest.raises(StageFailed, match=rf"database\.port = {port} pins the port of the throwaway MariaDB, "
                                              rf"and 127\.0\.0\.1:{port} is in use here"):
            StageRunner(fixture_settings(port=port)).start("local-mysql")
    assert time.monotonic() - started < 30


def test_the_pinned_port_is_where_the_throwaway_server_listens() -> None:
    port = free_port()
    db = fixture_settings(port=port).database
    server = MySQLEngine().throwaway(db, port=db.port, start_timeout=60, prefix="stageproof-firsthour-pin-",
                                     on_change=lambda: None)
    try:
        server.start()
        pymysql.connect(host=LOOPBACK, port=port, user=db.user, password=db.password, database=db.name).close()
    finally:
        server.stop()


def test_when_the_app_dies_the_summary_line_is_the_app_s_error() -> None:
    """Without the pin, the app connects to 3306 where nothing listens, and exits: its own line is what
    the run summary shows (not MariaDB's last log lines), with the hint to pin the port."""
    needs_fixed_port()
    runner = StageRunner(fixture_settings(port=None))
    with pytest.raises(StageFailed):
        runner.start("local-mysql")
    error = runner.ledger.record("local-mysql").error or ""
    assert "Can't start: (2003" in error and "3306" in error, error
    assert "[Note]" not in error and "mariadbd" not in error, error
    assert "[database] port = 3306" in error, error


# -- items 3 and 4: a server of their own ---------------------------------------------------------
def test_a_missing_database_on_their_server_is_made_for_the_run_and_dropped(their_server: MariaDBServer) -> None:
    assert "devops" not in databases(their_server)
    runner = StageRunner(fixture_settings(mysql_url=f"mysql://owner:owner-pw@{LOOPBACK}:{FIXED}/devops"))
    _, deployment = runner.start("local-mysql")
    try:
        made = databases(their_server)
        assert made == {f"devops_sp{runner.run_id}"}, made
        assert "Hello from the seed file." in requests.get(deployment.base_url + "/", timeout=10).text
    finally:
        runner.stop_all()
    assert databases(their_server) == set()


def test_an_account_that_may_not_create_the_run_database_is_one_immediate_error(
        their_server: MariaDBServer) -> None:
    started = time.monotonic()
    runner = StageRunner(fixture_settings(mysql_url=f"mysql://limited:limited-pw@{LOOPBACK}:{FIXED}/devops"))
    with pytest.raises(StageFailed, match=r"stages\.local\.mysql_url: its account cannot make the run's database "
                                          r"'devops_sp\w+' \(\(1044, .*privilege to create"):
        runner.start("local-mysql")
    assert time.monotonic() - started < 20, "a permanent error was retried"


def test_sql_against_a_database_that_does_not_exist_fails_at_once(their_server: MariaDBServer) -> None:
    started = time.monotonic()
    with pytest.raises(StageFailed, match=r"1049, \"Unknown database 'nope'\""):
        MySQLEngine().run_sql(f"mysql://owner:owner-pw@{LOOPBACK}:{FIXED}/nope", "SELECT 1", timeout=60)
    assert time.monotonic() - started < 10, "(1049, Unknown database) was retried"


def test_two_runs_against_one_server_each_seed_their_own_database(their_server: MariaDBServer) -> None:
    """The seed is not idempotent (`CREATE TABLE messages`): a reused database fails the second run."""
    url = f"mysql://owner:owner-pw@{LOOPBACK}:{FIXED}/devops"
    for _ in range(2):
        runner = StageRunner(fixture_settings(mysql_url=url))
        try:
            runner.start("local-mysql")
        finally:
            runner.stop_all()
    assert databases(their_server) == set()


# -- item 1: in CI, what the stage cannot do is "not applicable", and the run is green ------------
def test_ci_run_on_their_server_reports_the_outage_checks_not_applicable(their_server: MariaDBServer,
                                                                          tmp_path: Path) -> None:
    url = f"mysql://owner:owner-pw@{LOOPBACK}:{FIXED}/devops"
    proc = run([sys.executable, "-m", "harness", "--config", str(FIXTURE / "stageproof.toml"), "test", "--stage",
                "local-mysql", "--", "-p", "no:cacheprovider", f"--stageproof-report={tmp_path / 'report.json'}"],
               env={"CI": "true", "STAGEPROOF_LOCAL_MYSQL_URL": url}, check=False, timeout=900)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    reason = ("local-mysql controls the database only when it started it: stages.local.mysql_url names a server "
              "of yours, which stageproof never stops")
    assert f"not applicable: test_data_written_before_a_database_outage_reads_back_after ({reason})" in output
    assert re.search(r"^local-mysql +[1-9][0-9]* +0 +0 ", output, re.MULTILINE), output[-3000:]  # passed, 0 failed
