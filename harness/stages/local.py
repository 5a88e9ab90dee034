"""The laptop stage: the app as a real gunicorn process on 127.0.0.1, on sqlite or MySQL.

`local-sqlite` seeds a temporary sqlite file; `local-mysql` uses the MySQL server named by
`stages.local.mysql_url` when given, else a throwaway MariaDB process. No Docker needed for either.
The app's environment comes from `[app.env]` (harness.appenv), its seed from `[seed]`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from harness.appenv import DatabaseEndpoint, app_env
from harness.config import Settings, child_env
from harness.core.net import LOOPBACK, free_port, port_is_free
from harness.core.process import ManagedProcess
from harness.core.wait import app_ready, wait_until
from harness.errors import CapabilityMissing, StageFailed
from harness.services.mariadb import MariaDBServer, mariadb_missing
from harness.services.seed import endpoint_from_url, local_argv, local_commands, seed_database
from harness.stage import Deployment, Stage, register
from harness.stages import local_reap


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
    def database(self, workdir: Path) -> DatabaseEndpoint:
        """Start (or find) the stage's database; where the app finds it."""
        raise NotImplementedError

    def database_logs(self) -> str:
        return ""

    def database_pid(self) -> int | None:
        """The process group of the database this stage started (None: it started none)."""
        return None

    def database_folders(self) -> list[Path]:
        return []

    def stop_database_server(self) -> None:
        """Stop whatever backing service this stage started (none by default)."""

    # -- the Stage protocol ---------------------------------------------------------------
    def up(self) -> Deployment:
        if self._deployment is not None:
            return self._deployment
        self._workdir = Path(tempfile.mkdtemp(prefix=f"stageproof-{self.name}-{self.run_id}-"))
        self._record_owner()  # from the first folder on: a killed run is reaped whenever it dies
        database = self.database(self._workdir)
        seed_database(self.settings, database, env=self._seed_env(database),
                      timeout=self.settings.stages.local.up_timeout)
        self._port = free_port() if self.settings.app.port_from_env else self._fixed_port()
        self._env = app_env(self.settings, stage=self.name, release=self.release, db=database,
                            port=self._port, host=LOOPBACK)
        self._start_server()
        self._deployment = Deployment(self.name, f"http://{LOOPBACK}:{self._port}", self.release,
                                      self.settings.app.token)
        return self._deployment

    @classmethod
    def reap(cls, settings: Settings, *, kept: bool = False) -> list[str]:
        """Processes and folders of local runs whose owner is gone (killed, or `up --detach`)."""
        return local_reap.reap(cls.name)

    def _record_owner(self) -> None:
        """What `reap` must end and remove should this process die without `down()`; rewritten
        whenever a process or folder of the stage appears."""
        assert self._workdir is not None
        groups = [pid for pid in (self._server.pid if self._server else None, self.database_pid()) if pid]
        local_reap.write_owner(self._workdir, run_id=self.run_id, stage=self.name, groups=groups,
                               folders=self.database_folders())

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
        commands = local_commands(self.settings)
        self._server = ManagedProcess(f"{self.name} app", local_argv(commands.serve), cwd=commands.workdir,
                                      env=child_env(self._env),
                                      log_path=self._workdir / "app.log").start()
        self._record_owner()
        what, probe = app_ready(self.settings, f"http://{LOOPBACK}:{self._port}")
        wait_until(self._ready_probe(probe), what=f"{self.name} app to be ready ({what})",
                   timeout=self.settings.stages.local.up_timeout, diagnostics=self.logs)

    def _ready_probe(self, probe: Callable[[], object]) -> Callable[[], object]:
        """Readiness, but fail at once (not at the deadline) when the process has died."""

        def ready() -> object:
            code = self._server.exit_code() if self._server else None
            if code is not None:
                raise StageFailed(f"the app process exited with {code}:\n{self.logs()[-3000:]}")
            return probe()

        return ready

    def _seed_env(self, database: DatabaseEndpoint) -> dict[str, str]:
        """The app's environment for the seed command (its port is irrelevant there)."""
        return app_env(self.settings, stage=self.name, release=self.release, db=database,
                       port=self.settings.app.port, host=LOOPBACK)

    def _fixed_port(self) -> int:
        """An app that reads no port variable listens on `app.port`: it must be free here."""
        port = self.settings.app.port
        if not port_is_free(port):
            raise StageFailed(f"the app listens on the fixed port {port} (no [app.env] variable carries "
                              f"${{port}}) and {LOOPBACK}:{port} is in use here")
        return port

    @classmethod
    def availability(cls, settings: Settings) -> str | None:
        return None if settings.app.local else "the config has no [app.local] (how to run the app as a process)"


@register("local-sqlite")
class LocalSqlite(LocalStage):
    """The embedded default: a temporary sqlite file."""

    def database(self, workdir: Path) -> DatabaseEndpoint:
        return DatabaseEndpoint.sqlite(str(workdir / "app.db"))


@register("local-mysql")
class LocalMysql(LocalStage):
    """MySQL protocol: `stages.local.mysql_url` if given, else a throwaway MariaDB process."""

    capabilities = LocalStage.capabilities | {"stop_database"}

    _mariadb: MariaDBServer | None = None

    @classmethod
    def availability(cls, settings: Settings) -> str | None:
        return super().availability(settings) or (None if settings.stages.local.mysql_url else mariadb_missing())

    def database(self, workdir: Path) -> DatabaseEndpoint:
        given = self.settings.stages.local.mysql_url
        if given:
            return endpoint_from_url(given)
        db = self.settings.database
        self._mariadb = MariaDBServer(database=db.name, user=db.user, password=db.password,
                                      start_timeout=self.settings.stages.local.up_timeout,
                                      prefix=f"stageproof-mariadb-{self.run_id}-", on_change=self._record_owner)
        self._mariadb.start()  # assigned first: down() cleans a half-started server too
        return DatabaseEndpoint.mysql(db, LOOPBACK, self._mariadb.port)

    def database_logs(self) -> str:
        return self._mariadb.logs() if self._mariadb else ""

    def database_pid(self) -> int | None:
        return self._mariadb.pid if self._mariadb else None

    def database_folders(self) -> list[Path]:
        return [self._mariadb.workdir] if self._mariadb and self._mariadb.workdir else []

    def stop_database(self) -> None:
        self._own_mariadb().pause()

    def start_database(self) -> None:
        self._own_mariadb().resume()

    def _own_mariadb(self) -> MariaDBServer:
        if self._mariadb is None:
            raise CapabilityMissing("local-mysql controls the database only when it started it (no mysql_url)")
        return self._mariadb

    def stop_database_server(self) -> None:
        if self._mariadb is not None:
            self._mariadb.stop()
            self._mariadb = None
