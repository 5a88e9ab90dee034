"""A throwaway MariaDB server process (MySQL protocol) for the local-mysql stage.

Temporary datadir, a free loopback port, removed in `stop()`. No Docker needed: Debian's
`mariadb-server` package provides `mariadb-install-db` and `mariadbd`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pymysql

from harness.core.net import LOOPBACK, claim_port
from harness.core.process import ManagedProcess
from harness.core.wait import wait_until
from harness.errors import StageFailed, StageUnavailable

SERVER_BINARIES = ("mariadbd", "mysqld")
INSTALL_BINARIES = ("mariadb-install-db", "mysql_install_db")


class MariaDBServer:
    """Start with `start()`, hand out `url(...)`, always `stop()`."""

    def __init__(self, *, database: str, user: str, password: str, start_timeout: float = 60,
                 prefix: str = "stageproof-mariadb-", on_change: Callable[[], None] | None = None,
                 port: int | None = None) -> None:
        """`prefix` names the temporary folder; `on_change` is called as soon as the folder or the
        server process exists, so the owner can record them before anything can interrupt it;
        `port` pins the port (an app that always connects to 3306), else a free one is taken."""
        self.database = database
        self.user = user
        self.password = password
        self.start_timeout = start_timeout
        self.prefix = prefix
        self._on_change = on_change or (lambda: None)
        self._pinned = port
        self.port = 0
        self._workdir: Path | None = None
        self._process: ManagedProcess | None = None

    def start(self) -> MariaDBServer:
        """Initialise a fresh datadir on a free port, start the server, create db and user."""
        installer = _find(INSTALL_BINARIES)
        self.port = claim_port(self._pinned, "database.port", "the throwaway MariaDB")
        self._workdir = Path(tempfile.mkdtemp(prefix=self.prefix))
        self._on_change()
        self._install([installer, "--no-defaults", f"--datadir={self.datadir}",
                       "--auth-root-authentication-method=socket", "--skip-test-db", f"--user={_os_user()}"])
        self.resume()
        return self

    def _install(self, argv: list[str]) -> None:
        """Initialise the datadir in a process group of our own, like the server: an interrupted
        `stop()` ends the installer and the bootstrap server it forks before removing the folder
        (a Ctrl-C to the terminal's group would leave that server writing into it)."""
        assert self._workdir is not None
        self._process = ManagedProcess("mariadb-install-db", argv, log_path=self._workdir / "install.log").start()
        self._on_change()
        try:
            code = self._process.wait(timeout=self.start_timeout)
        except subprocess.TimeoutExpired as err:
            raise StageFailed(f"mariadb-install-db did not finish in {self.start_timeout:.0f}s:\n"
                              f"{self._process.output()[-2000:]}") from err
        if code != 0:
            raise StageFailed(f"mariadb-install-db exited with {code}:\n{self._process.output()[-2000:]}")
        self._process = None

    @property
    def pid(self) -> int | None:
        """The process group of the server (or, while initialising, of the installer)."""
        return self._process.pid if self._process else None

    @property
    def workdir(self) -> Path | None:
        return self._workdir

    @property
    def datadir(self) -> Path:
        assert self._workdir is not None
        return self._workdir / "data"

    def pause(self) -> None:
        """Stop the server but keep its data: a database outage, as in a restart."""
        if self._process is not None:
            self._process.stop()

    def crash(self) -> None:
        """SIGKILL the server mid-work (no shutdown: InnoDB recovers on the next start), then start
        it again on the same data."""
        if self._process is not None:
            self._process.kill()
        self.resume()

    def resume(self) -> None:
        """(Re)start the server on the same port and datadir and wait until it answers."""
        assert self._workdir is not None
        self._process = ManagedProcess("mariadbd", [
            _find(SERVER_BINARIES), "--no-defaults", f"--datadir={self.datadir}", f"--socket={self.socket}",
            f"--port={self.port}", f"--bind-address={LOOPBACK}", f"--user={_os_user()}",
            f"--pid-file={self._workdir / 'mariadbd.pid'}", "--skip-log-bin", "--innodb-buffer-pool-size=32M",
            "--skip-name-resolve", "--character-set-server=utf8mb4",  # as the container image
        ], log_path=self._workdir / "mariadbd.log").start()
        self._on_change()
        wait_until(self._create_database, what=f"MariaDB on {LOOPBACK}:{self.port} to accept connections",
                   timeout=self.start_timeout, retry_on=(pymysql.err.OperationalError,),
                   diagnostics=self._process.output)

    @property
    def socket(self) -> Path:
        """A short name: the whole path must stay under AF_UNIX's 107 bytes in deep temp folders."""
        assert self._workdir is not None
        return self._workdir / "sock"

    def url(self) -> str:
        user, password = quote(self.user, safe=""), quote(self.password, safe="")
        return f"mysql://{user}:{password}@{LOOPBACK}:{self.port}/{quote(self.database, safe='')}"

    def logs(self) -> str:
        return self._process.output() if self._process else ""

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def _create_database(self) -> None:
        """Connect as root over the socket; create the database and the app's user."""
        if self._process is not None and self._process.exit_code() is not None:
            raise StageFailed(f"mariadbd exited with {self._process.exit_code()}:\n{self.logs()[-2000:]}")
        conn = pymysql.connect(unix_socket=str(self.socket), user="root", connect_timeout=2)
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE IF NOT EXISTS `{self.database}`")
                cur.execute("CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", (self.user, self.password))
                cur.execute(f"GRANT ALL ON `{self.database}`.* TO %s@'%%'", (self.user,))
            conn.commit()
        finally:
            conn.close()


def mariadb_missing() -> str | None:
    """None when a MariaDB/MySQL server can be started here, else what to install."""
    try:
        _find(SERVER_BINARIES)
        _find(INSTALL_BINARIES)
    except StageUnavailable as err:
        return str(err)
    return None


def _find(candidates: tuple[str, ...]) -> str:
    for name in candidates:
        path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
        if path:
            return path
    raise StageUnavailable(
        f"none of {', '.join(candidates)} found: install Debian's mariadb-server "
        "(scripts/setup-machine.sh does) or set DATABASE_URL to a running MySQL server"
    )


def _os_user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name
