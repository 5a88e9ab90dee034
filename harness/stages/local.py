"""The laptop stage: the app as a real gunicorn process on 127.0.0.1, on sqlite or MySQL.

`local-sqlite` seeds a temporary sqlite file; `local-mysql` uses the MySQL server named by
DATABASE_URL when given, else a throwaway MariaDB process. No Docker needed for either.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from harness.config import Settings
from harness.errors import CapabilityMissing, StageFailed
from harness.net import LOOPBACK, free_port
from harness.process import ManagedProcess
from harness.run import run
from harness.services.mariadb import MariaDBServer, mariadb_missing
from harness.stage import Deployment, Stage, register
from harness.wait import http_ok, wait_until


class LocalStage(Stage):
    """Seed, then serve; subclasses provide the database URL."""

    tests_folder = "local"
    capabilities = frozenset({"restart_app", "app_identity"})

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._workdir: Path | None = None
        self._server: ManagedProcess | None = None
        self._deployment: Deployment | None = None
        self._port = 0

    # -- what subclasses decide ------------------------------------------------------------
    def database_url(self, workdir: Path) -> str:
        raise NotImplementedError

    def database_logs(self) -> str:
        return ""

    def stop_database_server(self) -> None:
        """Stop whatever backing service this stage started (none by default)."""

    # -- the Stage protocol ---------------------------------------------------------------
    def up(self) -> Deployment:
        if self._deployment is not None:
            return self._deployment
        self._workdir = Path(tempfile.mkdtemp(prefix=f"stageproof-{self.name}-{self.run_id}-"))
        self._env = self._app_env(self.database_url(self._workdir))
        commands = self.settings.app.local
        run(self._argv(commands.seed), cwd=commands.workdir, env=self._env,
            timeout=self.settings.stages.local.up_timeout)
        self._port = int(self._env[self.settings.app.env.port])
        self._start_server()
        self._deployment = Deployment(self.name, f"http://{LOOPBACK}:{self._port}", self.release,
                                      self.settings.app.token)
        return self._deployment

    def down(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        self.stop_database_server()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        self._deployment = None

    def logs(self) -> str:
        app = self._server.output() if self._server else ""
        return f"--- app ---\n{app}\n--- database ---\n{self.database_logs()}"

    def app_identity(self) -> str:
        return f"pid {self._server.pid if self._server else None}"

    def restart_app(self) -> None:
        """Stop the gunicorn process (SIGTERM, graceful) and start a fresh one on the same port."""
        if self._server is not None:
            self._server.stop()
        self._start_server()

    # -- pieces --------------------------------------------------------------------------
    def _start_server(self) -> None:
        assert self._workdir is not None
        commands = self.settings.app.local
        self._server = ManagedProcess(f"{self.name} app", self._argv(commands.serve), cwd=commands.workdir,
                                      env={**os.environ, **self._env},
                                      log_path=self._workdir / "app.log").start()
        url = f"http://{LOOPBACK}:{self._port}{self.settings.app.ready_path}"
        wait_until(self._ready_probe(url), what=f"{self.name} app to be ready at {url}",
                   timeout=self.settings.stages.local.up_timeout, diagnostics=self.logs)

    def _ready_probe(self, url: str) -> Callable[[], object]:
        """Readiness, but fail at once (not at the deadline) when the process has died."""
        probe = http_ok(url)

        def ready() -> object:
            code = self._server.exit_code() if self._server else None
            if code is not None:
                raise StageFailed(f"the app process exited with {code}:\n{self.logs()[-3000:]}")
            return probe()

        return ready

    def _app_env(self, database_url: str) -> dict[str, str]:
        names = self.settings.app.env
        env = {
            names.database_url: database_url,
            names.release: self.release,
            names.host: LOOPBACK,
            names.port: str(free_port()),
        }
        if self.settings.app.token:
            env[names.token] = self.settings.app.token
        return env

    @staticmethod
    def _argv(template: list[str]) -> list[str]:
        return [part.replace("{python}", sys.executable) for part in template]


@register("local-sqlite")
class LocalSqlite(LocalStage):
    """The embedded default: a temporary sqlite file."""

    def database_url(self, workdir: Path) -> str:
        return f"sqlite:///{workdir / 'users.db'}"


@register("local-mysql")
class LocalMysql(LocalStage):
    """MySQL protocol: $DATABASE_URL if it names a MySQL server, else a throwaway MariaDB."""

    capabilities = LocalStage.capabilities | {"stop_database"}

    _mariadb: MariaDBServer | None = None

    @classmethod
    def availability(cls, settings: Settings) -> str | None:
        if os.environ.get(settings.app.env.database_url, "").startswith(("mysql", "mariadb")):
            return None
        return mariadb_missing()

    def database_url(self, workdir: Path) -> str:
        given = os.environ.get(self.settings.app.env.database_url, "")
        if given.startswith(("mysql://", "mysql+pymysql://", "mariadb://")):
            return given
        db = self.settings.database
        self._mariadb = MariaDBServer(database=db.name, user=db.user, password=db.password,
                                      start_timeout=self.settings.stages.local.up_timeout)
        self._mariadb.start()  # assigned first: down() cleans a half-started server too
        return self._mariadb.url()

    def database_logs(self) -> str:
        return self._mariadb.logs() if self._mariadb else ""

    def stop_database(self) -> None:
        self._own_mariadb().pause()

    def start_database(self) -> None:
        self._own_mariadb().resume()

    def _own_mariadb(self) -> MariaDBServer:
        if self._mariadb is None:
            raise CapabilityMissing("local-mysql controls the database only when it started it (no DATABASE_URL)")
        return self._mariadb

    def stop_database_server(self) -> None:
        if self._mariadb is not None:
            self._mariadb.stop()
            self._mariadb = None

