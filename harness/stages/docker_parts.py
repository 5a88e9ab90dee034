"""The docker stage's containers, in testcontainers' shape: one small class per piece and
composable wait strategies whose timeouts carry the container's logs.

testcontainers' reaper (Ryuk) needs an image from a registry, so it is switched off while one of
these containers starts, and only then (a team's own testcontainers tests in the same pytest run
keep their setting); every object carries stageproof's run labels instead, and `remove_run`/`reap`
sweep by them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from testcontainers.core.config import testcontainers_config
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network
from testcontainers.core.wait_strategies import ExecWaitStrategy
from testcontainers.core.waiting_utils import WaitStrategy

from harness.core.net import LOOPBACK
from harness.core.wait import wait_ready

if TYPE_CHECKING:
    from testcontainers.core.waiting_utils import WaitStrategyTarget


class LabelledNetwork(Network):
    """A testcontainers Network with our name and labels."""

    def __init__(self, name: str, labels: Mapping[str, str]) -> None:
        super().__init__(docker_network_kw={"driver": "bridge", "labels": dict(labels)})
        self.name = name


class StageContainer(DockerContainer):
    """A DockerContainer carrying run labels, published only on 127.0.0.1."""

    def __init__(self, image: str, *, name: str, labels: Mapping[str, str], network: Network) -> None:
        super().__init__(image, name=name, network=network, labels=dict(labels))

    def start(self) -> StageContainer:
        """Start without Ryuk (it would be pulled from a registry): our label sweep reaps instead.
        The switch is testcontainers' own setting, put back as it was once this container started."""
        previous = testcontainers_config._ryuk_disabled
        testcontainers_config.ryuk_disabled = True
        try:
            super().start()
        finally:
            testcontainers_config._ryuk_disabled = previous
        return self

    def with_loopback_port(self, container_port: int, host_port: int) -> StageContainer:
        self.ports[f"{container_port}/tcp"] = (LOOPBACK, host_port)  # type: ignore[assignment]
        return self

    def with_options(self, **options: Any) -> StageContainer:
        """More Docker SDK options (`with_kwargs` replaces them all: our labels would go)."""
        self.with_kwargs(**{**self._kwargs, **options})
        return self

    def with_read_only_root(self) -> StageContainer:
        return self.with_options(read_only=True).with_tmpfs_mount("/tmp")

    def exit_code(self) -> int | None:
        """None while it runs, else how it ended."""
        self.reload()
        if self.status in {"exited", "dead"}:
            return int(self.get_wrapped_container().attrs["State"]["ExitCode"])
        return None

    def logs_text(self, tail: int = 400) -> str:
        try:
            return self.get_wrapped_container().logs(tail=tail).decode(errors="replace")
        except Exception as err:  # a vanished container must not hide the original failure
            return f"(no logs: {err})"


def command_ready(command: list[str], timeout: float) -> WaitStrategy:
    """Ready when `command` exits 0 inside the container (the database engine's own readiness)."""
    return ExecWaitStrategy(command).with_startup_timeout(int(timeout)).with_poll_interval(0.25)


class ProbeWaitStrategy(WaitStrategy):
    """Ready when `probe()` returns; fails at once (not at the deadline) if the container exits.
    `what` names what was awaited in the timeout, which testcontainers gives the logs as a note."""

    def __init__(self, probe: Callable[[], object], *, what: str, timeout: float) -> None:
        super().__init__()
        self._probe, self._what = probe, what
        self._timeout = timeout

    def wait_until_ready(self, container: WaitStrategyTarget) -> None:
        def ready() -> object:
            container.reload()
            if container.status in {"exited", "dead"}:
                raise ContainerExited(f"the container exited while waiting for {self._what}")
            return self._probe()

        try:
            wait_ready(ready, what=self._what, timeout=self._timeout)
        except ContainerExited:
            raise
        except Exception as err:
            raise TimeoutError(str(err)) from err


class ContainerExited(RuntimeError):
    """A container ended while something waited for it to be ready."""


def start(container: StageContainer, strategy: WaitStrategy | None = None) -> StageContainer:
    """Start with a wait strategy; on failure the error carries the container's logs."""
    if strategy is not None:
        container.waiting_for(strategy)
    try:
        return container.start()
    except ContainerExited as err:
        err.add_note(container.logs_text())
        raise
