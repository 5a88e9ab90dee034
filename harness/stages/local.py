"""The laptop stage: the app as a real process on 127.0.0.1, in its own environment, on sqlite, MySQL
or PostgreSQL.

`local-sqlite` seeds a temporary sqlite file. `local-mysql` and `local-postgres` start a throwaway
server of their engine (harness/services/engine.py), or, given `stages.local.<engine>_url`, make a
run-unique database on that existing server with its account and drop it at the end. No Docker needed.
The app's environment comes from `[app.env]` (harness.appenv) and `[app.local]` (harness.stages.local_env).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from harness.appenv import DatabaseEndpoint, app_env
from harness.config import Settings, child_env, placeholders
from harness.core.net import LOOPBACK, free_port, port_is_free
from harness.core.process import ManagedProcess
from harness.core.wait import app_ready, wait_ready
from harness.errors import ConfigError, StageFailed
from harness.services.engine import DatabaseEngine, ThrowawayServer, endpoint, engine_named
from harness.stage import Capabilities, DatabaseControl, Deployment, Stage, register
from harness.stages import local_reap
from harness.stages.local_env import AppEnvironment, prepare, seed_database


class LocalStage(Stage):
    """Prepare the app's environment, start its database, seed, serve; subclasses own the database."""

    def __init__(self, settings: Settings, *, run_id: str, release: str) -> None:
        super().__init__(settings, run_id=run_id, release=release)
        self._workdir: Path | None = None
        self._server: ManagedProcess | None = None
        self._app: AppEnvironment | None = None
        self._env: dict[str, str] = {}
        self._port = 0

    def _database(self, workdir: Path) -> DatabaseEndpoint:
        """Start (or find) the stage's database; where the app finds it."""
        return DatabaseEndpoint.sqlite(str(workdir / "app.db"))

    def _stop_database(self) -> None:
        """Stop whatever backing service this stage started (none by default)."""

    def _database_logs(self) -> str:
        return ""

    def _owned(self) -> tuple[list[int], list[Path]]:
        """Process groups and folders of the database this stage started, for the owner marker."""
        return [], []

    def database_control(self) -> DatabaseControl | None:
        return None

    # -- the Stage interface ----------------------------------------------------------------
    def up(self) -> Deployment:
        local = self.settings.app.local
        if local is None:
            raise ConfigError("app.local: missing (how the app runs as a process here: workdir, serve)")
        timeout = self.settings.stages.local.up_timeout
        self._workdir = Path(tempfile.mkdtemp(prefix=f"stageproof-{self.name}-{self.run_id}-"))
        self._record_owner()  # from the first folder on: a killed run is reaped whenever it dies
        self._app = prepare(local, run_dir=self._workdir, timeout=max(timeout, 600))
        database = self._database(self._workdir)
        seed_database(self.settings, database, self._app, env=self._app_env(database, self.settings.app.port),
                      timeout=timeout)
        self._port = free_port() if self.settings.app.port_from_env else self._fixed_port()
        self._env = self._app_env(database, self._port)
        self._start_server()
        return Deployment(self.name, f"http://{LOOPBACK}:{self._port}", self.release, self.settings.app.token)

    def down(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._stop_database()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def logs(self) -> str:
        app = self._server.output() if self._server else ""
        return f"--- app ---\n{app}\n--- database ---\n{self._database_logs()}"

    @classmethod
    def availability(cls, settings: Settings) -> str | None:
        return None if settings.app.local else "the config has no [app.local] (how to run the app as a process)"

    @classmethod
    def reap(cls, settings: Settings, *, kept: bool = False) -> list[str]:
        """Processes and folders of local runs whose owner is gone (killed, or `up --detach`)."""
        return local_reap.reap(cls.name)

    def capabilities(self) -> Capabilities:
        database = self.database_control()
        withheld = {"container": f"{self.name} runs the app as a local process, not in a container",
                    "crash": f"{self.name} has no supervisor to restart a crashed process"}
        if database is None:
            withheld["database"] = self._why_no_database_control()
        return Capabilities(app=LocalApp(self), database=database, withheld=withheld)

    def _why_no_database_control(self) -> str:
        return f"{self.name} runs on an embedded sqlite file: there is no database server to stop"

    # -- the app process ----------------------------------------------------------------------
    def identity(self) -> str:
        return f"pid {self._server.pid if self._server else None}"

    def restart(self) -> None:
        """Stop the app process (SIGTERM, graceful) and start a fresh one on the same port."""
        if self._server is not None:
            self._server.stop()
        self._start_server()

    def _record_owner(self) -> None:
        """What `reap` must end and remove should this process die without `down()`; rewritten
        whenever a process or folder of the stage appears."""
        assert self._workdir is not None
        groups, folders = self._owned()
        groups = [pid for pid in (self._server.pid if self._server else None, *groups) if pid]
        local_reap.write_owner(self._workdir, run_id=self.run_id, stage=self.name, groups=groups, folders=folders)

    def _start_server(self) -> None:
        assert self._workdir is not None and self._app is not None and self.settings.app.local is not None
        self._server = ManagedProcess(f"{self.name} app", self._app.argv(self.settings.app.local.serve),
                                      cwd=self._app.workdir, env=child_env({**self._app.env, **self._env}),
                                      log_path=self._workdir / "app.log").start()
        self._record_owner()
        what, probe = app_ready(self.settings, f"http://{LOOPBACK}:{self._port}")
        wait_ready(self._ready_probe(probe), what=f"{self.name} app to be ready ({what})",
                   timeout=self.settings.stages.local.up_timeout, diagnostics=self.logs)

    def _ready_probe(self, probe: Callable[[], object]) -> Callable[[], object]:
        """Readiness, but fail at once (not at the deadline) when the process has died."""

        def ready() -> object:
            code = self._server.exit_code() if self._server else None
            if code is not None:
                app = self._server.output() if self._server else ""
                last = app.strip().splitlines()[-1:] or ["(no output)"]
                raise StageFailed(f"the app process exited with {code}: {last[0][:300]}\n--- app output ---\n"
                                  f"{app[-3000:]}\n{self._exit_hint()}".rstrip())
            return probe()

        return ready

    def _exit_hint(self) -> str:
        """What may explain an app that exits at start (said after its own output)."""
        return ""

    def _app_env(self, database: DatabaseEndpoint, port: int) -> dict[str, str]:
        return app_env(self.settings, stage=self.name, release=self.release, db=database, port=port, host=LOOPBACK)

    def _fixed_port(self) -> int:
        """An app that reads no port variable listens on `app.port`: nothing may listen there."""
        port = self.settings.app.port
        if not port_is_free(port):
            raise StageFailed(f"app.port: the app listens on the fixed port {port} (no [app.env] variable carries "
                              f"${{port}}) and something listens on {LOOPBACK}:{port} here: stop it")
        return port


class LocalApp:
    """AppControl of a local stage: the app process."""

    def __init__(self, stage: LocalStage) -> None:
        self._stage = stage

    def restart(self) -> None:
        self._stage.restart()

    def identity(self) -> str:
        return self._stage.identity()


@register("local-sqlite")
class LocalSqlite(LocalStage):
    """The embedded default: a temporary sqlite file."""


class LocalServerStage(LocalStage):
    """A database server of one engine: a throwaway one, or a run-unique database on the given one."""

    engine_name = "mysql"

    def __init__(self, settings: Settings, *, run_id: str, release: str) -> None:
        super().__init__(settings, run_id=run_id, release=release)
        self._throwaway: ThrowawayServer | None = None
        self._made: tuple[str, str] | None = None  # (admin URL, database) the run made on a given server

    @property
    def engine(self) -> DatabaseEngine:
        return engine_named(self.engine_name)

    @classmethod
    def availability(cls, settings: Settings) -> str | None:
        given = settings.stages.local.server_url(cls.engine_name)
        return super().availability(settings) or (None if given else engine_named(cls.engine_name).missing())

    def _database(self, workdir: Path) -> DatabaseEndpoint:
        given = self.settings.stages.local.server_url(self.engine_name)
        return self._on_given_server(given) if given else self._start_throwaway()

    def _start_throwaway(self) -> DatabaseEndpoint:
        db = self.settings.database
        self._throwaway = self.engine.throwaway(db, port=db.port, start_timeout=self.settings.stages.local.up_timeout,
                                                prefix=f"stageproof-{self.engine_name}-{self.run_id}-",
                                                on_change=self._record_owner)
        self._throwaway.start()  # assigned first: down() cleans a half-started server too
        return endpoint(self.engine, db, LOOPBACK, self._throwaway.port)

    def _on_given_server(self, url: str) -> DatabaseEndpoint:
        """A run-unique database on the server `url` names, made with its account (dropped in down()):
        a reused database would break a seed that is not idempotent. A permanent error (no such
        privilege, wrong password) is said at once, never retried."""
        parts = urlsplit(url)
        user, password = unquote(parts.username or ""), unquote(parts.password or "")
        name = f"{unquote(parts.path.lstrip('/')) or self.settings.database.name}_sp{self.run_id}"
        key = f"stages.local.{self.engine_name}_url"
        try:
            self.engine.create_database(url, name)
        except Exception as err:
            if self.engine.is_permanent(err):
                raise StageFailed(f"{key}: its account cannot make the run's database {name!r} ({err}): grant it "
                                  "the privilege to create (and drop) databases, or leave the key unset for a "
                                  "throwaway server") from err
            raise
        self._made = (url, name)
        self._record_owner()
        host, port = parts.hostname or LOOPBACK, parts.port or self.engine.default_port
        db = self.settings.database.model_copy(update={"user": user, "password": password})
        return endpoint(self.engine, db, host, port, name=name)

    def _stop_database(self) -> None:
        if self._throwaway is not None:
            self._throwaway.stop()
            self._throwaway = None
        if self._made is not None:
            url, name = self._made
            self.engine.drop_database(url, name)
            self._made = None

    def _database_logs(self) -> str:
        return self._throwaway.logs() if self._throwaway else ""

    def _owned(self) -> tuple[list[int], list[Path]]:
        server = self._throwaway
        if server is None:
            return [], []
        folder = server.workdir
        return [server.pid] if server.pid else [], [Path(str(folder))] if folder else []

    def database_control(self) -> DatabaseControl | None:
        return ServerOutage(self._throwaway) if self._throwaway is not None else None

    def _exit_hint(self) -> str:
        """An app that reads no database port connects to the default one, not the throwaway server's."""
        used = {name for template in self.settings.app.env.values() for name in placeholders(template)}
        if self._throwaway is None or self.settings.database.port is not None or used & {"db.port", "db.url"}:
            return ""
        default = self.engine.default_port
        return (f"(the server is on {self._throwaway.port}, no [app.env] variable says so: if the app always connects "
                f"to {default}, set [database] port = {default})")

    def _why_no_database_control(self) -> str:
        return (f"{self.name} controls the database only when it started it: stages.local.{self.engine_name}_url "
                "names a server of yours, which stageproof never stops")


class ServerOutage:
    """DatabaseControl of a throwaway server: stopped and started on the same data, or SIGKILLed."""

    def __init__(self, server: ThrowawayServer) -> None:
        self._server = server

    def stop(self) -> None:
        self._server.pause()

    def start(self) -> None:
        self._server.resume()

    def crash(self) -> None:
        self._server.crash()


@register("local-mysql")
class LocalMysql(LocalServerStage):
    """MySQL protocol: a throwaway MariaDB, or a run's database on `stages.local.mysql_url`."""

    engine_name = "mysql"


@register("local-postgres")
class LocalPostgres(LocalServerStage):
    """PostgreSQL: a throwaway server (initdb), or a run's database on `stages.local.postgres_url`."""

    engine_name = "postgres"
