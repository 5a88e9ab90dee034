"""The compose stage: the team's own compose file, unchanged, plus an override stageproof writes.

`docker compose --project-name stageproof-<run id> -f <their files> -f <override> up --wait`:
their files say what runs and in which order (database, seed, app); the override
(harness/stages/compose_override.py), computed from their model as `docker compose config` reads it,
gives each run its own names, a 127.0.0.1 port, the image stageproof built, the run's labels and its
own volumes for their data folders, so two runs never collide, a label sweep finds everything and
nothing is written into the team's tree.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

from harness.appenv import app_env
from harness.config import ComposeSettings, Settings
from harness.core.net import LOOPBACK, free_port
from harness.core.ownership import OWNER_LABEL, owner_alive, run_labels
from harness.core.run import run
from harness.core.wait import app_ready, wait_ready
from harness.errors import CommandFailed, ConfigError, StageFailed
from harness.images.build import ensure_images
from harness.stage import Capabilities, Deployment, Stage, register
from harness.stages.compose_override import (
    RunVolumes,
    WebService,
    compose_override,
    data_mounts,
    read_compose_file,
    render_override,
    require_services,
    write_private,
)
from harness.stages.containers import (
    INTERRUPTED_SETTLE,
    STOP_TIMEOUT,
    AppInContainer,
    docker_client,
    docker_missing,
    remove_labelled,
    remove_run,
)

log = logging.getLogger("stageproof.compose")
WORKDIR_PREFIX = "stageproof-compose-"  # + <owner pid>-<run id>-: reap finds a dead run's folder
OVERRIDE_FILE = "override.yaml"
NO_PULL_HINT = ("\n(stageproof never pulls: an image your compose file names must exist locally; pull it, "
                "or declare a local stand-in under [images] substitute)")
UNHEALTHY = re.compile(r"container (\S+) is unhealthy")


@register("compose")
class ComposeStage(Stage):
    """One compose project per run; `down()` is `compose down --volumes` plus a label sweep."""

    def __init__(self, settings: Settings, *, run_id: str, release: str) -> None:
        super().__init__(settings, run_id=run_id, release=release)
        self._workdir: Path | None = None
        self._base_url = ""
        self._up_complete = False

    @property
    def project(self) -> str:
        return f"stageproof-{self.run_id}"

    @property
    def config(self) -> ComposeSettings:
        if self.settings.stages.compose is None:
            raise ConfigError("stageproof.toml has no [stages.compose] section (file = your compose file)")
        return self.settings.stages.compose

    # -- the Stage protocol ---------------------------------------------------------------
    def up(self) -> Deployment:
        for file in self.config.file:
            read_compose_file(file)
        spec = self.compose_model()
        require_services(spec, {"stages.compose.service": self.config.service,
                                "stages.compose.database": self.config.database}, self.config.file[-1])
        images = ensure_images(self.settings, release=self.release)
        port = free_port()
        notes = self.write_override(spec, images.app, port)
        self._base_url = f"http://{LOOPBACK}:{port}"
        self.compose_up()
        self._up_complete = True
        return Deployment(self.name, self._base_url, self.release, self.settings.app.token,
                          notes=(*images.notes(), *notes))

    def down(self) -> None:
        if self._workdir is not None:
            try:
                self.compose("down", "--volumes", "--remove-orphans", "--timeout", str(STOP_TIMEOUT), check=False)
            except CommandFailed as err:  # timed out (a half-up project): the label sweep below removes it
                log.warning("compose down of %s failed, removing its objects by label: %s", self.project, err)
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        settle = 0.0 if self._up_complete else INTERRUPTED_SETTLE
        remove_run(docker_client(), self.name, self.run_id, settle=settle)  # what compose did not know of
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
    def reap(cls, settings: Settings, *, kept: bool = False) -> list[str]:
        """Every compose-stage project a killed run left, found by label, and the override
        folders of runs whose process is gone."""
        removed = remove_labelled(docker_client(), cls.name)
        host = socket.gethostname()
        for workdir in Path(tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*"):
            pid = workdir.name.removeprefix(WORKDIR_PREFIX).split("-")[0]
            if not owner_alive({OWNER_LABEL: f"{pid}@{host}"}):
                shutil.rmtree(workdir, ignore_errors=True)
                removed.append(f"folder {workdir}")
        return removed

    def capabilities(self) -> Capabilities:
        app = AppInContainer(lambda: self.container_of(self.config.service), restart=self._restart,
                             wait_ready=self._wait_ready)
        return Capabilities(app=app, container=app, crash=app, database=ComposeDatabase(self))

    def container_of(self, service: str) -> str:
        """The id of `service`'s container in this run's project."""
        ids = self.compose("ps", "--all", "--quiet", service).stdout.split()
        if not ids:
            raise StageFailed(f"compose project {self.project} has no {service} container")
        return ids[0]

    def _restart(self) -> None:
        self.compose("restart", "--timeout", str(STOP_TIMEOUT), self.config.service)
        self._wait_ready()

    # -- compose itself (public for the compose-only checks) --------------------------------
    def compose_up(self) -> None:
        """`up --wait` (every healthcheck and `depends_on` condition of their file holds), then
        the app answers; never pulls or builds."""
        timeout = self.config.up_timeout
        try:
            self.compose("up", "--detach", "--wait", "--wait-timeout", str(int(timeout)), "--pull", "never",
                         "--no-build", timeout=timeout + 30)
        except CommandFailed as err:
            hint = NO_PULL_HINT if "No such image" in err.stderr + err.stdout else ""
            unhealthy = self._unhealthy(err.stderr + err.stdout)
            failed = StageFailed("\n".join([*unhealthy[:1], f"{err}{hint}", *unhealthy[1:]]))
            failed.add_note(f"--- compose logs ---\n{self.logs()[-6000:]}")
            raise failed from err
        self._wait_ready()

    def _unhealthy(self, output: str) -> list[str]:
        """For a container `up --wait` found unhealthy: one line with its healthcheck and what its
        last probe said (e.g. `curl: not found`), and one on how to replace it (else nothing)."""
        found = UNHEALTHY.search(output)
        if found is None:
            return []
        inspected = run(["docker", "inspect", "--format", "{{json .State.Health}}\n{{json .Config.Healthcheck}}",
                         found.group(1)], check=False).stdout.splitlines()
        try:
            health, check = (json.loads(part) or {} for part in inspected[:2])
        except ValueError:
            health, check = {}, {}
        probes, test = health.get("Log") or [], check.get("Test") or []
        said = (" ".join(str(probes[-1].get("Output", "")).split())[:160] or "nothing") if probes else "no probe ran"
        return [f"container {found.group(1)} is unhealthy: its healthcheck `{' '.join(test[1:])}` said: {said}",
                "replace that healthcheck: [stages.compose] healthcheck = { test = [\"CMD\", ...], interval = \"2s\" "
                "}, or disable it: healthcheck = false"]

    def compose_down(self, *, volumes: bool) -> None:
        """`down` keeping (or with `volumes`, removing) the project's named volumes."""
        self.compose("down", "--timeout", str(STOP_TIMEOUT), *(["--volumes"] if volumes else []))

    def compose_files(self) -> list[Path]:
        """Their files, then our override (in that order: the override wins)."""
        if self._workdir is None:
            raise StageFailed("the compose stage is not up")
        return [*self.config.file, self._workdir / OVERRIDE_FILE]

    def compose(self, *args: str, check: bool = True, timeout: float = 300) -> CompletedProcess[str]:
        """`docker compose` on this run's project: their files, then our override. Relative paths
        in their files resolve against the first one's folder, as when they run it."""
        return run([*self._base(self.compose_files()), *args], check=check, timeout=timeout)

    def compose_model(self) -> dict[str, Any]:
        """Their files as compose itself reads them (`config`: merged in order, `extends` resolved,
        mounts in long form with absolute paths, variables interpolated as `up` will)."""
        try:
            found = run([*self._base(self.config.file), "config", "--format", "json"], timeout=120)
        except CommandFailed as err:
            raise ConfigError(f"stages.compose.file: docker compose cannot read "
                              f"{', '.join(map(str, self.config.file))}: {err.stderr.strip()[-600:]}") from err
        model: dict[str, Any] = json.loads(found.stdout)
        return model

    def _base(self, files: list[Path]) -> list[str]:
        return ["docker", "compose", "--project-name", self.project, "--project-directory",
                str(self.config.project_directory), *(part for path in files for part in ("--file", str(path)))]

    # -- pieces --------------------------------------------------------------------------
    def write_override(self, spec: dict[str, Any], app_image: str, port: int) -> list[str]:
        """The run's override of their model `spec` (`compose_model()`), in the run's folder (made
        here): the web service on 127.0.0.1:`port`, `app_image` for the app's services, the run's
        volumes for their data folders. Returns what it changed, for the run's notes."""
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-{self.run_id}-"))
        data = data_mounts(spec, database=self.config.database, project_dir=self.config.project_directory,
                           untracked=self._untracked)
        web = WebService(self.config.service, host_port=port, container_port=self.settings.app.port,
                         environment=app_env(self.settings, stage=self.name, release=self.release, run_only=True),
                         healthcheck=self.config.healthcheck)
        images = self.settings.images
        override = compose_override(spec, web=web, app_image=app_image,
                                    app_name=images.app.ref_name if images else None,
                                    labels=run_labels(self.run_id, self.name), data=data)
        header = (f"Generated by stageproof for run {self.run_id} (compose project {self.project}),\n"
                  f"read after {', '.join(map(str, self.config.file))}. Deleted by `down`.")
        write_private(self._workdir / OVERRIDE_FILE, render_override(override, header=header))
        return self._notes(data)

    def _untracked(self, folder: Path) -> bool:
        """A folder of a git work tree in which git tracks no file (outside git: never said)."""
        listed = run(["git", "-C", str(self.config.project_directory), "ls-files", "--", str(folder)], check=False)
        return listed.returncode == 0 and not listed.stdout.strip()

    def _notes(self, data: RunVolumes) -> list[str]:
        """What the run changed of their files' behaviour, for the run summary."""
        notes = [f"{mount.service}: bind mount {mount.source} -> {mount.target} runs on the run's volume "
                 f"{mount.volume} ({data.reasons[mount.source]}): nothing is written into your tree"
                 for mount in data.mounts]
        replaced = self.config.healthcheck
        if replaced is False:
            notes.append(f"{self.config.service}: its healthcheck is disabled ([stages.compose] healthcheck = false)")
        elif replaced is not None:
            notes.append(f"{self.config.service}: healthcheck replaced by [stages.compose] healthcheck: "
                         f"{' '.join(replaced.test)}")
        return notes

    def _wait_ready(self) -> None:
        what, probe = app_ready(self.settings, self._base_url)
        wait_ready(probe, what=f"the compose service {self.config.service} to be ready ({what})",
                   timeout=self.config.up_timeout, diagnostics=self.logs)


class ComposeDatabase:
    """DatabaseControl of the compose stage, as a team would do it: `compose stop` / `start` of the
    database service (same volume), or `compose kill -s SIGKILL` then `start`."""

    def __init__(self, stage: ComposeStage) -> None:
        self._stage = stage

    def stop(self) -> None:
        self._stage.compose("stop", "--timeout", str(STOP_TIMEOUT), self._stage.config.database)

    def start(self) -> None:
        self._stage.compose("start", self._stage.config.database)

    def crash(self) -> None:
        self._stage.compose("kill", "--signal", "SIGKILL", self._stage.config.database)
        self.start()
