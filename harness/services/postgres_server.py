"""A throwaway PostgreSQL server process for the local-postgres stage.

Temporary data dir, a free loopback port (or a pinned one), a unix socket in a short folder,
all gone at `stop()`. No Docker: Debian's `postgresql` package puts initdb and postgres in
/usr/lib/postgresql/<v>/bin. As root it runs as the `postgres` account (PostgreSQL refuses root).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from harness.core.net import LOOPBACK, free_port, port_is_free
from harness.core.process import ManagedProcess
from harness.core.wait import NotYet, wait_until
from harness.errors import StageFailed, StageUnavailable

DEBIAN_BINDIRS = Path("/usr/lib/postgresql")
SUPERUSER = "postgres"
#: the OS account the server runs as when stageproof runs as root (initdb and postgres refuse root)
SERVICE_ACCOUNT = "postgres"
#: AF_UNIX paths hold 107 bytes; the server adds "/.s.PGSQL.<port>" to its socket folder
SOCKET_FOLDER_MAX = 107 - len("/.s.PGSQL.65535")
INSTALL_HINT = ("install Debian's postgresql (scripts/setup-machine.sh does) or point the stage at a running "
                "PostgreSQL server")


class PostgresServer:
    """Start with `start()`, hand out `url()`, always `stop()`: process, data and socket folders gone."""

    def __init__(self, *, database: str, user: str, password: str, port: int | None = None,
                 start_timeout: float = 60.0, prefix: str = "stageproof-postgres-",
                 on_change: Callable[[], None] | None = None) -> None:
        """`port`: pinned, or None for a free one; `prefix` names the temporary folder; `on_change` is
        called as soon as a folder or a process exists, so the owner can record them first."""
        self.database = database
        self.user = user
        self.password = password
        self.pinned_port = port
        self.start_timeout = start_timeout
        self.prefix = prefix
        self._on_change = on_change or (lambda: None)
        self.port = 0
        self._workdir: Path | None = None
        self._socket_dir: Path | None = None
        self._process: ManagedProcess | None = None
        self._bindir: Path | None = None
        self._as_account: list[str] = []

    def start(self) -> PostgresServer:
        """initdb a fresh data dir, start the server on its port, create the database and user."""
        self._bindir = find_bindir()
        account = service_account()
        self.port = self._choose_port()
        self._workdir = Path(tempfile.mkdtemp(prefix=self.prefix))
        self._on_change()
        self._socket_dir = _socket_folder(self._workdir)
        self._on_change()
        if account is not None:
            self._hand_over(account)
        self._initdb(self._bindir / "initdb")
        self.resume()
        return self

    def _choose_port(self) -> int:
        if self.pinned_port is None:
            return free_port()
        if not port_is_free(self.pinned_port):
            raise StageFailed(f"port {self.pinned_port} on {LOOPBACK}, pinned for the throwaway PostgreSQL, is taken "
                              f"(`ss -ltnp 'sport = :{self.pinned_port}'` shows by what): stop that, pin another "
                              "port, or leave it unset for a free one")
        return self.pinned_port

    def _hand_over(self, account: pwd.struct_passwd) -> None:
        """Running as root: the folders go to the service account, and the commands run as it."""
        for folder in self.folders:
            os.chown(folder, account.pw_uid, account.pw_gid)
            _check_reachable(folder, account)
        setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
        self._as_account = [setpriv, f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--init-groups"]

    def _initdb(self, initdb: Path) -> None:
        """In a process group of our own, like the server: an interrupted `stop()` ends it first."""
        assert self._workdir is not None
        self._process = ManagedProcess("initdb", [
            *self._as_account, str(initdb), "-D", str(self.datadir), "-U", SUPERUSER, "-E", "UTF8", "--no-locale",
            "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "--no-instructions",
        ], log_path=self._workdir / "initdb.log").start()
        self._on_change()
        try:
            code = self._process.wait(timeout=self.start_timeout)
        except subprocess.TimeoutExpired as err:
            raise StageFailed(f"initdb did not finish in {self.start_timeout:.0f}s:\n{self.logs()[-2000:]}") from err
        if code != 0:
            raise StageFailed(f"initdb exited with {code}:\n{self.logs()[-2000:]}")
        self._process = None

    @property
    def pid(self) -> int | None:
        """The process group of the server (or, while initialising, of initdb)."""
        return self._process.pid if self._process else None

    @property
    def workdir(self) -> Path | None:
        return self._workdir

    @property
    def socket_dir(self) -> Path | None:
        """`workdir` itself when its path is short enough, else a folder of its own in /tmp."""
        return self._socket_dir

    @property
    def folders(self) -> list[Path]:
        """Every folder this server made (what a leak audit looks for)."""
        return [folder for folder in dict.fromkeys((self._workdir, self._socket_dir)) if folder is not None]

    @property
    def datadir(self) -> Path:
        assert self._workdir is not None
        return self._workdir / "data"

    def pause(self) -> None:
        """Stop the server but keep its data (a fast shutdown: sessions are cut), as in a restart."""
        if self._process is None:
            return
        if self._process.exit_code() is None and self._process.pid is not None:
            os.kill(self._process.pid, signal.SIGINT)  # to the postmaster alone: fast shutdown
            with contextlib.suppress(subprocess.TimeoutExpired):  # then stop() ends the whole group
                self._process.wait(timeout=self.start_timeout)
        self._process.stop()
        self._process = None

    def crash(self) -> None:
        """SIGKILL the server mid-work (no shutdown: it recovers from its WAL on the next start), then
        start it again on the same data."""
        if self._process is not None:
            self._process.kill()
            self._process = None
        self.resume()

    def resume(self) -> None:
        """(Re)start the server on the same port and data dir and wait until it answers."""
        assert self._workdir is not None and self._socket_dir is not None and self._bindir is not None
        self._process = ManagedProcess("postgres", [
            *self._as_account, str(self._bindir / "postgres"), "-D", str(self.datadir), "-p", str(self.port),
            "-k", str(self._socket_dir), "-c", f"listen_addresses={LOOPBACK}",
            # a throwaway: the OS page cache is durable enough against a crash of the server (not of the
            # machine), so no fsync; but a commit is acknowledged only once its WAL is written, so a
            # SIGKILLed server keeps every acknowledged write (the crash checks rely on it)
            "-c", "fsync=off", "-c", "full_page_writes=off",
        ], log_path=self._workdir / "postgres.log").start()
        self._on_change()
        wait_until(self._create_database, what=f"PostgreSQL on {LOOPBACK}:{self.port} to accept connections",
                   timeout=self.start_timeout, retry_on=(NotYet,), diagnostics=self.logs)

    def url(self) -> str:
        return postgres_url(user=self.user, password=self.password, host=LOOPBACK, port=self.port,
                            database=self.database)

    def admin_url(self) -> str:
        """The superuser over the unix socket (trusted there: the folder is the server's own, 0700)."""
        assert self._socket_dir is not None
        return f"postgresql://{SUPERUSER}@/postgres?host={quote(str(self._socket_dir), safe='')}&port={self.port}"

    def logs(self) -> str:
        """initdb's and the server's output (kept across pause/resume until `stop()`)."""
        logs = [self._workdir / name for name in ("initdb.log", "postgres.log")] if self._workdir else []
        return "".join(path.read_text(errors="replace") for path in logs if path.exists())

    def stop(self) -> None:
        self.pause()
        for folder in self.folders:
            shutil.rmtree(folder, ignore_errors=True)
        self._workdir = self._socket_dir = None

    def _create_database(self) -> None:
        """Connect as the superuser over the socket; create the database and the app's user."""
        if self._process is not None and self._process.exit_code() is not None:
            raise StageFailed(f"postgres exited with {self._process.exit_code()}:\n{self.logs()[-2000:]}")
        try:
            conn = psycopg.connect(self.admin_url(), connect_timeout=2, autocommit=True)
        except psycopg.OperationalError as err:
            raise NotYet(error_message(err)) from err
        with conn:
            ensure_database(conn, self.database, self.user, self.password)


def postgres_url(*, user: str, password: str, host: str, port: int, database: str) -> str:
    """`postgresql://user:pass@host:port/db`, every part percent-quoted."""
    return f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/{quote(database, safe='')}"


def ensure_database(conn: psycopg.Connection[Any], database: str, user: str, password: str) -> None:
    """On an autocommit superuser connection: login role `user` with `password`, and `database` it owns."""
    role = sql.Identifier(user)
    known = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
    verb = "ALTER" if known else "CREATE"
    conn.execute(sql.SQL(verb + " ROLE {} WITH LOGIN PASSWORD {}").format(role, sql.Literal(password)))
    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), role))


def error_message(error: BaseException) -> str:
    """The server's words, without libpq's `connection to server at ... failed:` preamble."""
    text = str(error).strip()
    return text.rsplit("failed: ", 1)[-1] if text.startswith("connection") else text


def find_bindir() -> Path:
    """The folder with initdb and postgres: on PATH (other distributions), else Debian's newest."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    versions = [path for path in DEBIAN_BINDIRS.glob("*/bin") if (path / "initdb").exists()]
    if not versions:
        raise StageUnavailable(f"no PostgreSQL server (initdb) on PATH or in {DEBIAN_BINDIRS}/<version>/bin: "
                               f"{INSTALL_HINT}")
    return max(versions, key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0)


def postgres_missing() -> str | None:
    """None when a throwaway PostgreSQL server can be started here, else what to install."""
    try:
        find_bindir()
        service_account()
    except StageUnavailable as err:
        return str(err)
    return None


def service_account() -> pwd.struct_passwd | None:
    """None when not root; as root, the account the server runs as (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVICE_ACCOUNT)
    except KeyError:
        raise StageUnavailable(f"running as root, PostgreSQL needs an unprivileged `{SERVICE_ACCOUNT}` user to run "
                               f"as (it refuses root), and there is none: {INSTALL_HINT}") from None


def _socket_folder(workdir: Path) -> Path:
    """`workdir` itself when its path leaves room for the socket's name, else a short /tmp folder."""
    if len(str(workdir)) <= SOCKET_FOLDER_MAX:
        return workdir
    return Path(tempfile.mkdtemp(prefix="sp-pg-", dir="/tmp"))


def _check_reachable(folder: Path, account: pwd.struct_passwd) -> None:
    """Fail clearly when the service account cannot enter every folder above `folder`."""
    for parent in folder.parents:
        info = parent.stat()
        bit = stat.S_IXUSR if info.st_uid == account.pw_uid else (
            stat.S_IXGRP if info.st_gid == account.pw_gid else stat.S_IXOTH)
        if not info.st_mode & bit:
            raise StageUnavailable(f"PostgreSQL runs as `{account.pw_name}` here (stageproof runs as root, which it "
                                   f"refuses), and `{account.pw_name}` cannot enter {parent}: use a temporary folder "
                                   "every user can enter (TMPDIR=/tmp)")
