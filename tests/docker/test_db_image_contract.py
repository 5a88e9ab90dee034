"""The database image honours the official mysql image's environment contract.

Whatever `database.image` is here (the official `mysql:8.4` pulled from a registry, or, without
one, our MariaDB-based mysql-compat substitute tagged as that ref), the team's compose file and
manifests rely on the same behaviour: accounts and database from MYSQL_*, secrets from
MYSQL_*_FILE, init scripts once, data kept in /var/lib/mysql.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

from harness.config import Settings
from harness.core.net import LOOPBACK, free_port
from harness.core.ownership import run_labels
from harness.core.wait import NotYet, wait_until
from harness.images.build import ensure_images
from harness.stages.containers import docker_client

START_TIMEOUT = 120.0


@pytest.fixture
def db_container(stageproof_settings: Settings, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The DB image on first start with a password file and two init scripts, on 127.0.0.1."""
    initdb = tmp_path / "initdb"
    initdb.mkdir()
    (initdb / "01-schema.sql").write_text("CREATE TABLE greeting (word VARCHAR(20));\n"
                                          "INSERT INTO greeting VALUES ('hi');\n")
    (initdb / "02-count.sh").write_text('echo "init script ran" >&2\n')
    (tmp_path / "root-password").write_text("r00t'pa$$ word")
    tmp_path.chmod(0o755)
    port = free_port()
    image = ensure_images(stageproof_settings).database
    container = docker_client().containers.run(
        image, detach=True, labels=run_labels(f"dbimage-{secrets.token_hex(3)}", "docker"),
        ports={"3306/tcp": (LOOPBACK, port)},
        environment={"MYSQL_ROOT_PASSWORD_FILE": "/run/secrets/root-password", "MYSQL_DATABASE": "shop",
                     "MYSQL_USER": "clerk", "MYSQL_PASSWORD": "clerk-pw"},
        volumes={str(initdb): {"bind": "/docker-entrypoint-initdb.d", "mode": "ro"},
                 str(tmp_path / "root-password"): {"bind": "/run/secrets/root-password", "mode": "ro"}})
    try:
        yield {"container": container, "port": port, "root_password": "r00t'pa$$ word"}
    finally:
        container.remove(force=True, v=True)


def connect(port: int, user: str, password: str, database: str | None = None) -> pymysql.Connection[Any]:
    return pymysql.connect(host=LOOPBACK, port=port, user=user, password=password, database=database,
                           connect_timeout=3)


def wait_for_server(port: int, container: Any) -> None:
    def probe() -> None:
        container.reload()
        if container.status == "exited":
            raise AssertionError(container.logs().decode(errors="replace")[-3000:])
        try:
            connect(port, "clerk", "clerk-pw", "shop").close()
        except pymysql.err.OperationalError as err:
            raise NotYet(str(err)) from err

    wait_until(probe, what=f"the database image to accept connections on {LOOPBACK}:{port}", timeout=START_TIMEOUT)


def test_db_image_honours_the_mysql_env_contract(db_container: dict[str, Any]) -> None:
    port, container = db_container["port"], db_container["container"]
    wait_for_server(port, container)

    with connect(port, "clerk", "clerk-pw", "shop") as conn, conn.cursor() as cur:
        cur.execute("SELECT word FROM greeting")
        assert cur.fetchall() == (("hi",),), "the .sql init script did not run in MYSQL_DATABASE"
        cur.execute("CREATE TABLE orders (id INT)")
        cur.execute("INSERT INTO orders VALUES (7)")
        conn.commit()
        with pytest.raises(pymysql.err.OperationalError):
            cur.execute("CREATE DATABASE elsewhere")  # MYSQL_USER owns MYSQL_DATABASE only
    with connect(port, "root", db_container["root_password"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM mysql.user WHERE user = ''")
        assert cur.fetchone() == (0,), "anonymous accounts exist"
    assert b"init script ran" in container.logs(), "the .sh init script did not run"

    container.restart(timeout=10)
    wait_for_server(port, container)
    with connect(port, "clerk", "clerk-pw", "shop") as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM orders")
        assert cur.fetchall() == ((7,),), "data in /var/lib/mysql did not survive a restart"
    assert container.logs().count(b"init script ran") == 1, "init scripts ran again on a restart"
