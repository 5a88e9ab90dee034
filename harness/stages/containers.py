"""What the docker and compose stages share: the Docker client, run labels, reaping, identity.

Everything a container stage creates carries `io.stageproof.run=<run id>` and
`io.stageproof.stage=<stage>`, so `down()` and `stageproof down --all` find it by label alone,
even what a killed run created and never recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from harness.core.ownership import RUN_LABEL, STAGE_LABEL, owner_alive
from harness.core.run import run
from harness.core.wait import NotYet, wait_until
from harness.errors import StageFailed, StageUnavailable
from harness.images.docker import require_docker

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

log = logging.getLogger("stageproof.containers")
INTERRUPTED_SETTLE = 1.0  # seconds between sweeps after an interrupted up (see remove_run)
#: removals at once when a sweep finds many objects (the Docker SDK keeps 10 connections per pool)
REMOVERS = 8
STOP_TIMEOUT = 10  # seconds of SIGTERM grace before SIGKILL: gunicorn drains within it


def docker_client() -> DockerClient:
    """A client for the local daemon (API version negotiated), or StageUnavailable saying why."""
    require_docker()
    import docker  # imported here: the local stages and unit tests do not need it

    try:
        return docker.from_env(version="auto", timeout=120)
    except docker.errors.DockerException as err:
        raise StageUnavailable(f"cannot talk to the Docker daemon: {err}") from err


def docker_missing(*, compose: bool = False) -> str | None:
    """None when a Docker daemon answers (and, with `compose`, Compose v2 runs), else what to do."""
    try:
        require_docker()
    except StageUnavailable as err:
        return str(err).splitlines()[0]
    if compose and run(["docker", "compose", "version"], check=False).returncode != 0:
        return "Docker Compose v2 is missing (`docker compose version` failed): run scripts/setup-machine.sh"
    return None


def label_filters(stage: str, run_id: str | None = None) -> list[str]:
    """Docker `label=` filters for one run of `stage`, or every run of it when run_id is None."""
    filters = [f"{STAGE_LABEL}={stage}"]
    return [*filters, f"{RUN_LABEL}={run_id}"] if run_id else filters


def remove_labelled(client: DockerClient, stage: str, run_id: str | None = None) -> list[str]:
    """Remove containers, then networks, then volumes of one run (`run_id`) or, reaping, of every
    run of `stage` whose owning process is gone: a live run in another terminal is spared.

    Containers first: a network or volume in use cannot be removed; one still in use (a container
    appeared meanwhile) is left for the next sweep. Returns what went.
    """
    filters: dict[str, str | list[str] | bool] = {"label": label_filters(stage, run_id)}

    def doomed(labels: Mapping[str, str] | None) -> bool:
        return run_id is not None or not owner_alive(labels or {})

    removed: list[str] = []
    for kind, objects, remove in (
        ("container", client.containers.list(all=True, filters=filters), lambda c: c.remove(force=True, v=True)),
        ("network", client.networks.list(filters=filters), lambda n: n.remove()),
        ("volume", client.volumes.list(filters=filters), lambda v: v.remove(force=True)),
    ):
        targets = [obj for obj in objects if doomed(_labels(kind, obj))]
        # all of a kind at once, as `docker rm -f a b` does: each container's kill and removal is a
        # round trip of its own to the daemon (0.2 s each for the docker stage's two, `nox -s bench`)
        with ThreadPoolExecutor(max_workers=min(max(1, len(targets)), REMOVERS), thread_name_prefix="remove") as pool:
            gone = list(pool.map(lambda obj, remove=remove: _removed(obj, remove), targets))
        for obj in (obj for obj, ok in zip(targets, gone, strict=True) if ok):
            removed.append(f"{kind} {obj.name}")
            log.info("removed %s %s", kind, obj.name)
    return removed


def remove_run(client: DockerClient, stage: str, run_id: str, *, settle: float = 0.0) -> list[str]:
    """Remove one run's objects, sweeping again until nothing is left. With `settle` (after an
    interrupted `up()`) also until a sweep `settle` seconds after one that removed something finds
    nothing more: a create call cut short by Ctrl-C still completes in the daemon."""
    removed: list[str] = []

    def sweep() -> None:
        swept = remove_labelled(client, stage, run_id)
        removed.extend(swept)
        left = labelled_objects(client, stage, run_id)
        if left or (settle and swept):
            raise NotYet(f"left after a sweep: {left or swept}")

    wait_until(sweep, what=f"every object of {stage} run {run_id} to be removed", timeout=60,
               interval=settle or 0.5)
    return removed


def labelled_objects(client: DockerClient, stage: str, run_id: str | None = None, *,
                     alive_only: bool = False) -> list[str]:
    """What carries the labels, as `kind name`; with `alive_only`, only objects whose owning
    process still runs."""
    filters: dict[str, str | list[str] | bool] = {"label": label_filters(stage, run_id)}
    found = ([(f"container {c.name}", c.labels) for c in client.containers.list(all=True, filters=filters)]
             + [(f"network {n.name}", n.attrs.get("Labels")) for n in client.networks.list(filters=filters)]
             + [(f"volume {v.name}", v.attrs.get("Labels")) for v in client.volumes.list(filters=filters)])
    return [name for name, labels in found if not alive_only or owner_alive(labels or {})]


def _labels(kind: str, obj: Any) -> Mapping[str, str] | None:
    """A container's labels; a network's or a volume's are in its attributes."""
    labels: Mapping[str, str] | None = obj.labels if kind == "container" else obj.attrs.get("Labels")
    return labels


def _removed(obj: Any, remove: Callable[[Any], object]) -> bool:
    """True when `obj` is gone (also if something else removed it first)."""
    import docker

    try:
        remove(obj)
    except docker.errors.NotFound:
        return True
    except docker.errors.APIError as err:  # e.g. a network still in use: the next sweep retries
        log.warning("could not remove %s yet: %s", obj.name, err)
        return False
    return True


def container_identity(container: Container) -> str:
    """Id and start time: equal before and after an outage only if it was never restarted."""
    container.reload()
    state = container.attrs["State"]
    return f"container {container.short_id} started {state['StartedAt']} (restarts: {container.attrs['RestartCount']})"


def container_logs(container: Container | None, *, tail: int = 400) -> str:
    if container is None:
        return "(no container)"
    try:
        return container.logs(tail=tail).decode(errors="replace")
    except Exception as err:  # a vanished container must not hide the original failure
        return f"(no logs: {err})"


def fail_if_exited(container: Container, what: str) -> None:
    """Readiness probes call this so a crashed container fails at once, not at the deadline."""
    container.reload()
    if container.status in {"exited", "dead"}:
        code = container.attrs["State"]["ExitCode"]
        raise StageFailed(f"{what} exited with {code}:\n{container_logs(container)[-3000:]}")



class AppInContainer:
    """The app in one container (docker, compose): AppControl, AppContainer and AppCrash at once,
    looked at and hit as an operator would (`docker top`, `docker logs`, `docker kill -s KILL`)."""

    def __init__(self, container_id: Callable[[], str], *, restart: Callable[[], None],
                 wait_ready: Callable[[], None]) -> None:
        self._id, self._restart, self._wait_ready = container_id, restart, wait_ready

    def restart(self) -> None:
        self._restart()

    def identity(self) -> str:
        started = run(["docker", "inspect", "--format", "{{.State.StartedAt}} restarts={{.RestartCount}}",
                       self._id()]).stdout.strip()
        return f"container {self._id()[:12]} started {started}"

    def process_users(self) -> list[str]:
        return run(["docker", "top", self._id(), "-o", "uid,pid,args"]).stdout.splitlines()[1:]

    def log_text(self) -> str:
        logs = run(["docker", "logs", "--tail", "2000", self._id()])
        return logs.stdout + logs.stderr

    def crash(self) -> str:
        """SIGKILL the container's processes: no SIGTERM, no drain."""
        container = self._id()
        run(["docker", "kill", "--signal", "KILL", container])
        return container

    def recover(self) -> None:
        """Started again (unless its restart policy already did) and serving."""
        container = self._id()
        running = run(["docker", "inspect", "--format", "{{.State.Running}}", container]).stdout.strip()
        if running != "true":
            run(["docker", "start", container])
        self._wait_ready()


class DatabaseInContainer:
    """DatabaseControl of a database container: `docker stop`/`start` on the same volume, or a SIGKILL."""

    def __init__(self, container_id: Callable[[], str]) -> None:
        self._id = container_id

    def stop(self) -> None:
        run(["docker", "stop", "--time", str(STOP_TIMEOUT), self._id()])

    def start(self) -> None:
        run(["docker", "start", self._id()])

    def crash(self) -> None:
        """SIGKILL mid-work (the engine recovers from its log on the next start), then started again."""
        container = self._id()
        run(["docker", "kill", "--signal", "KILL", container])
        run(["docker", "start", container])
