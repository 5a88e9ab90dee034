"""The postgres stand-in honours the official postgres image's contract, on its own.

Built with `build_postgres_substitute()` (no registry, no stageproof.toml), run with the docker
SDK on 127.0.0.1: accounts and database from POSTGRES_* and POSTGRES_*_FILE, init scripts once
and in name order, data kept in PGDATA across a restart and a new container on the same volume,
pg_isready, a non-root uid, a wrong password refused, SIGTERM as a fast shutdown, and the size.
"""

from __future__ import annotations

import contextlib
import gzip
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker.errors
import psycopg
import pytest

from harness.core.net import LOOPBACK, free_port
from harness.core.ownership import run_labels
from harness.core.wait import NotYet, wait_until
from harness.images.stand_in_postgres import build_postgres_substitute
from harness.stages.containers import docker_client, docker_missing

PREFIX = "postgres-helper"
START_TIMEOUT = 120.0
MAX_IMAGE_BYTES = 200_000_000  # 200 MB, as `docker images` counts


@dataclass(frozen=True)
class Running:
    container: Any
    port: int

    def connect(self, user: str, password: str, dbname: str) -> psycopg.Connection[Any]:
        return psycopg.connect(host=LOOPBACK, port=self.port, user=user, password=password, dbname=dbname,
                               connect_timeout=3, autocommit=True)

    def logs(self) -> str:
        return str(self.container.logs().decode(errors="replace"))

    def wait_ready(self, user: str, password: str, dbname: str) -> None:
        def probe() -> None:
            self.container.reload()
            if self.container.status == "exited":
                raise AssertionError(f"the container exited:\n{self.logs()[-3000:]}")
            try:
                self.connect(user, password, dbname).close()
            except psycopg.OperationalError as err:
                raise NotYet(str(err)) from err

        wait_until(probe, what=f"the postgres stand-in on {LOOPBACK}:{self.port}", timeout=START_TIMEOUT,
                   diagnostics=self.logs)

    def query(self, sql: str, *, user: str, password: str, dbname: str) -> list[tuple[Any, ...]]:
        with self.connect(user, password, dbname) as conn:
            cursor = conn.execute(sql)
            return cursor.fetchall() if cursor.description else []


@pytest.fixture(scope="module")
def image() -> str:
    reason = docker_missing()
    if reason:
        pytest.skip(reason)
    started = time.monotonic()
    built = build_postgres_substitute()
    print(f"{built.image}: ready in {time.monotonic() - started:.1f}s")
    return built.image


@pytest.fixture
def launch(image: str) -> Iterator[Callable[..., Running]]:
    """Start containers of the image (named and labelled postgres-helper-*); all removed after."""
    client = docker_client()
    run_id = f"{PREFIX}-{secrets.token_hex(3)}"
    created: list[Any] = []

    def start(**options: Any) -> Running:
        port = free_port()
        container = client.containers.run(
            image, options.pop("command", None), detach=True, name=f"{run_id}-{len(created)}",
            labels=run_labels(run_id, "docker"), ports={"5432/tcp": (LOOPBACK, port)}, **options)
        created.append(container)
        return Running(container, port)

    try:
        yield start
    finally:
        for container in created:
            with contextlib.suppress(docker.errors.NotFound):  # a test may remove one itself
                container.remove(force=True, v=True)


@pytest.fixture
def volume() -> Iterator[str]:
    """A named volume for PGDATA, removed after (with the containers still using it)."""
    client = docker_client()
    made = client.volumes.create(name=f"{PREFIX}-{secrets.token_hex(3)}", labels=run_labels(PREFIX, "docker"))
    try:
        yield str(made.name)
    finally:
        for container in client.containers.list(all=True, filters={"volume": made.name}):
            container.remove(force=True, v=True)
        made.remove(force=True)


def init_scripts(folder: Path) -> Path:
    """Four scripts (.sql, .sql.gz, .sh, one ignored) that each record their name, in a shuffled
    creation order: the image must run them by name."""
    folder.mkdir()
    (folder / "03-last.sh").write_text(
        'echo "init script ran" >&2\n'
        'psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" '
        "-c \"INSERT INTO ran (name) VALUES ('03-last.sh')\"\n")
    (folder / "01-schema.sql").write_text(
        "CREATE TABLE ran (n serial PRIMARY KEY, name text);\nINSERT INTO ran (name) VALUES ('01-schema.sql');\n")
    (folder / "02-more.sql.gz").write_bytes(gzip.compress(b"INSERT INTO ran (name) VALUES ('02-more.sql.gz');\n"))
    (folder / "04-notes.txt").write_text("not a script\n")
    folder.chmod(0o755)
    return folder


def test_users_db_and_password_from_files_and_init_scripts_once(launch: Callable[..., Running], volume: str,
                                                                  tmp_path: Path) -> None:
    password = "s3cret 'pa$$' word"
    (tmp_path / "pw").write_text(password)
    (tmp_path / "user").write_text("clerk")
    tmp_path.chmod(0o755)
    options = {
        "environment": {"POSTGRES_PASSWORD_FILE": "/run/secrets/pw", "POSTGRES_USER_FILE": "/run/secrets/user",
                        "POSTGRES_DB": "shop"},
        "volumes": {str(init_scripts(tmp_path / "initdb")): {"bind": "/docker-entrypoint-initdb.d", "mode": "ro"},
                    str(tmp_path / "pw"): {"bind": "/run/secrets/pw", "mode": "ro"},
                    str(tmp_path / "user"): {"bind": "/run/secrets/user", "mode": "ro"},
                    volume: {"bind": "/var/lib/postgresql/data", "mode": "rw"}},
    }
    first = launch(**options)
    first.wait_ready("clerk", password, "shop")
    login = {"user": "clerk", "password": password, "dbname": "shop"}

    assert first.query("SELECT name FROM ran ORDER BY n", **login) == [
        ("01-schema.sql",), ("02-more.sql.gz",), ("03-last.sh",)], "init scripts did not run once each, by name"
    assert first.query("SELECT rolsuper FROM pg_roles WHERE rolname = current_user", **login) == [(True,)]
    first.query("CREATE TABLE orders (id int); INSERT INTO orders VALUES (7)", **login)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        first.connect("clerk", "wrong", "shop")
    for probe in (["pg_isready", "-U", "clerk", "-d", "shop"], ["pg_isready", "-h", "127.0.0.1", "-p", "5432"]):
        code, output = first.container.exec_run(probe)
        assert code == 0, f"{probe}: {output!r}"

    first.container.restart(timeout=20)
    first.wait_ready(**login)
    assert first.query("SELECT id FROM orders", **login) == [(7,)], "data did not survive a restart"
    assert first.logs().count("init script ran") == 1, "init scripts ran again on a restart"

    first.container.remove(force=True)
    second = launch(**options)
    second.wait_ready(**login)
    assert second.query("SELECT id FROM orders", **login) == [(7,)], "the volume did not keep the data"
    assert "init script ran" not in second.logs(), "init scripts ran on a volume already initialised"
    assert "initialising" not in second.logs()


def test_defaults_initdb_args_server_options_and_binaries(launch: Callable[..., Running]) -> None:
    running = launch(environment={"POSTGRES_PASSWORD": "pw", "POSTGRES_INITDB_ARGS": "--data-checksums -E UTF8"},
                     command=["postgres", "-c", "max_connections=42"])
    running.wait_ready("postgres", "pw", "postgres")  # user and database default to postgres
    login = {"user": "postgres", "password": "pw", "dbname": "postgres"}
    assert running.query("SHOW max_connections", **login) == [("42",)], "postgres -c key=value was not passed on"
    assert running.query("SHOW data_checksums", **login) == [("on",)], "POSTGRES_INITDB_ARGS was not passed on"
    assert running.query("SHOW listen_addresses", **login) == [("*",)]
    code, output = running.container.exec_run(["sh", "-c", "command -v postgres initdb pg_ctl psql pg_isready"])
    assert code == 0, f"not all of the official image's binaries are on PATH: {output!r}"
    code, output = running.container.exec_run(["id", "-un"], user="postgres")
    assert output.strip() == b"postgres"
    top = running.container.top(ps_args="-o pid,uid,comm")["Processes"]
    assert all(uid != "0" for _, uid, _ in top), f"something runs as root: {top}"


def test_no_password_is_refused(launch: Callable[..., Running]) -> None:
    running = launch(environment={})
    assert running.container.wait(timeout=START_TIMEOUT)["StatusCode"] != 0
    assert "POSTGRES_PASSWORD" in running.logs()


@pytest.mark.parametrize("uid", ["999:999", "4321:4321"], ids=["postgres-uid", "uid-without-passwd-entry"])
def test_a_non_root_user_runs_it(launch: Callable[..., Running], uid: str) -> None:
    # A k8s securityContext: the data folder belongs to that uid (an fsGroup'd volume's subfolder,
    # here a tmpfs); 999 is the image's own postgres user, 4321 has no passwd entry at all.
    owner = uid.split(":")[0]
    running = launch(user=uid, environment={"POSTGRES_PASSWORD": "pw", "POSTGRES_DB": "app"},
                     tmpfs={"/var/lib/postgresql/data": f"uid={owner},gid={owner},mode=0700"})
    running.wait_ready("postgres", "pw", "app")
    assert running.query("SELECT current_database()", user="postgres", password="pw", dbname="app") == [("app",)]
    top = running.container.top(ps_args="-o pid,uid,comm")["Processes"]
    assert {uid for _, uid, _ in top} == {owner}, f"not every process runs as {owner}: {top}"


def test_sigterm_is_a_fast_shutdown(launch: Callable[..., Running]) -> None:
    running = launch(environment={"POSTGRES_PASSWORD": "pw"})
    running.wait_ready("postgres", "pw", "postgres")
    with running.connect("postgres", "pw", "postgres"):  # a client still connected: "smart" would wait
        started = time.monotonic()
        running.container.kill(signal="SIGTERM")
        status = running.container.wait(timeout=30)
        elapsed = time.monotonic() - started
    assert status["StatusCode"] == 0, running.logs()[-2000:]
    assert "fast shutdown request" in running.logs()
    assert elapsed < 15, f"SIGTERM took {elapsed:.1f}s"


def test_image_is_at_most_200_mb(image: str) -> None:
    size = int(docker_client().images.get(image).attrs["Size"])
    print(f"{image}: {size} bytes")
    assert size <= MAX_IMAGE_BYTES, f"{image} is {size / 1e6:.1f} MB (limit {MAX_IMAGE_BYTES / 1e6:.0f} MB)"
