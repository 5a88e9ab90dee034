"""The docker stage: the talk's manual linking, step by step, through the Docker SDK.

A user-defined network, the database container (data in a named volume), a single-use seed
container that must exit 0, then the app container published on a free 127.0.0.1 port. Every
object carries the run's labels; `down()` removes by label, so a half-finished `up()` (a failure,
Ctrl-C) is cleaned up as completely as a finished one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.config import Settings
from harness.errors import StageFailed
from harness.images.build import ensure_images
from harness.net import LOOPBACK, free_port
from harness.stage import Deployment, Stage, register
from harness.stages.containers import (
    INTERRUPTED_SETTLE,
    STOP_TIMEOUT,
    container_identity,
    container_logs,
    docker_client,
    docker_missing,
    fail_if_exited,
    mysql_url,
    remove_labelled,
    remove_run,
    run_labels,
)
from harness.wait import http_ok, wait_until

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

DB_PORT = 3306
SEED_COMMAND = ["python", "-m", "app.seed"]


@register("docker")
class DockerStage(Stage):
    """Network, database, seed, app: four explicit steps, each one visible in `docker ps -a`."""

    tests_folder = "docker"
    capabilities = frozenset({"restart_app", "stop_database", "app_identity", "app_container"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client: DockerClient | None = None
        self._db: Container | None = None
        self._app: Container | None = None
        self._seed_logs = ""
        self._deployment: Deployment | None = None
        self._up_complete = False

    @property
    def prefix(self) -> str:
        return f"stageproof-{self.run_id}"

    # -- the Stage protocol ---------------------------------------------------------------
    def up(self) -> Deployment:
        if self._deployment is not None:
            return self._deployment
        images = ensure_images(self.settings, release=self.release)
        self._client = client = docker_client()
        labels = run_labels(self.run_id, self.name)
        network = client.networks.create(f"{self.prefix}-net", driver="bridge", labels=labels)
        volume = client.volumes.create(f"{self.prefix}-db-data", labels=labels)
        self._db = client.containers.run(
            images["db"], name=f"{self.prefix}-db", detach=True, network=network.name, labels=labels,
            environment=self._db_env(), volumes={volume.name: {"bind": "/var/lib/mysql", "mode": "rw"}})
        self._seed(images["app"], network.name, labels)
        port = free_port()
        self._app = client.containers.run(
            images["app"], name=f"{self.prefix}-web", detach=True, network=network.name, labels=labels,
            environment=self._app_env(), ports={f"{self.settings.app.port}/tcp": (LOOPBACK, port)},
            read_only=True, tmpfs={"/tmp": "rw,nosuid,nodev"}, stop_signal="SIGTERM")
        self._deployment = Deployment(self.name, f"http://{LOOPBACK}:{port}", self.release, self.settings.app.token)
        self._wait_ready()
        self._up_complete = True
        return self._deployment

    def down(self) -> None:
        client = self._client or docker_client()
        remove_run(client, self.name, self.run_id, settle=0.0 if self._up_complete else INTERRUPTED_SETTLE)
        self._db = self._app = None
        self._deployment = None
        self._up_complete = False

    def logs(self) -> str:
        return (f"--- app ---\n{container_logs(self._app)}\n--- seed ---\n{self._seed_logs}\n"
                f"--- database ---\n{container_logs(self._db, tail=60)}")

    @classmethod
    def availability(cls, settings: Settings) -> str | None:
        return docker_missing()

    @classmethod
    def reap(cls, settings: Settings) -> list[str]:
        """Everything any docker-stage run left behind (a killed run never reached `down()`)."""
        return remove_labelled(docker_client(), cls.name)

    # -- capabilities ---------------------------------------------------------------------
    def app_container(self) -> str:
        """The app container's id, for checks that look inside it (`docker top`, `docker logs`)."""
        return self._running(self._app, "app").id

    def app_identity(self) -> str:
        return container_identity(self._running(self._app, "app"))

    def restart_app(self) -> None:
        """`docker restart`: SIGTERM, gunicorn drains, the same container starts again."""
        self._running(self._app, "app").restart(timeout=STOP_TIMEOUT)
        self._wait_ready()

    def stop_database(self) -> None:
        self._running(self._db, "database").stop(timeout=STOP_TIMEOUT)

    def start_database(self) -> None:
        self._running(self._db, "database").start()

    # -- pieces --------------------------------------------------------------------------
    def _seed(self, image: str, network: str, labels: dict[str, str]) -> None:
        """Run the single-use init container to completion; anything but exit 0 fails the stage."""
        assert self._client is not None
        seed = self._client.containers.run(
            image, SEED_COMMAND, name=f"{self.prefix}-seed", detach=True, network=network, labels=labels,
            environment=self._app_env(), read_only=True, tmpfs={"/tmp": "rw,nosuid,nodev"})
        try:
            result = seed.wait(timeout=self.settings.stages.docker.up_timeout)
            self._seed_logs = container_logs(seed)
        finally:
            seed.remove(force=True, v=True)
        if result.get("StatusCode") != 0:
            raise StageFailed(f"the seed container exited with {result.get('StatusCode')}:\n{self._seed_logs[-3000:]}")

    def _wait_ready(self) -> None:
        assert self._deployment is not None and self._app is not None
        url = f"{self._deployment.base_url}{self.settings.app.ready_path}"
        probe, app = http_ok(url), self._app

        def ready() -> object:
            fail_if_exited(app, "the app container")
            return probe()

        wait_until(ready, what=f"the app container to be ready at {url}",
                   timeout=self.settings.stages.docker.up_timeout, diagnostics=self.logs)

    def _db_env(self) -> dict[str, str]:
        db = self.settings.database
        return {"MYSQL_ROOT_PASSWORD": db.root_password, "MYSQL_DATABASE": db.name,
                "MYSQL_USER": db.user, "MYSQL_PASSWORD": db.password}

    def _app_env(self) -> dict[str, str]:
        """Config only through the environment; the database is found by container name."""
        names = self.settings.app.env
        env = {names.database_url: mysql_url(self.settings.database, f"{self.prefix}-db:{DB_PORT}"),
               names.release: self.release, names.port: str(self.settings.app.port)}
        if self.settings.app.token:
            env[names.token] = self.settings.app.token
        return env

    @staticmethod
    def _running(container: Container | None, what: str) -> Container:
        if container is None:
            raise StageFailed(f"the docker stage is not up: no {what} container")
        return container
