"""The docker stage: the talk's manual linking, step by step, with testcontainers.

A user-defined network, the database container of the app's engine (data in a named volume, `[seed]
sql` in its init directory), a single-use seed container (`[seed] command`) that must exit 0, then
the app container published on a free 127.0.0.1 port, configured only by `[app.env]`. Every object
carries the run's labels; `down()` removes by label, so a half-finished `up()` (a failure, Ctrl-C) is
cleaned up as completely as a finished one.
"""

from __future__ import annotations

from harness.appenv import app_env, with_python
from harness.config import Settings
from harness.core.net import LOOPBACK, free_port
from harness.core.ownership import run_labels
from harness.core.wait import app_ready
from harness.errors import StageFailed
from harness.images.build import ensure_images
from harness.services.engine import endpoint, engine_for
from harness.stage import Capabilities, Deployment, Stage, register
from harness.stages.containers import (
    INTERRUPTED_SETTLE,
    STOP_TIMEOUT,
    AppInContainer,
    DatabaseInContainer,
    docker_client,
    docker_missing,
    remove_labelled,
    remove_run,
)
from harness.stages.docker_parts import LabelledNetwork, ProbeWaitStrategy, StageContainer, command_ready, start


@register("docker")
class DockerStage(Stage):
    """Network, database, seed, app: four explicit steps, each one visible in `docker ps -a`."""

    def __init__(self, settings: Settings, *, run_id: str, release: str) -> None:
        super().__init__(settings, run_id=run_id, release=release)
        self._db: StageContainer | None = None
        self._app: StageContainer | None = None
        self._seed_logs = ""
        self._base_url = ""
        self._up_complete = False

    @property
    def prefix(self) -> str:
        return f"stageproof-{self.run_id}"

    # -- the Stage interface ----------------------------------------------------------------
    def up(self) -> Deployment:
        images = ensure_images(self.settings, release=self.release)
        labels = run_labels(self.run_id, self.name)
        network = LabelledNetwork(f"{self.prefix}-net", labels).create()
        timeout = self.settings.stages.docker.up_timeout
        self._db = self._database(images.database, network, labels)
        start(self._db, command_ready(engine_for(self.settings).ready_command(), timeout))
        if self.settings.seed.command:
            self._seed(images.app, network, labels)
        port = free_port()
        self._base_url = f"http://{LOOPBACK}:{port}"
        self._app = self._app_container(images.app, network, labels).with_loopback_port(self.settings.app.port, port)
        start(self._app, self._ready_strategy("the app container to be ready"))
        self._up_complete = True
        return Deployment(self.name, self._base_url, self.release, self.settings.app.token, notes=images.notes())

    def down(self) -> None:
        remove_run(docker_client(), self.name, self.run_id, settle=0.0 if self._up_complete else INTERRUPTED_SETTLE)
        self._db = self._app = None
        self._up_complete = False

    def logs(self) -> str:
        app = self._app.logs_text() if self._app else "(no container)"
        db = self._db.logs_text(tail=60) if self._db else "(no container)"
        return f"--- app ---\n{app}\n--- seed ---\n{self._seed_logs}\n--- database ---\n{db}"

    @classmethod
    def availability(cls, settings: Settings) -> str | None:
        return docker_missing()

    @classmethod
    def reap(cls, settings: Settings, *, kept: bool = False) -> list[str]:
        """Everything any docker-stage run left behind (a killed run never reached `down()`)."""
        return remove_labelled(docker_client(), cls.name)

    def capabilities(self) -> Capabilities:
        app = AppInContainer(self.app_container_id, restart=self._restart, wait_ready=self._wait_ready)
        database = DatabaseInContainer(lambda: self._running(self._db, "database").get_container_id())
        return Capabilities(app=app, container=app, crash=app, database=database)

    def app_container_id(self) -> str:
        """The app container's id (for stageproof's own checks of the image it runs)."""
        return self._running(self._app, "app").get_container_id()

    # -- pieces --------------------------------------------------------------------------
    def _restart(self) -> None:
        """`docker restart`: SIGTERM, the app drains, the same container starts again."""
        self._running(self._app, "app").get_wrapped_container().restart(timeout=STOP_TIMEOUT)
        self._wait_ready()

    def _wait_ready(self) -> None:
        self._ready_strategy("the app container to be ready again").wait_until_ready(self._running(self._app, "app"))

    def _ready_strategy(self, what: str) -> ProbeWaitStrategy:
        described, probe = app_ready(self.settings, self._base_url)
        return ProbeWaitStrategy(probe, what=f"{what} ({described})", timeout=self.settings.stages.docker.up_timeout)

    def _database(self, image: str, network: LabelledNetwork, labels: dict[str, str]) -> StageContainer:
        """The database container: data in a labelled volume, `[seed] sql` in its init directory."""
        engine = engine_for(self.settings)
        volume = docker_client().volumes.create(f"{self.prefix}-db-data", labels=labels)
        db = StageContainer(image, name=f"{self.prefix}-db", labels=labels, network=network)
        db.with_envs(**engine.container_env(self.settings.database))
        db.with_volume_mapping(volume.name, engine.data_dir, "rw")
        for number, path in enumerate(self.settings.seed.sql, start=1):
            db.with_volume_mapping(str(path), f"{engine.init_dir}/{number:02d}-{path.name}", "ro")
        return db

    def _app_container(self, image: str, network: LabelledNetwork, labels: dict[str, str], *,
                       name: str = "web") -> StageContainer:
        """A container of the app image, configured only through its environment."""
        container = StageContainer(image, name=f"{self.prefix}-{name}", labels=labels, network=network)
        container.with_envs(**self._app_env()).with_options(stop_signal="SIGTERM")
        return container.with_read_only_root() if self.settings.stages.docker.read_only else container

    def _seed(self, image: str, network: LabelledNetwork, labels: dict[str, str]) -> None:
        """Run the single-use seed container to completion; anything but exit 0 fails the stage."""
        assert self.settings.seed.command is not None
        seed = self._app_container(image, network, labels, name="seed")
        seed.with_command(with_python(self.settings.seed.command, "python"))
        try:
            start(seed)
            code = seed.get_wrapped_container().wait(timeout=self.settings.stages.docker.up_timeout)["StatusCode"]
            self._seed_logs = seed.logs_text()
        finally:
            seed.stop()
        if code != 0:
            raise StageFailed(f"the seed container exited with {code}:\n{self._seed_logs[-3000:]}")

    def _app_env(self) -> dict[str, str]:
        """Config only through the environment; the database is found by container name."""
        database = endpoint(engine_for(self.settings), self.settings.database, f"{self.prefix}-db")
        return app_env(self.settings, stage=self.name, release=self.release, db=database,
                       port=self.settings.app.port, host="0.0.0.0")

    @staticmethod
    def _running(container: StageContainer | None, what: str) -> StageContainer:
        if container is None:
            raise StageFailed(f"the docker stage is not up: no {what} container")
        return container

