"""The compose stage: the docker stage's steps as one `docker compose up --wait`.

`stages/compose/compose.yaml` declares db (healthcheck, named volume), seed (one-shot, after db
is healthy) and web (after seed completed). Each run is its own compose project
(`stageproof-<run id>`) configured by an env file the stage writes, so two runs never collide.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

from harness.config import ComposeStage as ComposeSettings
from harness.config import Settings
from harness.errors import CommandFailed, ConfigError, StageFailed
from harness.images.build import ensure_images
from harness.net import LOOPBACK, free_port
from harness.run import run
from harness.stage import Deployment, Stage, register
from harness.stages.containers import (
    INTERRUPTED_SETTLE,
    OWNER_LABEL,
    STOP_TIMEOUT,
    docker_client,
    docker_missing,
    mysql_url,
    owner_alive,
    remove_labelled,
    remove_run,
    run_labels,
)
from harness.wait import http_ok, wait_until

WORKDIR_PREFIX = "stageproof-compose-"  # + <owner pid>-<run id>-: reap finds a dead run's folder


@register("compose")
class ComposeStage(Stage):
    """One compose project per run; `down()` is `compose down --volumes` plus a label sweep."""

    tests_folder = "compose"
    capabilities = frozenset({"restart_app", "stop_database", "app_identity", "app_container"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._workdir: Path | None = None
        self._deployment: Deployment | None = None
        self._up_complete = False

    @property
    def project(self) -> str:
        return f"stageproof-{self.run_id}"

    @property
    def config(self) -> ComposeSettings:
        if self.settings.stages.compose is None:
            raise ConfigError("stageproof.toml has no [stages.compose] section (file = the compose file)")
        return self.settings.stages.compose

    # -- the Stage protocol ---------------------------------------------------------------
    def up(self) -> Deployment:
        if self._deployment is not None:
            return self._deployment
        images = ensure_images(self.settings, release=self.release)
        self._workdir = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-{self.run_id}-"))
        port = free_port()
        self._write_env_file(images, port)
        self._deployment = Deployment(self.name, f"http://{LOOPBACK}:{port}", self.release, self.settings.app.token)
        self.compose_up()
        self._up_complete = True
        return self._deployment

    def down(self) -> None:
        if self._workdir is not None:
            self.compose("down", "--volumes", "--remove-orphans", "--timeout", str(STOP_TIMEOUT), check=False)
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        settle = 0.0 if self._up_complete else INTERRUPTED_SETTLE
        remove_run(docker_client(), self.name, self.run_id, settle=settle)  # what compose did not know of
        self._deployment = None
        self._up_complete = False

    def logs(self) -> str:
        if self._workdir is None:
            return "(compose stage is not up)"
        proc = self.compose("logs", "--no-color", "--timestamps", "--tail", "300", check=False)
        return proc.stdout + proc.stderr

    @classmethod
    def availability(cls, settings: Settings) -> str | None:
        return docker_missing(compose=True)

    @classmethod
    def reap(cls, settings: Settings) -> list[str]:
        """Every compose-stage project a killed run left, found by label (no env file needed),
        and the env-file folders of runs whose process is gone."""
        removed = remove_labelled(docker_client(), cls.name)
        host = socket.gethostname()
        for workdir in Path(tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*"):
            pid = workdir.name.removeprefix(WORKDIR_PREFIX).split("-")[0]
            if not owner_alive({OWNER_LABEL: f"{pid}@{host}"}):
                shutil.rmtree(workdir, ignore_errors=True)
                removed.append(f"folder {workdir}")
        return removed

    # -- capabilities ---------------------------------------------------------------------
    def app_container(self) -> str:
        """The web container's id, for checks that look inside it."""
        ids = self.compose("ps", "--all", "--quiet", self.config.service).stdout.split()
        if not ids:
            raise StageFailed(f"compose project {self.project} has no {self.config.service} container")
        return ids[0]

    def app_identity(self) -> str:
        container = self.app_container()
        started = run(["docker", "inspect", "--format", "{{.State.StartedAt}} restarts={{.RestartCount}}",
                       container]).stdout.strip()
        return f"container {container[:12]} started {started}"

    def restart_app(self) -> None:
        self.compose("restart", "--timeout", str(STOP_TIMEOUT), self.config.service)
        self._wait_ready()

    def stop_database(self) -> None:
        self.compose("stop", "--timeout", str(STOP_TIMEOUT), "db")

    def start_database(self) -> None:
        self.compose("start", "db")

    # -- compose itself (public for the compose-only checks) --------------------------------
    def compose_up(self) -> None:
        """`up --wait`: db healthy, seed exited 0, web healthy; never pulls or builds."""
        timeout = self.config.up_timeout
        try:
            self.compose("up", "--detach", "--wait", "--wait-timeout", str(int(timeout)), "--pull", "never",
                         "--no-build", timeout=timeout + 30)
        except CommandFailed as err:
            raise StageFailed(f"{err}\n--- compose logs ---\n{self.logs()[-6000:]}") from err
        self._wait_ready()

    def compose_down(self, *, volumes: bool) -> None:
        """`down` keeping (or with `volumes`, removing) the named database volume."""
        self.compose("down", "--timeout", str(STOP_TIMEOUT), *(["--volumes"] if volumes else []))

    def compose(self, *args: str, check: bool = True, timeout: float = 300) -> CompletedProcess[str]:
        """`docker compose` on this run's project, file and env file."""
        if self._workdir is None:
            raise StageFailed("the compose stage is not up")
        base = ["docker", "compose", "--project-name", self.project, "--file", str(self.config.file),
                "--env-file", str(self._workdir / "stage.env")]
        return run([*base, *args], check=check, timeout=timeout)

    # -- pieces --------------------------------------------------------------------------
    def _write_env_file(self, images: dict[str, str], port: int) -> None:
        """All the project's configuration in one file, readable only by us (it holds passwords)."""
        assert self._workdir is not None
        db = self.settings.database
        owner = run_labels(self.run_id, self.name)[OWNER_LABEL]
        values = {
            "STAGEPROOF_RUN_ID": self.run_id, "STAGEPROOF_OWNER": owner,
            "APP_IMAGE": images["app"], "DB_IMAGE": images["db"], "WEB_PORT": str(port),
            "RELEASE_ID": self.release, "API_TOKEN": self.settings.app.token or "",
            "DB_NAME": db.name, "DB_USER": db.user, "DB_PASSWORD": db.password, "DB_ROOT_PASSWORD": db.root_password,
            "DATABASE_URL": mysql_url(db, "db:3306"),
        }
        path = self._workdir / "stage.env"
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            handle.writelines(f"{name}={_quoted(value)}\n" for name, value in values.items())

    def _wait_ready(self) -> None:
        assert self._deployment is not None
        url = f"{self._deployment.base_url}{self.settings.app.ready_path}"
        wait_until(http_ok(url), what=f"the compose web service to be ready at {url}",
                   timeout=self.config.up_timeout, diagnostics=self.logs)


def _quoted(value: str) -> str:
    """A value for a compose env file: single quotes keep `$`, `#` and spaces literal."""
    if "'" in value or "\n" in value:
        raise ConfigError(f"compose env file values cannot contain quotes or newlines: {value!r}")
    return f"'{value}'"
